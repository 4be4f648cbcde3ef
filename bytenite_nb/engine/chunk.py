"""Where a chunk goes: the map task, one per chunk.

``run_chunk`` runs on a worker. It materialises the chunk into
``TASK_DIR/data.bin``, runs the app with retries and the task timeout, and
commits the results to staging. It never raises for a failed chunk: it returns
an outcome that the job's runner records. (Resume happens before: the runner
sends only the chunks that staging does not hold committed.)

Small chunks are materialised on a memory-backed filesystem (``/dev/shm``)
when it has room, larger ones beside the staged results (or in the temporary
folder); ``BYTENITE_NB_TASK_DIR`` overrides both.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import tempfile
import threading
import time
import zipfile

from fsspec.core import url_to_fs

from .. import config as _config
from ..apps.base import TaskContext
from ..exceptions import PartitionError, RetriesExhausted, TaskCancelled
from ..transfer import copy_range, copy_stream, safe_join
from ..partitioners.base import ChunkRef
from .. import supervision as control
from . import events
from .retry import run_with_retries
from .staging import Staging


def materialise(ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
    """Write the bytes of chunk ``ref`` to the local file ``dest``; return its size.

    A byte range is read with ranged reads (positioned reads for local files),
    several member files become a zip archive, a chunk without data an empty file.
    """
    options = storage_options or {}
    if os.path.lexists(dest):
        os.unlink(dest)  # never write through a link an earlier attempt's app made
    if ref.members:
        with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for url, name in zip(ref.members, ref.names or [os.path.basename(m) for m in ref.members]):
                safe_join("/", name)  # refuse member names that would escape on extraction
                fs, path = url_to_fs(url, **options)
                with fs.open(path, "rb") as src, zf.open(name, "w", force_zip64=True) as out:
                    copy_stream(src, out)
        return os.path.getsize(dest)
    if ref.url is None:
        open(dest, "wb").close()
        return 0
    fs, path = url_to_fs(ref.url, **options)
    want = None if ref.end is None else ref.end - ref.start
    with open(dest, "wb") as out:
        if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
            try:
                got = copy_range(path, out, ref.start, ref.end)
            except OSError as exc:
                raise PartitionError(f"chunk {ref.index}: cannot read {ref.describe()}: {exc}") from exc
        else:
            with fs.open(path, "rb") as src:
                if ref.start:
                    src.seek(ref.start)
                got = copy_stream(src, out, want)
    if want is not None and got != want:
        raise PartitionError(
            f"chunk {ref.index}: {ref.url} ended at offset {ref.start + got}, expected bytes up to {ref.end} "
            "(did the source change after planning?)")
    return got


#: chunks up to this size are materialised on a memory-backed filesystem when there is one
SMALL_CHUNK = 4 * 2**20
SHM_MARGIN = 64 * 2**20
_roots: dict[tuple[int, str], str] = {}
_roots_lock = threading.Lock()
_made_dirs: set[str] = set()
_swept: set[str] = set()  # task bases already cleared of dead processes' folders


def _task_base(size: int | None, near: str | None) -> str:
    configured = os.environ.get("BYTENITE_NB_TASK_DIR")
    if configured:
        return configured
    if size is not None and size <= SMALL_CHUNK and _shm_usable():
        # A container's /dev/shm is often tiny (64 MiB): use it only with room to spare.
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 2 * size + SHM_MARGIN:
            return "/dev/shm"
    # Larger chunks beside the staged results: one filesystem, so an app may
    # hard-link its input into its results instead of copying it.
    return near or tempfile.gettempdir()


@functools.lru_cache(maxsize=1)
def _shm_usable() -> bool:
    return os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)


def task_root(size: int | None, near: str | None = None) -> str:
    """This thread's task folder (holding ``task/`` and ``logs/``), made once and reused:
    creating folders for every chunk costs more than a no-op app. ``near`` is a
    local folder on the filesystem of the staged results, if they are local."""
    base = _task_base(size, near)
    key = (threading.get_ident(), base)
    with _roots_lock:
        root = _roots.get(key)
        if root is None or not os.path.isdir(root):
            os.makedirs(base, exist_ok=True)
            if base not in _swept:
                _swept.add(base)
                sweep_task_roots(base)
            root = tempfile.mkdtemp(prefix=f"{_root_prefix()}{os.getpid()}-", dir=base)
            os.mkdir(os.path.join(root, "task"))
            os.mkdir(os.path.join(root, "logs"))
            _roots[key] = root
    return root


def _root_prefix() -> str:
    return f"bytenite-nb-{socket.gethostname()}-"


def sweep_task_roots(base: str) -> list[str]:
    """Remove the task folders in ``base`` left by processes of this host that
    are gone (a worker killed in the middle of a chunk leaves its ``data.bin``,
    which may be large). Returns what was removed.

    >>> import os
    >>> gone = _root_prefix() + f"{2**22 + 12345}-a1b2c3"   # above any pid Linux gives
    >>> ours = _root_prefix() + f"{os.getpid()}-d4e5f6"
    >>> os.makedirs(gone + "/task"), os.makedirs(ours + "/task")
    (None, None)
    >>> [os.path.basename(path) for path in sweep_task_roots(".")] == [gone], os.path.exists(ours)
    (True, True)
    """
    prefix, removed = _root_prefix(), []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(prefix):].split("-", 1)[0] if entry.name.startswith(prefix) else ""
        if pid.isdigit() and entry.is_dir(follow_symlinks=False) and not _alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def empty_folder(folder: str) -> None:
    """Remove everything inside ``folder`` (what the app left in its task folder)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


@atexit.register
def _remove_task_roots() -> None:
    for root in list(_roots.values()):
        shutil.rmtree(root, ignore_errors=True)


def ensure_dir(path: str) -> str:
    if path not in _made_dirs:
        os.makedirs(path, exist_ok=True)
        _made_dirs.add(path)
    return path


class ChunkOutcome(dict):
    """How one chunk ended: ``{"index", "state", "attempts", "duration", "error"...}``.

    A dict, of its own type only so that Dask pickles it whole when the
    runner gathers it: a plain dict is serialised field by field, which
    measured as the largest per-chunk cost on the workers of a many-chunk job.
    """

    def __reduce__(self):
        return ChunkOutcome, (dict(self),)


def run_chunk(ref: ChunkRef, spec, job_id: str) -> ChunkOutcome:
    """Run the app on one chunk, with retries, and commit its results. Returns the outcome:
    ``{"index", "state": "DONE"|"FAILED"|"CANCELLED", "attempts", "duration", "error"...}``."""
    started = time.time()
    index = ref.index
    staging = Staging.of(spec, job_id)
    cfg = spec.config
    shared_cache = ensure_dir(_config.shared_cache_dir())
    user_cache = ensure_dir(os.path.join(_config.user_cache_dir(), _safe(spec.app.name)))

    def attempt(n: int) -> dict:
        control.check_cancelled(job_id)
        if n > 1:
            events.emit(job_id, {"type": "chunk", "index": index, "state": "RUNNING", "attempt": n})
        token, results_dir = staging.new_attempt(index)
        root = task_root(ref.size, os.path.join(os.path.dirname(staging.path), "_tasks") if staging.local else None)
        task_dir, log_dir = os.path.join(root, "task"), os.path.join(root, "logs")
        try:
            chunk_path = os.path.join(task_dir, "data.bin")
            materialise(ref, chunk_path, spec.source.storage_options)
            ctx = TaskContext(
                job_id=job_id, chunk_number=index, task_dir=task_dir, chunk_path=chunk_path,
                results_dir=results_dir, params=spec.app_params, timeout=cfg.get("taskTimeout"),
                shared_cache_dir=shared_cache, user_cache_dir=user_cache, log_dir=log_dir,
                max_output=int(cfg.get("maxAppOutput", 256) * 2**20))
            spec.app.run(ctx)
            control.check_cancelled(job_id)
            return staging.commit(index, token, results_dir, {"attempts": n})
        except BaseException:
            staging.discard(index, token, results_dir)
            raise
        finally:
            empty_folder(task_dir)

    def on_retry(n: int, exc: BaseException, delay: float) -> None:
        events.emit(job_id, {"type": "chunk", "index": index, "state": "RETRYING", "attempt": n,
                             "error": f"attempt {n}: {exc}"[:4000], "retry_in": round(delay, 2)})

    try:
        marker, attempts = run_with_retries(
            attempt, retries=cfg.get("maxTaskRetries", 2), backoff=cfg.get("retryBackoff", 1.0),
            on_retry=on_retry, cancelled=lambda: control.is_cancelled(job_id))
    except TaskCancelled:
        return ChunkOutcome(index=index, state="CANCELLED", duration=time.time() - started)
    except RetriesExhausted as exc:
        return ChunkOutcome(
            index=index, state="FAILED", attempts=exc.attempts, duration=time.time() - started,
            error=f"chunk {index} ({ref.describe()}) failed after {exc.attempts} attempt(s): {exc.last}"[:8000])
    return ChunkOutcome(index=index, state="DONE", attempts=attempts, duration=time.time() - started,
                        files=len(marker["files"]), bytes=sum(size for _, size in marker["files"]))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in str(name)) or "app"
