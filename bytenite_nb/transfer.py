"""Moving bytes: local fast paths, fsspec everywhere else, safe names.

Every copy the engine makes goes through here, so the fast paths
(``copy_file_range``, hard links) and the path-safety checks live in one place.
"""

from __future__ import annotations

import contextvars
import errno
import hashlib
import os
import shutil
import threading
from contextlib import contextmanager
from typing import BinaryIO

from .exceptions import UnsafePathError

BUFFER = 8 * 2**20
#: reads for checksums: small enough to stay in the CPU cache between the read and the hash
HASH_BUFFER = 2**20


def size_text(n: int | None) -> str:
    """A size for people to read.

    >>> size_text(1536), size_text(5), size_text(None)
    ('1.5 KiB', '5 B', '?')
    """
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def copy_range(src_path: str, dst: BinaryIO, start: int = 0, end: int | None = None) -> int:
    """Append bytes ``[start, end)`` of a local file to an open local file.

    The bytes never pass through Python when the kernel can copy them:
    ``sendfile`` (steadier than ``copy_file_range`` on ext4 with freshly written
    sources, and it crosses filesystems), then ``copy_file_range``, a read/write
    loop only as a last resort.
    """
    with open(src_path, "rb") as src:
        if end is None:
            end = os.fstat(src.fileno()).st_size
        total = max(0, end - start)
        remaining = total
        dst.flush()
        out_fd, in_fd = dst.fileno(), src.fileno()
        offset = start
        ways = ["sendfile", "copy_file_range", "read"]
        if not hasattr(os, "copy_file_range"):
            ways.remove("copy_file_range")
        while remaining > 0:
            way = ways[0]
            try:
                if way == "copy_file_range":
                    n = os.copy_file_range(in_fd, out_fd, min(remaining, 1 << 30), offset)
                elif way == "sendfile":
                    n = os.sendfile(out_fd, in_fd, offset, min(remaining, 1 << 30))
                else:
                    src.seek(offset)
                    data = src.read(min(remaining, BUFFER))
                    dst.write(data)
                    dst.flush()
                    n = len(data)
            except OSError as exc:
                if way != "read" and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                                                   errno.EBADF):
                    ways.pop(0)
                    continue
                raise
            if n == 0:
                break
            offset += n
            remaining -= n
        if remaining:
            raise OSError(f"{src_path}: expected {total} bytes from offset {start}, file ended at {offset}")
        if ways[0] != "read":
            dst.seek(0, os.SEEK_END)  # the kernel moved the file offset; keep Python's view in step
        return total


def copy_stream(src: BinaryIO, dst: BinaryIO, limit: int | None = None) -> int:
    """Copy from one file object to another (up to ``limit`` bytes)."""
    n = 0
    while limit is None or n < limit:
        data = src.read(BUFFER if limit is None else min(BUFFER, limit - n))
        if not data:
            break
        dst.write(data)
        n += len(data)
    return n


def link_or_copy(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (instant, same filesystem) or copy it."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


#: checksum algorithms for outputs: crc32c (the default: what GCS and S3 check
#: natively, and fast enough never to slow a job down) or sha256
CHECKSUMS = ("crc32c", "sha256")
_checksum: contextvars.ContextVar[str] = contextvars.ContextVar("bytenite_nb_checksum", default="crc32c")


@contextmanager
def checksum_algorithm(name: str):
    """Use checksum ``name`` for the outputs made inside the block."""
    token = _checksum.set(name)
    try:
        yield name
    finally:
        _checksum.reset(token)


def current_checksum() -> str:
    return _checksum.get()


class _Crc32c:
    def __init__(self):
        import google_crc32c

        self._c = google_crc32c.Checksum()

    def update(self, data: bytes) -> None:
        self._c.update(bytes(data) if not isinstance(data, bytes) else data)

    def hexdigest(self) -> str:
        return self._c.digest().hex()


def new_checksum(name: str | None = None):
    """A fresh checksum object (``update``, ``hexdigest``) for algorithm ``name``.

    >>> c = new_checksum("crc32c"); c.update(b"123456789"); c.hexdigest()
    'e3069283'
    """
    name = name or current_checksum()
    if name == "crc32c":
        return _Crc32c()
    if name == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unknown checksum {name!r}; expected one of {', '.join(CHECKSUMS)}")


def file_checksum(path: str, name: str | None = None) -> str:
    """The checksum of a local file (``name`` defaults to the current algorithm)."""
    c = new_checksum(name)
    with open(path, "rb") as f:
        while data := f.read(HASH_BUFFER):
            c.update(data)
    return c.hexdigest()


class ParallelDigest:
    """The checksum of a sequence of local files and bytes, computed in a background thread.

    Lets an assembler copy parts in the kernel while the checksum of the whole
    is computed beside it. The algorithm is the current one when it is made.

    >>> d = ParallelDigest("sha256"); d.finish()
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """

    def __init__(self, algorithm: str | None = None):
        self.algorithm = algorithm or current_checksum()
        self._hash = new_checksum(self.algorithm)
        self._parts: list[tuple[str, int, int | None] | bytes] = []
        self._cond = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bytenite-nb-digest", daemon=True)
        self._thread.start()

    def add_file(self, path: str, start: int = 0, end: int | None = None) -> None:
        with self._cond:
            self._parts.append((path, start, end))
            self._cond.notify()

    def add_bytes(self, data: bytes) -> None:
        with self._cond:
            self._parts.append(bytes(data))
            self._cond.notify()

    def _run(self):
        try:
            while True:
                with self._cond:
                    while not self._parts and not self._closed:
                        self._cond.wait()
                    if not self._parts:
                        return
                    part = self._parts.pop(0)
                if isinstance(part, bytes):
                    self._hash.update(part)
                    continue
                path, start, end = part
                with open(path, "rb") as f:
                    f.seek(start)
                    left = None if end is None else end - start
                    while left is None or left > 0:
                        data = f.read(HASH_BUFFER if left is None else min(HASH_BUFFER, left))
                        if not data:
                            break
                        self._hash.update(data)
                        if left is not None:
                            left -= len(data)
        except BaseException as exc:  # surfaced by finish()
            self._error = exc

    def finish(self) -> str:
        """Wait for every part to be read; return the checksum (safe to call again)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        if self._error:
            raise self._error
        return self._hash.hexdigest()

    def __enter__(self) -> "ParallelDigest":
        return self

    def __exit__(self, *exc) -> None:
        # Never leave the thread waiting, whatever happened to the copy.
        with self._cond:
            self._closed = True
            self._parts.clear() if exc[0] is not None else None
            self._cond.notify()
        self._thread.join()


def safe_join(root: str, name: str) -> str:
    """``root/name``, refusing names that would leave ``root`` (``..``, absolute paths).

    >>> safe_join("/out", "a/b.txt")
    '/out/a/b.txt'
    >>> safe_join("/out", "../etc/passwd")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.UnsafePathError: file name '../etc/passwd' escapes its folder
    """
    if not name or "\x00" in name:
        raise UnsafePathError(f"invalid file name {name!r}")
    norm = os.path.normpath(name.replace("\\", "/"))
    if os.path.isabs(norm) or norm == ".." or norm.startswith("../") or norm == ".":
        raise UnsafePathError(f"file name {name!r} escapes its folder")
    return os.path.join(root, norm)


def list_tree(root: str, what: str = "folder") -> list[tuple[str, int]]:
    """Every regular file under ``root`` as ``(relative name, size)``, sorted.

    Symlinks are refused (they could point anywhere); so is anything that is
    not a regular file or a folder.
    """
    with os.scandir(root) as entries:
        if next(entries, None) is None:
            return []  # the common case of an app that wrote nothing: no walk
    out = []
    root = os.path.abspath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in list(dirnames) + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if os.path.islink(full):
                raise UnsafePathError(f"{what} contains a symlink {rel!r} -> {os.readlink(full)!r}; "
                                      "write regular files only")
            if name in filenames:
                import stat

                if not stat.S_ISREG(st.st_mode):
                    raise UnsafePathError(f"{what} contains {rel!r}, which is not a regular file")
                out.append((rel.replace(os.sep, "/"), st.st_size))
    out.sort()
    return out


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


