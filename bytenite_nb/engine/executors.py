"""Where tasks run: a Dask cluster, or this process (the synchronous scheduler).

The runner speaks to both through the same small interface: submit a task,
map a task over chunks, iterate results as they complete, cancel, and reach
every worker to stop a job's running apps.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Callable, Iterator

from .. import supervision as control
from ..exceptions import SchedulerLost
from . import events

log = logging.getLogger(__name__)


#: why the client cancels every future when its connection to the scheduler breaks
SCHEDULER_LOST = "scheduler-connection-lost"
GATHER_SECONDS = 0.25
GATHER_BATCH = 1000
POLL_MIN, POLL_MAX = 0.01, 0.05  # seconds between looks at the tasks' states
#: the share of a core looking at many thousands of tasks' states may take: on a
#: busy machine the workers and the scheduler need the rest (10,000 tasks: a look every 0.2 s or so)
SCAN_SHARE = 0.01


class DaskExecutor:
    """Tasks on a ``distributed`` cluster: a client's, or that of a cluster the
    job uses (``cluster``, from :func:`bytenite_nb.cluster.job_cluster`), which
    :meth:`start` starts or joins, :meth:`fit` sizes for the chunks and
    :meth:`release` lets go of (a cluster made for the job is shut down)."""

    kind = "dask"

    def __init__(self, client=None, *, cluster=None):
        self._client = client
        self.cluster = cluster
        self._scheduler_address: str | None = None  # still known once the scheduler is gone
        #: the workers' hosts (or cluster kind) when not this machine (:mod:`.travel`)
        self.elsewhere: list[str] = []

    @property
    def client(self):
        if self._client is None:
            self.start()
        return self._client

    def start(self) -> None:
        """Have a client: start (or join) the job's cluster when there is one."""
        if self._client is None and self.cluster is not None:
            self._client = self.cluster.start()

    def fit(self, tasks: int) -> None:
        """Size the job's cluster for ``tasks`` tasks (a cluster made for the job adapts)."""
        if self.cluster is not None:
            self.cluster.fit(tasks)

    def release(self) -> None:
        """The job is over: shut down a cluster made for it (a shared one keeps running)."""
        if self.cluster is not None:
            self.cluster.release()

    def describe(self) -> dict:
        """Where the job runs, for its record: kind, scheduler, dashboard (and a Gateway cluster's name)."""
        if self.cluster is not None:
            return self.cluster.describe()
        return {"kind": self.kind, "scheduler": self.address, "dashboard": self.dashboard_link}

    @property
    def dashboard_link(self) -> str | None:
        if self.cluster is not None:
            return self.cluster.describe().get("dashboard")
        try:
            return self.client.dashboard_link
        except Exception:
            return None

    @property
    def address(self) -> str | None:
        if self._client is None:
            return None
        try:
            return self.client.scheduler.address
        except Exception:
            return None

    def submit(self, fn: Callable, *args, key: str | None = None, resources: dict | None = None):
        future = self.client.submit(fn, *args, key=key, pure=False, resources=resources or None)
        self._scheduler_address = self._scheduler_address or self.address
        return future

    def map(self, fn: Callable, items: list, *, keys: list[str], resources: dict | None = None, **kwargs):
        if not items:
            return []
        if resources:
            resources = usable_resources(self.client, resources,
                                         coming=getattr(self.cluster, "worker_resources", None))
        # What every task shares (a job's spec) travels pickled once: see :class:`Shared`.
        futures = self.client.map(call_with_shared, items, key=keys, pure=False, resources=resources or None,
                                  fn=fn, shared=Shared.of(kwargs))
        self._scheduler_address = self._scheduler_address or self.address
        return futures

    def completed(self, futures: list) -> Iterator[list[tuple[Any, Any, BaseException | None]]]:
        """Batches of ``(future, result, error)`` as tasks finish.

        The futures' states are read where the client keeps them (the scheduler
        reports every change to it), a look every 10 to 50 ms, rather than
        through ``as_completed``, which runs a coroutine and a lock handoff per
        task on the client's event loop (1.25x against 1.16x a bare
        ``client.map`` in ``benchmarks/overhead.py``). Results are gathered in
        bulk: a burst of finished tasks costs one round trip per
        ``GATHER_SECONDS``, and the first result after a quiet spell comes at once.
        """
        pending = list(futures)
        del futures  # a future this generator no longer needs must not be held here
        finished: list = []
        last = 0.0
        pause = POLL_MIN
        while pending or finished:
            scan_started = time.monotonic()
            still, failed = [], []
            for f in pending:
                status = f.status
                if status in ("pending", "lost"):  # lost: the scheduler runs it again
                    still.append(f)
                elif status == "finished":
                    finished.append(f)
                else:
                    failed.append(f)
            scan = time.monotonic() - scan_started
            news = len(pending) - len(still)
            pending = still
            # A lost scheduler cancels every future at once: one of them says why.
            cancelled = next((f for f in failed if f.status == "cancelled"), None)
            if cancelled is not None and _cancel_reason(cancelled) == SCHEDULER_LOST:
                raise self._scheduler_lost()
            if failed:
                yield [(f, None, _error_of(f)) for f in failed]
            now = time.monotonic()
            if finished and (now - last >= GATHER_SECONDS or len(finished) >= GATHER_BATCH or not pending):
                try:
                    values = self.client.gather(finished, errors="raise")
                except BaseException as exc:
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        raise
                    connection_lost = _is_connection_error(exc)
                    if not connection_lost and all(f.status == "finished" for f in finished):
                        raise
                    # Some were cancelled (a cancel, fail-fast) or lost since they
                    # finished, or the scheduler's connection broke (the client
                    # reconnects, or gives up and cancels every future with the reason
                    # looked for above): look at them again rather than lose the others.
                    pending, finished = finished + pending, []
                    if connection_lost:
                        time.sleep(POLL_MAX)
                    continue
                yield list(zip(finished, values, [None] * len(finished)))
                finished, last = [], now
            if pending:
                # Back off while nothing happens; look again soon once things do.
                pause = POLL_MIN if news else min(pause * 2, POLL_MAX)
                # A look at many thousands of tasks costs a little CPU: never more than SCAN_SHARE of it.
                time.sleep(max(pause, scan / SCAN_SHARE))

    def outcome(self, future) -> Any:
        """The result of a finished future; raises if the task erred or was cancelled
        (:class:`SchedulerLost` when the scheduler went away)."""
        try:
            return future.result()
        except BaseException as exc:
            if getattr(exc, "reason", None) == SCHEDULER_LOST:
                raise self._scheduler_lost() from exc
            raise

    def _scheduler_lost(self) -> SchedulerLost:
        address = self._scheduler_address or self.address
        return SchedulerLost(f"lost the connection to the Dask scheduler at {address} (it stopped, or the "
                             f"network to it failed), and the job's tasks with it")

    def cancel(self, futures: list) -> None:
        if futures:
            self.client.cancel(futures)

    def stop_job(self, job_id: str) -> None:
        """Kill the job's running apps on every worker."""
        if self._client is None:
            return  # its cluster has not started: nothing of the job runs
        try:
            self.client.run(control.cancel_job, job_id)
        except Exception as exc:
            log.warning("could not reach every worker to stop job %s: %s", job_id, exc)

    def forget_job(self, job_id: str) -> None:
        try:
            self.client.run(control.forget_job, job_id)
        except Exception as exc:
            log.warning("could not reset workers for job %s: %s", job_id, exc)

    def subscribe(self, job_id: str, handler: Callable[[dict], None]) -> None:
        self.client.subscribe_topic(events.topic(job_id), lambda ev: handler(ev[1]))

    def unsubscribe(self, job_id: str) -> None:
        if self._client is None:
            return
        try:
            self.client.unsubscribe_topic(events.topic(job_id))
        except Exception:
            pass

    def running(self, keys: set[str]) -> int | None:
        """How many of ``keys`` are running on a worker right now.

        The scheduler counts a task as processing as soon as a worker holds it,
        a little ahead of a free thread; a worker cannot run more than its threads.
        """
        try:
            processing = self.client.processing()
            threads = self.client.nthreads()
        except Exception:
            return None
        return sum(min(sum(1 for k in tasks if k in keys), threads.get(worker, 1))
                   for worker, tasks in processing.items())


class Shared:
    """Keyword arguments every task of a map gets, pickled once by the client.

    Dask sends each task's arguments to its worker on their own: a job's spec
    (its locations, app and components) was pickled by the scheduler and
    rebuilt by the worker for every chunk, a measurable part of a no-op
    chunk's cost. Bytes travel as they are, and a worker unpickles them once
    (the last few are kept, by their bytes), so the tasks of a job on one
    worker share one spec, as its threads always shared the app's code.

    >>> shared = Shared.of({"job_id": "j1"})
    >>> shared.value() is Shared(shared.blob).value(), shared.value()
    (True, {'job_id': 'j1'})
    """

    __slots__ = ("blob",)
    KEPT = 8

    def __init__(self, blob: bytes):
        self.blob = blob

    @classmethod
    def of(cls, value: Any) -> "Shared":
        from distributed.protocol.pickle import dumps  # cloudpickle for what plain pickle cannot take

        return cls(dumps(value))

    def value(self) -> Any:
        """The value, unpickled once per process."""
        with _shared_lock:
            found = _shared.get(self.blob)
            if found is not None:
                _shared.move_to_end(self.blob)
                return found
        from distributed.protocol.pickle import loads

        found = loads(self.blob)
        with _shared_lock:
            _shared[self.blob] = found
            while len(_shared) > self.KEPT:
                _shared.popitem(last=False)
        return found

    def __reduce__(self):
        return Shared, (self.blob,)


_shared: "OrderedDict[bytes, Any]" = OrderedDict()
_shared_lock = threading.Lock()


def call_with_shared(item: Any, *, fn: Callable, shared: Shared) -> Any:
    """``fn(item, **shared kwargs)``: a map task of :meth:`DaskExecutor.map`."""
    return fn(item, **shared.value())


class _LazyFuture(concurrent.futures.Future):
    def __init__(self, fn: Callable, args: tuple, kwargs: dict):
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def run(self) -> None:
        if not self.set_running_or_notify_cancel():
            return
        try:
            self.set_result(self.fn(*self.args, **self.kwargs))
        except BaseException as exc:  # delivered through .result()
            self.set_exception(exc)


class SyncExecutor:
    """Every task in the calling thread, one after the other: for debugging with
    ``pdb``, print statements and ``memory://`` sources."""

    kind = "sync"
    dashboard_link = None
    address = "sync"
    elsewhere: list[str] = []  # always this process

    def __init__(self):
        self._running_key: str | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Nothing to start: tasks run in the calling thread."""

    def fit(self, tasks: int) -> None:
        """No cluster to size."""

    def release(self) -> None:
        """No cluster to let go of."""

    def describe(self) -> dict:
        return {"kind": self.kind, "scheduler": self.address, "dashboard": None}

    def submit(self, fn: Callable, *args, key: str | None = None, resources: dict | None = None):
        fut = _LazyFuture(fn, args, {})
        fut.run()
        return fut

    def map(self, fn: Callable, items: list, *, keys: list[str], resources: dict | None = None, **kwargs):
        futs = []
        for item, key in zip(items, keys):
            fut = _LazyFuture(fn, (item,), kwargs)
            fut.key = key
            futs.append(fut)
        return futs

    def completed(self, futures: list) -> Iterator[list[tuple[Any, Any, BaseException | None]]]:
        for fut in futures:
            if not fut.cancelled():
                with self._lock:
                    self._running_key = getattr(fut, "key", None)
                fut.run()
                with self._lock:
                    self._running_key = None
            if fut.cancelled():
                yield [(fut, None, concurrent.futures.CancelledError())]
            elif fut.exception() is not None:
                yield [(fut, None, fut.exception())]
            else:
                yield [(fut, fut.result(), None)]

    def outcome(self, future) -> Any:
        return future.result()

    def cancel(self, futures: list) -> None:
        for fut in futures:
            fut.cancel()

    def stop_job(self, job_id: str) -> None:
        control.cancel_job(job_id)

    def forget_job(self, job_id: str) -> None:
        control.forget_job(job_id)

    def subscribe(self, job_id: str, handler: Callable[[dict], None]) -> None:
        events.register_sink(job_id, handler)

    def unsubscribe(self, job_id: str) -> None:
        events.unregister_sink(job_id)

    def running(self, keys: set[str]) -> int | None:
        with self._lock:
            return 1 if self._running_key in keys else 0


def usable_resources(client, needs: dict[str, float], coming: list[dict] | None = None) -> dict[str, float] | None:
    """The resources to ask Dask for, given what the cluster's workers declare
    (and ``coming``: what workers the cluster is starting will declare, such as
    a Kubernetes worker group's pods that have not joined yet).

    ``cpu`` and ``memory`` are asked for only when some worker declares them:
    a cluster that does not count them (a plain ``Client()``) runs the tasks
    anywhere, as it would any task. ``gpu`` is always asked for. When the
    cluster has workers but none offers what is asked, raise
    :class:`ResourceUnavailable` at once: Dask would hold the tasks forever.
    A cluster without workers yet (one that scales on demand) is trusted.
    """
    from ..exceptions import ResourceUnavailable

    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not workers:
        return dict(needs)
    offers = [w.get("resources") or {} for w in workers.values()] + [dict(c) for c in coming or []]
    declared = {name for offer in offers for name in offer}
    asked = {name: amount for name, amount in needs.items() if name in declared or name == "gpu"}
    if not asked:
        return None
    if any(all(offer.get(name, 0) >= amount for name, amount in asked.items()) for offer in offers):
        return asked

    def show(res: dict) -> str:
        return ", ".join(f"{k}={v / 1e9:g}GB" if k == "memory" else f"{k}={v:g}" for k, v in sorted(res.items())) or "none"

    best = sorted({show(o) for o in offers})
    raise ResourceUnavailable(
        f"the app needs {show(asked)} per task (its device_requirements), but no worker of the cluster offers "
        f"that; the workers offer: {'; '.join(best[:5])}. Start workers that declare these resources "
        f"(dask worker --resources \"cpu=2,memory=8e9\"), or run on fewer, larger local workers (--workers 1)")


def _is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a broken connection to the scheduler (distributed's
    ``CommClosedError``, or a reset socket), not an error of the tasks.

    >>> _is_connection_error(ConnectionResetError(104, "Connection reset by peer"))
    True
    >>> _is_connection_error(ValueError("bad row"))
    False
    """
    if isinstance(exc, ConnectionError):
        return True
    try:
        from distributed.comm.core import CommClosedError
    except ImportError:  # no distributed: no scheduler to lose
        return False
    return isinstance(exc, CommClosedError)


def _cancel_reason(future) -> str | None:
    """Why Dask cancelled ``future`` (e.g. :data:`SCHEDULER_LOST`), if it says."""
    try:
        future.result(timeout=5)
    except BaseException as exc:
        return getattr(exc, "reason", None)
    return None


def _error_of(future) -> BaseException:
    if future.status == "cancelled":
        return concurrent.futures.CancelledError(f"{future.key} was cancelled")
    try:
        return future.exception() or RuntimeError(f"{future.key} ended as {future.status}")
    except BaseException as exc:  # CancelledError raised by .exception()
        return exc


def task_key(kind: str, job_id: str, index: int | None = None) -> str:
    """Readable, unique Dask keys: ``bytenite-nb-chunk-<job>-7-1a2b3c``."""
    suffix = uuid.uuid4().hex[:6]
    return f"bytenite-nb-{kind}-{job_id}" + (f"-{index}" if index is not None else "") + f"-{suffix}"


def make_executor(*, client=None, scheduler: str | None = None, workers: int | None = None,
                  threads_ok: bool = False, cluster: str | None = None, job_config: dict | None = None,
                  spec=None):
    """The executor for ``client``/``cluster`` (or ``scheduler``)/``workers``, resolved by
    :func:`bytenite_nb.cluster.resolve` (``"sync"``: this process; ``threads_ok``:
    a local cluster may be threads of this process, for apps that run their own processes).
    A Gateway cluster made for the job takes ``clusterOptions`` and ``maxWorkers``
    from ``job_config``; a Kubernetes cluster made for the job is built from its
    ``spec``; either starts with the executor's :meth:`~DaskExecutor.start`."""
    from ..cluster import client_for, job_cluster, resolve

    target = resolve(client=client, scheduler=scheduler, workers=workers, threads_ok=threads_ok, cluster=cluster)
    if target.kind == "sync":
        return SyncExecutor()
    job_config = job_config or {}
    for_job = job_cluster(target, options=job_config.get("clusterOptions"), max_workers=job_config.get("maxWorkers"),
                          spec=spec)
    if for_job is not None:
        return DaskExecutor(cluster=for_job)
    return DaskExecutor(client_for(target))
