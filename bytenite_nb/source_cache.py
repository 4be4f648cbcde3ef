"""Local copies of remote source files, downloaded once per worker process.

A program that needs a file by path (the ``ffmpeg`` program cutting one scene
of a video on S3) would otherwise download the whole source for every chunk
of it. :class:`SourceCache` keeps the copy for the next chunk of the same
source: one download per worker process and version of the source (its URL,
size and ETag or modification time), under a lock, so threads of one worker
cutting scenes of one video wait for a single download. A few sources are
kept (the least recently used idle one goes first); the folder goes when the
process ends.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

#: copies kept per worker process: the video being cut, and the one before it
DEFAULT_KEPT = 2


def version_key(fs, path: str, url: str) -> str:
    """What tells one version of a remote file from another: its URL, size and ETag
    (or modification time). The file's metadata is asked afresh, never from a listing cache.

    >>> import fsspec
    >>> fs = fsspec.filesystem("memory")
    >>> fs.pipe("/v/a.mp4", b"one")
    >>> first = version_key(fs, "/v/a.mp4", "memory://v/a.mp4")
    >>> fs.pipe("/v/a.mp4", b"three")
    >>> first == version_key(fs, "/v/a.mp4", "memory://v/a.mp4")
    False
    """
    fs.invalidate_cache(path)
    info = fs.info(path)
    stamp = next((info[k] for k in ("ETag", "etag", "md5Hash", "content_md5", "mtime", "LastModified",
                                    "last_modified", "created") if info.get(k) is not None), "")
    return f"{url}\n{info.get('size')}\n{stamp}"


@dataclass
class _Copy:
    path: str
    users: int = 0
    ready: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class SourceCache:
    """Downloads of remote files kept for the next chunk of the same file (see the module).
    ``downloads`` counts the downloads made, for logs and tests.

    >>> import fsspec
    >>> fs = fsspec.filesystem("memory")
    >>> fs.pipe("/v/clip.mp4", b"video bytes")
    >>> cache = SourceCache()
    >>> for scene in range(3):
    ...     with cache.local_path(fs, "/v/clip.mp4", "memory://v/clip.mp4") as path:
    ...         assert open(path, "rb").read() == b"video bytes"
    >>> cache.downloads
    1
    """

    def __init__(self, kept: int = DEFAULT_KEPT):
        self.kept = kept
        self._forget()

    def _forget(self) -> None:
        """Start empty (also in a forked child: its parent's copies and locks are not its own)."""
        self.downloads = 0
        self._lock = threading.Lock()
        self._copies: OrderedDict[str, _Copy] = OrderedDict()
        self._folder: str | None = None

    @contextmanager
    def local_path(self, fs, path: str, url: str):
        """The local path of a copy of ``path`` on ``fs`` while the block runs (read it, never
        change it): downloaded unless this process already holds this version."""
        key = version_key(fs, path, url)
        with self._lock:
            copy = self._copies.get(key)
            if copy is None:
                name = hashlib.sha256(key.encode()).hexdigest()[:24] + os.path.splitext(path)[1]
                copy = self._copies[key] = _Copy(os.path.join(self._make_folder(), name))
            copy.users += 1
            self._copies.move_to_end(key)
        try:
            with copy.lock:  # one download; the other threads wait for it
                if not copy.ready:
                    self._download(fs, path, copy.path)
                    copy.ready = True
            yield copy.path
        finally:
            with self._lock:
                copy.users -= 1
                self._drop_idle()

    def _download(self, fs, path: str, dest: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=os.path.dirname(dest))
        try:
            with os.fdopen(fd, "wb") as out, fs.open(path, "rb") as src:
                shutil.copyfileobj(src, out, 8 * 2**20)
            os.replace(tmp, dest)  # never half a copy under the copy's name
        except BaseException:
            os.unlink(tmp)
            raise
        self.downloads += 1

    def _make_folder(self) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="bnb-sources-")
            atexit.register(shutil.rmtree, self._folder, True)
        return self._folder

    def _drop_idle(self) -> None:
        """Remove the least recently used copies nobody reads beyond ``kept`` (and failed ones)."""
        for key, copy in list(self._copies.items()):  # oldest first
            if copy.users == 0 and (not copy.ready or len(self._copies) > self.kept):
                if os.path.lexists(copy.path):
                    os.unlink(copy.path)
                del self._copies[key]


#: this process's cache, shared by the chunks it materialises
SOURCES = SourceCache()
os.register_at_fork(after_in_child=SOURCES._forget)
