"""Task folders: where an attempt's chunk is materialised (``TASK_DIR/data.bin``)
and where its app's logs go.

Each worker thread makes its folder once and reuses it (creating folders for
every chunk costs more than a no-op app). Small chunks go on a
memory-backed filesystem (``/dev/shm``) when it has room, larger ones beside
the staged results, on their filesystem (so an app may hard-link its input
into its results), else in the temporary folder; the ``bytenite-nb.task-dir``
setting (``BYTENITE_NB_TASK_DIR``) overrides both. Folders that killed worker
processes left behind are swept the first time a base is used.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import tempfile
import threading

from .. import config as _config

#: chunks up to this size are materialised on a memory-backed filesystem when there is one
SMALL_CHUNK = 4 * 2**20
SHM_MARGIN = 64 * 2**20
_roots: dict[tuple[int, str], str] = {}
_roots_lock = threading.Lock()
_made_dirs: set[str] = set()
_swept: set[str] = set()  # task bases already cleared of dead processes' folders


def _task_base(size: int | None, near: str | None) -> str:
    configured = _config.task_dir()
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

    >>> import os, tempfile
    >>> base = tempfile.mkdtemp()
    >>> os.mkdir(os.path.join(base, _root_prefix() + "999999999-x"))   # no such process
    >>> [os.path.basename(p) for p in sweep_task_roots(base)] == [_root_prefix() + "999999999-x"]
    True
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
