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


_held_container = threading.local()


@contextmanager
def reused_container(path, name: str | None = None):
    """:func:`open_container` for cutting chunk after chunk out of one local file:
    the container stays open for this thread's next use of the same file (same
    path, size and modification time), since opening an MP4 reads and probes
    its whole index, several milliseconds a chunk paid again for every chunk.
    Each use must seek to what it reads first. A file object, or a use that
    raises, gets a container of its own, closed at the end.

    >>> import tempfile
    >>> with reused_container(tempfile.mktemp(suffix=".mp4"), "clip.mp4"):
    ...     pass
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.BadRecordError: clip.mp4: not a media file FFmpeg can read (No such file or directory)
    """
    if not isinstance(path, str):
        with open_container(path, name) as container:
            yield container
        return
    try:
        st = os.stat(path)
    except OSError:
        st = None
    key = (path, st.st_size, st.st_mtime_ns) if st else None
    held = getattr(_held_container, "value", None)
    if held is not None and held[0] == key:
        container = held[1]
    else:
        if held is not None:
            held[1].close()
            _held_container.value = None
        container = open_container(path, name)
        _held_container.value = (key, container) if key else None
    try:
        yield container
    except BaseException:
        container.close()  # in whatever state the failure left it: never used again
        _held_container.value = None
        raise


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
