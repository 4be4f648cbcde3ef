"""Stopping work on a worker: timeouts and cancellation.

Every app attempt registers here while it runs: a process app its process
group, a Python app its thread. :func:`cancel_job` (called on every worker by
the client through ``Client.run``) kills the process groups of a job and
interrupts its Python threads; a per-process watchdog does the same for an
attempt that outlives ``taskTimeout``.

A leaf module: the engine, the app runtimes and the engine folders all use it.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from .exceptions import TaskCancelled, TaskTimeoutError

GRACE_SECONDS = 2.0

_lock = threading.RLock()
_cancelled: dict[str, float] = {}  # job id -> when it was cancelled
_attempts: dict[int, "Attempt"] = {}
_ids = itertools.count()


@dataclass(eq=False)
class Attempt:
    """One running app attempt, as seen by the watchdog and by cancel_job."""

    job_id: str
    timeout: float | None
    thread_id: int
    pgids: set[int] = field(default_factory=set)
    python: bool = False  # interrupt the thread (Python apps) rather than kill processes
    reason: str | None = None  # "timeout" or "cancelled" once stopped
    key: int = field(default_factory=lambda: next(_ids))
    deadline: float | None = None


_scope = threading.local()


@contextmanager
def job_scope(job_id: str | None):
    """Mark work done in this thread (planning, assembly) as part of ``job_id``,
    so that what it starts - a partitioner or assembler engine - is stopped
    with the job. See :func:`current_job`."""
    previous = getattr(_scope, "job_id", None)
    _scope.job_id = job_id
    try:
        yield
    finally:
        _scope.job_id = previous


def current_job() -> str | None:
    """The job this thread works for (set by :func:`job_scope`), or None."""
    return getattr(_scope, "job_id", None)


def is_cancelled(job_id: str) -> bool:
    return job_id in _cancelled


def check_cancelled(job_id: str) -> None:
    if job_id in _cancelled:
        raise TaskCancelled(f"job {job_id} was cancelled")


def cancel_job(job_id: str) -> int:
    """Stop every attempt of ``job_id`` in this process; later attempts refuse to
    start. Returns how many attempts were stopped. Safe to call many times."""
    with _lock:
        _cancelled[job_id] = time.time()
        victims = [a for a in _attempts.values() if a.job_id == job_id and a.reason is None]
        for attempt in victims:
            _stop(attempt, "cancelled")
    return len(victims)


def forget_job(job_id: str) -> None:
    """Clear the cancelled mark (a resumed run of the same id may start again)."""
    with _lock:
        _cancelled.pop(job_id, None)


def _stop(attempt: Attempt, reason: str) -> None:
    attempt.reason = reason
    for pgid in list(attempt.pgids):
        kill_group(pgid)
    if attempt.python:
        exc = TaskCancelled if reason == "cancelled" else TaskTimeoutError
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(attempt.thread_id), ctypes.py_object(exc))


def kill_group(pgid: int, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM a process group, then SIGKILL it after ``grace`` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return

    def finish():
        time.sleep(grace)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    threading.Thread(target=finish, name=f"kill-{pgid}", daemon=True).start()


# -- the watchdog ---------------------------------------------------------------


class _Watchdog:
    """One thread per process that fires attempts whose deadline passed."""

    def __init__(self):
        self._heap: list[tuple[float, int, Attempt]] = []
        self._cond = threading.Condition(_lock)
        self._thread: threading.Thread | None = None

    def watch(self, attempt: Attempt) -> None:
        with self._cond:
            heapq.heappush(self._heap, (attempt.deadline, attempt.key, attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="bytenite-nb-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self):
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].key not in _attempts:
                    heapq.heappop(self._heap)  # finished attempts
                if not self._heap:
                    self._cond.wait(30)
                    continue
                deadline, _, attempt = self._heap[0]
                now = time.monotonic()
                if deadline > now:
                    self._cond.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
                if attempt.reason is None and attempt.key in _attempts:
                    _stop(attempt, "timeout")


_watchdog = _Watchdog()


@contextmanager
def supervised(job_id: str, timeout: float | None, *, python: bool = False):
    """Register the running attempt for timeout and cancellation.

    Yields the :class:`Attempt`; a process app adds its process group to
    ``attempt.pgids``. On the way out the attempt is unregistered; a pending
    interruption of a Python thread that arrived too late is cleared.
    """
    check_cancelled(job_id)
    attempt = Attempt(job_id=job_id, timeout=timeout, thread_id=threading.get_ident(), python=python)
    with _lock:
        _attempts[attempt.key] = attempt
    if timeout:
        attempt.deadline = time.monotonic() + timeout
        _watchdog.watch(attempt)
    try:
        yield attempt
    finally:
        with _lock:
            _attempts.pop(attempt.key, None)
            if python and attempt.reason is not None:
                # The interruption may not have been raised yet: clear it so it
                # cannot surface later in unrelated code.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(attempt.thread_id), None)


def raise_for(attempt: Attempt, what: str = "the app", stderr_tail: str = "") -> None:
    """Turn a stopped attempt into the matching exception."""
    if attempt.reason == "timeout":
        raise TaskTimeoutError(f"{what} timed out after {attempt.timeout:g}s (taskTimeout)", stderr_tail=stderr_tail)
    if attempt.reason == "cancelled":
        raise TaskCancelled(f"job {attempt.job_id} was cancelled")


# -- pause points (fault tests) ---------------------------------------------------

PAUSE_ENV = "BYTENITE_NB_PAUSE_AT"


def pause_point(name: str) -> None:
    """Hold this process at the named moment, for a fault test to strike there.

    Only when ``$BYTENITE_NB_PAUSE_AT`` is ``NAME:FILE`` for this ``name``: the
    process writes its id to ``FILE`` and waits while ``FILE`` exists (the
    test then kills it, or removes ``FILE`` to let it go on). Unset - always,
    outside the tests - this costs one look at the environment. The points:
    ``publish-swap`` (outputs uploaded beside the destination, nothing
    changed there yet) and ``publish-success`` (outputs in place, ``_SUCCESS``
    not written yet).
    """
    setting = os.environ.get(PAUSE_ENV)
    if not setting:
        return
    point, _, path = setting.partition(":")
    if point != name or not path:
        return
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    while os.path.exists(path):
        time.sleep(0.05)
