"""Audio and video through FFmpeg, shared by the media partitioners and assemblers.

Two ways into FFmpeg, both without hand-written container parsing:

- PyAV (``import av``: FFmpeg's libraries in a wheel) to probe, demux, remux by
  stream copy and decode inside the worker's process;
- the ``ffmpeg`` program for whole-file jobs (segmenting, concatenating,
  re-encoding at cuts): the system's when it is on ``PATH``, else the one the
  ``imageio-ffmpeg`` wheel carries, so a plain ``pip install`` is enough.

Both are imported or looked up inside the functions: ``import bytenite_nb``
stays light.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager

from .exceptions import BadRecordError, FieldError, MediaToolMissing

#: set to a path to choose the ffmpeg program explicitly
FFMPEG_ENV = "BYTENITE_NB_FFMPEG"
#: set to the seconds one ffmpeg run may take before it is killed
FFMPEG_TIMEOUT_ENV = "BYTENITE_NB_FFMPEG_TIMEOUT"
#: an hour: far beyond any chunk's work, yet a hung ffmpeg (a stalled read, a filter
#: that never ends) no longer holds a worker for ever
DEFAULT_FFMPEG_TIMEOUT = 3600.0


def ffmpeg_exe() -> str:
    """The ``ffmpeg`` program to run: ``$BYTENITE_NB_FFMPEG``, else ``ffmpeg`` on
    ``PATH``, else the one bundled with the ``imageio-ffmpeg`` wheel.

    >>> os.path.basename(ffmpeg_exe()).startswith("ffmpeg")
    True
    """
    chosen = os.environ.get(FFMPEG_ENV)
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise MediaToolMissing(f"${FFMPEG_ENV} names {chosen!r}, which is not an executable file")
        return chosen
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MediaToolMissing("no ffmpeg program: install ffmpeg (apt-get install ffmpeg) or the "
                               "imageio-ffmpeg package") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_timeout() -> float:
    """Seconds one ffmpeg run may take: ``$BYTENITE_NB_FFMPEG_TIMEOUT``, else an hour.

    >>> ffmpeg_timeout()
    3600.0
    """
    text = os.environ.get(FFMPEG_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_FFMPEG_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise FieldError(f"${FFMPEG_TIMEOUT_ENV}", f"expected a positive number of seconds, got {text!r}")
    return seconds


def run_ffmpeg(args: list[str], *, name: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``ffmpeg`` with ``args`` (quiet, never asking questions); a failure is a
    :class:`~bytenite_nb.exceptions.BadRecordError` naming ``name`` (the file the
    command was about) with the last lines ffmpeg printed. A run longer than ``timeout``
    seconds (default :func:`ffmpeg_timeout`) is killed and fails naming the limit.

    >>> run_ffmpeg(["-i", "/nonexistent/clip.mp4", "-f", "null", "-"], name="clip.mp4")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.BadRecordError: clip.mp4: ffmpeg failed: /nonexistent/clip.mp4: No such file or directory
    >>> run_ffmpeg(["-re", "-f", "lavfi", "-i", "testsrc=duration=60", "-f", "null", "-"], name="slow.mp4",
    ...            timeout=0.5)  # -re: read at the video's own pace, a minute
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.BadRecordError: slow.mp4: ffmpeg ran longer than 0.5 s and was stopped ($BYTENITE_NB_FFMPEG_TIMEOUT sets the limit)
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    limit = ffmpeg_timeout() if timeout is None else timeout
    try:  # subprocess.run kills ffmpeg and waits for it before raising TimeoutExpired
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise BadRecordError(f"ffmpeg ran longer than {limit:g} s and was stopped (${FFMPEG_TIMEOUT_ENV} sets "
                             "the limit)", file=name) from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise BadRecordError("ffmpeg failed: " + (" / ".join(tail) or f"exit status {proc.returncode}"), file=name)
    return proc


@contextmanager
def media_input(url: str, storage_options: dict | None = None, block_size: int = 2**20):
    """What a media library opens for the source file ``url``: its path when it is
    local (FFmpeg and libsndfile then read it themselves, several times faster
    than through a Python file object, which costs a call per read), else an
    fsspec file with ranged reads of ``block_size``.

    >>> with media_input("file:///tmp/a.mp4") as what:
    ...     what
    '/tmp/a.mp4'
    """
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(url, **(storage_options or {}))
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        yield path
        return
    with fs.open(path, "rb", block_size=block_size) as stream:
        yield stream


def open_container(path: str, name: str | None = None):
    """Open a media file with PyAV; a file FFmpeg cannot read is a
    :class:`~bytenite_nb.exceptions.BadRecordError` naming it.

    >>> open_container("/nonexistent/song.wav", "song.wav")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.BadRecordError: song.wav: not a media file FFmpeg can read (No such file or directory)
    """
    import av

    try:
        return av.open(path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise BadRecordError(f"not a media file FFmpeg can read ({reason})", file=name or path) from None


#: seconds a container :func:`reused_container` holds may stay unused before it is closed:
#: long enough to carry a worker from one chunk to the next, short enough that an idle
#: worker or server thread does not keep the file (and a deleted file's disk space)
HELD_IDLE_SECONDS = 10.0


class _HeldContainer:
    """One thread's open container, kept for its next chunk of the same file. The owner
    thread holds ``lock`` while it uses the container; the janitor closes it only when it
    gets the lock without waiting, so never in the middle of a use."""

    def __init__(self):
        self.lock = threading.Lock()
        self.key = None  # (path, size, mtime_ns) of the file the container reads
        self.container = None
        self.last_use = 0.0  # time.monotonic() at the end of the last use
        self.in_use = False  # read and written by the owner thread only

    def close(self) -> None:
        container, self.container, self.key = self.container, None, None
        if container is not None:
            try:
                container.close()
            except Exception:  # a container a failed use left broken: its descriptor is freed all the same
                pass


class _Janitor:
    """The containers held by every thread, and one daemon thread, started with the first,
    that closes those idle for more than :data:`HELD_IDLE_SECONDS` (read at every pass, so
    a change takes effect at the next container held)."""

    def __init__(self):
        self.changed = threading.Condition(threading.Lock())
        self.held: set[_HeldContainer] = set()
        self.thread: threading.Thread | None = None

    def hold(self, entry: _HeldContainer) -> None:
        with self.changed:
            self.held.add(entry)
            if self.thread is None or not self.thread.is_alive():  # none yet, or not in a forked child
                self.thread = threading.Thread(target=self._run, name="bytenite-nb held containers", daemon=True)
                self.thread.start()
            self.changed.notify()

    def after_fork(self) -> None:
        """In a forked child: the janitor thread is gone and may have left its lock taken."""
        self.changed, self.thread = threading.Condition(threading.Lock()), None

    def forget(self, entry: _HeldContainer) -> None:
        with self.changed:
            self.held.discard(entry)

    def _run(self) -> None:
        with self.changed:
            while True:
                self.changed.wait(self._close_idle())

    def _close_idle(self) -> float | None:
        """Close the idle containers; the seconds until the next may be idle (None: none held)."""
        idle, now, wake = HELD_IDLE_SECONDS, time.monotonic(), None
        for entry in list(self.held):
            due = entry.last_use + idle
            if not entry.lock.acquire(blocking=False):
                due = now + idle  # in use: idle at the earliest that long after now
            else:
                try:
                    if due <= now or entry.container is None:
                        entry.close()
                        self.held.discard(entry)
                        continue
                finally:
                    entry.lock.release()
            wake = due if wake is None else min(wake, due)
        return None if wake is None else max(wake - now, 0.01)


_janitor = _Janitor()
os.register_at_fork(after_in_child=_janitor.after_fork)
_mine = threading.local()  # .entry: this thread's _HeldContainer


def _file_key(path: str):
    """What tells a file from the one read before under the same path: a changed size or
    modification time opens it again. None when the file cannot be looked at."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_size, st.st_mtime_ns)


@contextmanager
def reused_container(path, name: str | None = None):
    """:func:`open_container` for cutting chunk after chunk out of one local file:
    the container stays open for this thread's next use of the same file (same
    path, size and modification time), since opening an MP4 reads and probes
    its whole index, several milliseconds a chunk paid again for every chunk.
    Each use must seek to what it reads first. A container unused for
    :data:`HELD_IDLE_SECONDS` is closed, so an idle thread keeps no file open.
    A file object, a use inside another use in the same thread, or a use that
    raises, gets a container of its own, closed at the end.

    >>> import tempfile
    >>> with reused_container(tempfile.mktemp(suffix=".mp4"), "clip.mp4"):
    ...     pass
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.BadRecordError: clip.mp4: not a media file FFmpeg can read (No such file or directory)
    """
    key = _file_key(path) if isinstance(path, str) else None
    if key is None:  # nothing to tell a later file by: a container for this use only
        with open_container(path, name) as container:
            yield container
        return
    entry = getattr(_mine, "entry", None)
    if entry is None:
        entry = _mine.entry = _HeldContainer()
    if entry.in_use:  # a use inside this thread's own use: the held one is taken
        with open_container(path, name) as container:
            yield container
        return
    with entry.lock:
        entry.in_use = True
        try:
            if entry.container is None or entry.key != key:
                entry.close()
                entry.container, entry.key = open_container(path, name), key
                _janitor.hold(entry)
            yield entry.container
        except BaseException:
            entry.close()  # in whatever state the failure left it: never used again
            _janitor.forget(entry)
            raise
        finally:
            entry.last_use, entry.in_use = time.monotonic(), False


@contextmanager
def whole_output(dest: str):
    """A temporary name beside ``dest`` to write a file under: renamed to ``dest`` when the
    block ends, removed when it raises, so a failed cut or copy never leaves half a file at
    ``dest`` (a link an earlier attempt left there is replaced, never written through).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with whole_output(os.path.join(folder, "a.wav")) as tmp:
    ...     _ = open(tmp, "w").write("whole")
    >>> os.listdir(folder)
    ['a.wav']
    >>> with whole_output(os.path.join(folder, "b.wav")) as tmp:
    ...     _ = open(tmp, "w").write("half")
    ...     raise OSError("disk full")
    Traceback (most recent call last):
    ...
    OSError: disk full
    >>> os.listdir(folder)
    ['a.wav']
    """
    folder, base = os.path.split(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=os.path.splitext(base)[1], dir=folder or ".")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
