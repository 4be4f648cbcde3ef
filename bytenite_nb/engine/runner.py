"""Running a job: plan -> one task per chunk -> assemble, recorded as it goes.

The runner lives in the process that submits the job (a notebook kernel, the
CLI, the Jupyter server). It drives the Dask graph, records every state
change in the job store (chunk updates in batches, off the hot path), emits
events to listeners (progress bars, widgets), and enforces ``jobTimeout`` and
``cancel()``.

:meth:`JobRunner.run` is a short list of named steps, read top to bottom:
reuse the result of a complete run of the same job, plan (or take the plan of
an interrupted run), map the chunks (skipping those committed before), stop
there if a chunk failed, assemble and publish, record the job complete; and,
whatever happened, finish (release the lock, record the last states, wake
whoever waits). A :class:`JobHandle` is what the user holds: it reads the
runner only through its public methods.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import store as st
from ..exceptions import ByteniteNBError, JobCancelled, JobFailed, SchedulerLost, TaskCancelled
from ..partitioners.base import ChunkRef
from ..redact import mask_values, secret_values
from ..states import Progress
from .assemble import assemble_and_publish
from .chunk import run_chunk
from .publish import read_success
from .executors import task_key
from .planning import plan_and_stage
from .staging import Staging

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
LOCK_REFRESH_BEATS = 20  # refresh the job's lock every 10 s
MAX_ERRORS_IN_MESSAGE = 3
# What of a map task's outcome a chunk's record keeps.
CHUNK_FIELDS = frozenset(("index", "state", "attempts", "duration", "error", "resumed", "files", "bytes",
                          "worker"))


@dataclass
class JobResult:
    """How a job ended: its state, outputs and per-chunk stats."""

    job_id: str
    name: str
    state: str
    destination: str | None = None
    outputs: list[dict] = field(default_factory=list)  # name, url, size, checksum
    n_chunks: int = 0
    chunks: list[dict] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None
    resumed_chunks: int = 0
    reused: bool = False  # complete already: nothing was run
    test_job: bool = False
    success_url: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: where it ran: kind, scheduler, dashboard; for a Dask Gateway cluster its name, whether shared
    cluster: dict | None = None

    @property
    def ok(self) -> bool:
        return self.state == st.COMPLETE

    @property
    def output_urls(self) -> list[str]:
        return [o["url"] for o in self.outputs]

    @property
    def failed_chunks(self) -> list[dict]:
        return [c for c in self.chunks if c.get("state") == st.CHUNK_FAILED]

    def to_dict(self) -> dict:
        return {"job_id": self.job_id, "name": self.name, "state": self.state, "destination": self.destination,
                "outputs": self.outputs, "n_chunks": self.n_chunks, "duration": self.duration,
                "error": self.error, "resumed_chunks": self.resumed_chunks, "reused": self.reused,
                "test_job": self.test_job, "success_url": self.success_url, "warnings": self.warnings,
                "cluster": self.cluster}

    def _ipython_display_(self) -> None:
        from .. import display

        display.show("result", self)

    def __repr__(self) -> str:
        outs = ", ".join(o["name"] for o in self.outputs[:3]) + (" ..." if len(self.outputs) > 3 else "")
        return (f"<JobResult {self.job_id} {self.state} chunks={self.n_chunks} "
                f"duration={self.duration:.1f}s outputs=[{outs}]>")


class JobRunner:
    """Runs one job once. Use :func:`bytenite_nb.engine.submit_job` rather than this directly.

    :meth:`run` takes the job through its steps, each a method below, in this
    order: :meth:`_reuse_if_complete`, :meth:`_start_recording`, :meth:`_plan`,
    :meth:`_map_chunks`, :meth:`_failure` (the end when a chunk failed),
    :meth:`_assemble_and_publish`, :meth:`_complete`; then, whatever happened,
    :meth:`_finish`. Others read the job through :meth:`progress_snapshot`,
    :meth:`chunk_states`, :meth:`wait` and :meth:`mask` (a :class:`JobHandle`
    does).
    """

    def __init__(self, spec, job_dict: dict, job_id: str, executor, *, store: st.JobStore | None = None,
                 force: bool = False, rerun_failed: bool = False):
        self.spec = spec
        self.job_dict = job_dict
        self.job_id = job_id
        self.executor = executor
        self.store = store or st.default_store()
        self.force = force
        self.rerun_failed = rerun_failed
        self.state = st.NEW
        self.progress = Progress()
        self.started = time.time()
        self.finished: float | None = None
        self.result: JobResult | None = None
        self.error: BaseException | None = None
        self.listeners: list[Callable[[dict], None]] = []
        self.warnings: list[str] = []
        # What an app might print that must never reach a record, an event or a message.
        self._secrets = secret_values(
            spec.storage_options, spec.source.storage_options, spec.destination.storage_options,
            spec.app_params, spec.partitioner_params, spec.assembler_params, getattr(spec.app, "env", None) or {},
            environ=dict(os.environ))
        self._lock = threading.RLock()
        self._buffer: list[dict] = []
        self._chunk_state: dict[int, dict] = {}
        # The futures of tasks still running, by key. A chunk's future is let go as
        # soon as its outcome is recorded: a future kept would make Dask run its
        # task again if the worker holding its result died.
        self._futures: dict[str, Any] = {}
        self._keys: set[str] = set()
        self._stop_reason: str | None = None
        self._failed_within_budget: list[int] = []  # minSuccessRatio: failed chunks the job completes without
        self._done = threading.Event()
        self._timer: threading.Timer | None = None
        self._staging: Staging | None = None
        self._flush_lock = threading.Lock()
        self._recorded_first_attempts = 0  # what the store holds of progress.first_attempts_running

    # -- what others read ------------------------------------------------------------------

    def progress_snapshot(self) -> Progress:
        """A copy of the chunk counts, taken consistently with the chunk moves."""
        with self._lock:
            return self.progress.copy()

    def chunk_states(self, states: tuple[str, ...] | None = None) -> dict[int, dict]:
        """A copy of what is known of each chunk: ``{index: {"state", "attempts", "error"...}}``;
        only of the chunks in ``states`` when given (a display's few, out of many thousands)."""
        with self._lock:
            if states is None:
                return {i: dict(c) for i, c in self._chunk_state.items()}
            return {i: dict(c) for i, c in self._chunk_state.items() if c["state"] in states}

    def ended(self) -> bool:
        """Has :meth:`run` finished (``result`` and ``finished`` are set)?"""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`run` finishes or ``timeout`` seconds pass; True if it finished."""
        return self._done.wait(timeout)

    def mask(self, text: str) -> str:
        """``text`` with every secret of the job (credentials, secret params) masked."""
        return mask_values(text, self._secrets)

    def subscribe(self, listener: Callable[[dict], None]) -> Callable[[], None]:
        """Call ``listener(event)`` on every event; returns a function that unsubscribes."""
        self.listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self.listeners:
                self.listeners.remove(listener)

        return unsubscribe

    # -- events ----------------------------------------------------------------------

    def emit(self, event: dict) -> None:
        """Give ``event`` to every listener (a listener that raises is logged, not heard again from here)."""
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken display must not break the job
                log.exception("job event listener failed")

    def _warn(self, message: str) -> None:
        """Something the user should know that does not fail the job."""
        self.warnings.append(message)
        self.store.add_event(self.job_id, "warning", {"message": message})
        self.emit({"type": "warning", "message": message})

    def _set_state(self, state: str, **kwargs) -> None:
        """Move the job to ``state``: recorded at once (a rare event), then announced."""
        self.state = state
        self.store.set_state(self.job_id, state, **kwargs)
        self.emit({"type": "state", "state": state, "error": kwargs.get("error")})

    def _chunk_update(self, update: dict) -> None:
        """Count a chunk's move (the hot path: one per chunk and attempt), keep
        it for the next batch of records and announce it."""
        if update.get("error"):  # app errors may quote params or URLs: mask credentials before anyone sees them
            update = {**update, "error": mask_values(update["error"], self._secrets)}
        with self._lock:
            index = update["index"]
            known = self._chunk_state.get(index)
            if not self.progress.apply(known["state"] if known else None, update):
                return  # late news of a chunk that has ended
            self._chunk_state[index] = {**known, **update} if known else dict(update)
            # Recorded in batches by the flusher thread: never a database write on
            # the hot path, nor on the Dask client's event loop (worker events).
            self._buffer.append(update)
        self.emit({"type": "chunk", **update})

    def _worker_event(self, event: dict) -> None:
        """An event from a worker (a retry, a restart) for a chunk still running."""
        if event.get("type") != "chunk":
            return
        update = {"index": event["index"], "state": event["state"], "attempts": event.get("attempt"),
                  "error": event.get("error")}
        self._chunk_update(update)

    def _flush(self) -> None:
        # One writer at a time, so batches reach the store in the order they were taken.
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if batch:
                try:
                    self.store.update_chunks(self.job_id, batch)
                except Exception:
                    log.exception("cannot record chunk states of job %s", self.job_id)

    def _flusher(self) -> None:
        beats = 0
        while not self._done.wait(FLUSH_SECONDS):
            beats += 1
            try:
                self._beat(beats)
            except Exception:  # the records and the lock must keep going whatever one beat hit
                log.exception("recording the progress of job %s failed", self.job_id)

    def _beat(self, beats: int) -> None:
        self._flush()
        if self._staging is not None and beats % LOCK_REFRESH_BEATS == 0:
            self._staging.refresh_lock()
        if self.state == st.RUNNING:
            tasks = self.executor.running(self._keys)
            with self._lock:
                if tasks is not None:
                    self.progress.set_running_tasks(tasks)
                progress = self.progress.copy()
            self._record_first_attempts(progress.first_attempts_running)
            self.emit(progress.to_event())

    def _record_first_attempts(self, count: int) -> None:
        """Tell the store how many first attempts run, when that changed: its
        summary of the job then counts them as running too."""
        if count != self._recorded_first_attempts:
            self.store.set_first_attempts_running(self.job_id, count)
            self._recorded_first_attempts = count

    # -- control -----------------------------------------------------------------------

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the job: cancel queued tasks and kill running apps on every worker."""
        with self._lock:
            if self._stop_reason or self._done.is_set():
                return
            self._stop_reason = reason
            futures = list(self._futures.values())
        self.executor.stop_job(self.job_id)
        self.executor.cancel(futures)

    def _failed_count(self) -> int:
        return sum(1 for c in self._chunk_state.values() if c["state"] == st.CHUNK_FAILED)

    def _stop_on_first_failure(self) -> None:
        """``failFast``: a chunk failed, so stop the others (they end CANCELLED)."""
        self._stop_reason = "fail-fast"
        self.executor.stop_job(self.job_id)
        self.executor.cancel(list(self._futures.values()))

    def _stop_message(self) -> str | None:
        """Why the job stopped, when a cancel or ``jobTimeout`` stopped it (a
        fail-fast stop says it with the failed chunks' errors instead)."""
        if self._stop_reason == "timeout":
            return f"job timed out after {self.spec.config['jobTimeout']:g}s (jobTimeout); nothing was written"
        if self._stop_reason == "cancelled":
            return "job was cancelled; nothing was written to the destination"
        return None

    def _check_stop(self) -> None:
        """Raise :class:`TaskCancelled` when a cancel or ``jobTimeout`` stopped the job."""
        if self._stop_reason in ("cancelled", "timeout"):
            raise TaskCancelled(self._stop_message())

    # -- the job, step by step -------------------------------------------------------------

    def run(self) -> JobResult:
        """Run the job to its end and return its :class:`JobResult` (also in
        ``self.result``). Never raises: what stopped the job is in ``self.error``
        and in the result's ``error``."""
        try:
            self.result = self._run()
        except BaseException as exc:
            self._record_crash(exc)
        finally:
            self._finish()
        return self.result

    def _run(self) -> JobResult:
        """The steps, in order; a step that ends the job early gives its result."""
        reused = self._reuse_if_complete()
        if reused is not None:
            return reused
        self._start_recording()
        refs = self._plan()
        self._map_chunks(refs)
        failure = self._failure()
        if failure is not None:
            return failure
        return self._complete(self._assemble_and_publish(refs))

    def _reuse_if_complete(self) -> JobResult | None:
        """The result of this very job if it completed before (same id, same
        output fingerprint), from the job store or the destination's
        ``_SUCCESS``, without any work; None when it has to run (or ``force``)."""
        if self.force:
            return None
        previous = self.store.get_job(self.job_id)
        done_before = bool(previous and previous["state"] == st.COMPLETE and previous.get("result"))
        if self.rerun_failed and done_before and (previous["result"].get("manifest") or {}).get("failedChunks"):
            return None  # completed without some chunks (minSuccessRatio): run those now
        # Only the same job: another job given this id (other source, app, params) runs.
        if done_before and previous["result"].get("fingerprint") == self.spec.output_fingerprint:
            return self._reused(previous["result"])
        success = None if done_before else read_success(self.spec.destination)
        if success and success.get("jobId") == self.job_id \
                and success.get("fingerprint") == self.spec.output_fingerprint and not success.get("testJob"):
            result = self._reused({"manifest": success})
            if previous is not None:
                # Recorded as ended in error (its runner lost the scheduler while the
                # output was published), yet published whole: say so in the records.
                self.store.set_state(self.job_id, st.COMPLETE, error="", result=result.to_dict() | {
                    "manifest": success, "fingerprint": self.spec.output_fingerprint})
            return result
        return None

    def _start_recording(self) -> None:
        """Record the job, start (or join) its cluster and record which it is,
        check its versions and send it the job's local code, start its
        ``jobTimeout`` clock, hear its workers' events and start the thread
        that records chunk states in batches."""
        self.store.create_job(self.job_id, self.spec.name, self.job_dict)
        self.executor.start()
        self.store.add_event(self.job_id, "cluster", self.executor.describe())
        self._check_stop()  # cancelled while its cluster started
        self._prepare_workers()
        timeout = self.spec.config.get("jobTimeout")
        if timeout:
            self._timer = threading.Timer(timeout, self.cancel, args=("timeout",))
            self._timer.daemon = True
            self._timer.start()
        self.executor.forget_job(self.job_id)
        self.executor.subscribe(self.job_id, self._worker_event)
        threading.Thread(target=self._flusher, name=f"bytenite-nb-record-{self.job_id}", daemon=True).start()

    def _prepare_workers(self) -> None:
        """Before any work: the cluster's versions checked against ours, and the
        job's local code sent to workers on other hosts (:mod:`.travel`)."""
        if self.executor.kind == "sync":
            return  # this process: nothing travels (and distributed stays unimported)
        from .travel import prepare_workers

        shipped = prepare_workers(self.executor, self.spec, self.executor.elsewhere)
        if shipped:
            self.store.add_event(self.job_id, "code-shipped", shipped)

    def _plan(self) -> list[ChunkRef]:
        """The chunks to run: the plan of an interrupted run of this job, or a
        new one made by a task near the data; recorded and announced."""
        self._set_state(st.PARTITIONING)
        staging = self._staging = Staging.of(self.spec, self.job_id)
        staging.lock()  # one runner per job id
        resumed = staging.claim(self.spec.fingerprint, force=self.force)
        refs = staging.load_plan() if resumed else None
        if refs is None:
            key = task_key("plan", self.job_id)
            fut = self.executor.submit(plan_and_stage, self.spec, self.job_id, key=key)
            with self._lock:
                self._futures[key] = fut
            refs = self._outcome(fut, "planning")
        self._check_stop()
        refs = self._chunks_to_run(refs)
        with self._lock:
            self.progress = Progress(total=len(refs))
        self.store.set_chunks(self.job_id, [r.to_dict() for r in refs])
        self.emit({"type": "planned", "chunks": len(refs)})
        return refs

    def _chunks_to_run(self, refs: list[ChunkRef]) -> list[ChunkRef]:
        """All of the plan, or its first chunk for a test job. A plan without
        chunks fails a test job (nothing to test) and warns otherwise."""
        test_job = self.spec.config.get("isTestJob")
        if not refs:
            if test_job:
                raise JobFailed("the partitioner made no chunk from the source: a test job has nothing to test")
            self._warn("the partitioner made no chunk from the source (empty files?): "
                       "the output is what the assembler makes of no results")
        return refs[:1] if test_job else refs

    def _map_chunks(self, refs: list[ChunkRef]) -> None:
        """One task per chunk not committed by an earlier run; each outcome is
        recorded as it comes. Raises :class:`TaskCancelled` on a cancel or timeout."""
        todo = self._skip_committed(refs)
        self.executor.fit(len(todo))
        self._set_state(st.RUNNING)
        keys = [task_key("chunk", self.job_id, r.index) for r in todo]
        self._keys = set(keys)
        # The map tasks need no file listing: keep what travels with every task small.
        futures = self.executor.map(run_chunk, todo, keys=keys, resources=self.spec.app.resources(),
                                    spec=dataclasses.replace(self.spec, files=[]), job_id=self.job_id)
        with self._lock:
            self._futures = dict(zip(keys, futures))
        if self._stop_reason:
            self.executor.cancel(futures)
        by_key = dict(zip(keys, todo))
        del futures
        fail_fast = self.spec.config.get("failFast")
        for batch in self.executor.completed(list(self._futures.values())):
            for key, value, error in [(fut.key, value, error) for fut, value, error in batch]:
                with self._lock:
                    self._futures.pop(key, None)
                ref = by_key[key]
                self._chunk_update(self._chunk_outcome(ref, value, error))
                if fail_fast and self._chunk_state[ref.index]["state"] == st.CHUNK_FAILED \
                        and not self._stop_reason and self._failed_count() > self._failure_budget():
                    self._stop_on_first_failure()
            batch.clear()  # nothing here holds a finished task's future while the next ones run
        with self._lock:
            self._futures = {}  # release the results held on the workers
        self._flush()
        self._check_stop()

    def _skip_committed(self, refs: list[ChunkRef]) -> list[ChunkRef]:
        """The chunks still to run: those whose results an earlier run of this
        job committed to staging count as done (resumed) and are not run again."""
        committed = self._staging.committed()
        todo: list[ChunkRef] = []
        for ref in refs:
            if ref.index in committed:
                self._chunk_update({"index": ref.index, "state": st.DONE, "resumed": True})
            else:
                todo.append(ref)
        return todo

    def _failure(self) -> JobResult | None:
        """The FAILED result when a chunk failed or was cancelled (nothing is
        assembled then); None when every chunk is done."""
        failed = sorted(i for i, c in self._chunk_state.items() if c["state"] == st.CHUNK_FAILED)
        if not failed and not self.progress.cancelled:
            return None
        if failed and not self.progress.cancelled and not self._stop_reason \
                and len(failed) <= self._failure_budget():
            self._failed_within_budget = failed
            return None
        message = self._failure_message(failed)
        self._set_state(st.FAILED, error=message)
        return self._result(st.FAILED, error=message)

    def _assemble_and_publish(self, refs: list[ChunkRef]) -> dict:
        """Assemble the committed results in chunk order and publish them to the
        destination, ``_SUCCESS`` last (one task); returns the ``_SUCCESS`` manifest."""
        self._set_state(st.ASSEMBLING)
        manifest = {
            "jobId": self.job_id, "name": self.spec.name, "chunkCount": len(refs),
            "testJob": bool(self.spec.config.get("isTestJob")),
            "partitioner": self.spec.partitioner_name, "assembler": self.spec.assembler_name,
            "fingerprint": self.spec.output_fingerprint,
        }
        # Not cancelled through Dask (a running task cannot be stopped that way): a
        # cancel reaches it on the worker, which stops before touching the destination,
        # or, if publishing has begun, lets it finish - the job is then COMPLETE.
        skipped = set(self._failed_within_budget)
        if skipped:
            # Completed without these chunks (minSuccessRatio): the assembler never sees them.
            manifest["failedChunks"] = [
                {"index": r.index, "covers": r.describe(), "error": self._chunk_state[r.index].get("error")}
                for r in refs if r.index in skipped]
            manifest["minSuccessRatio"] = self.spec.config.get("minSuccessRatio")
        fut = self.executor.submit(assemble_and_publish, self.spec, self.job_id,
                                   [r.index for r in refs if r.index not in skipped], manifest,
                                   key=task_key("assemble", self.job_id))
        return self._outcome(fut, "assembly")

    def _complete(self, manifest: dict) -> JobResult:
        """Record the job COMPLETE with its ``_SUCCESS`` manifest (what a rerun
        reuses), and remove its staging area unless ``keepStaging``."""
        skipped = (manifest.get("skipped") or {}).get("count")
        if skipped:
            self._warn(f"{skipped} bad record(s) skipped (on_bad: skip); _SUCCESS lists them under \"skipped\"")
        failed = manifest.get("failedChunks") or []
        if failed:
            self._warn(f"{len(failed)} of {self.progress.total} chunk(s) failed, within minSuccessRatio "
                       f"{self.spec.config.get('minSuccessRatio'):g}: the output lacks them and _SUCCESS lists "
                       f"them under \"failedChunks\"; rerun the failed chunks with "
                       f"`bytenite-nb rerun {self.job_id} --failed` (or job.run(id=..., rerun_failed=True))")
        result = self._result(st.COMPLETE, manifest=manifest)
        self._set_state(st.COMPLETE, result=result.to_dict() | {"manifest": manifest,
                                                                "fingerprint": self.spec.output_fingerprint})
        if not self.spec.config.get("keepStaging") and not failed:  # a rerun of the failed chunks needs it
            try:
                self._staging.remove()
            except Exception:
                log.warning("could not remove the staging area of %s", self.job_id)
        return result

    def _record_crash(self, exc: BaseException) -> None:
        """A step raised: keep the error, and record the job FAILED (CANCELLED
        after a cancel) with a message that names no secret, unless it ended already."""
        if isinstance(exc, SchedulerLost):
            exc = SchedulerLost(self._scheduler_lost_message(exc))
        self.error = exc
        if not isinstance(exc, ByteniteNBError):
            log.exception("job %s crashed", self.job_id)
        if self.state in st.FINAL_STATES:
            return
        state = st.CANCELLED if self._stop_reason == "cancelled" else st.FAILED
        message = self._stop_message() or mask_values(
            str(exc) if isinstance(exc, SchedulerLost) else f"{type(exc).__name__}: {exc}", self._secrets)
        try:
            self._set_state(state, error=message)
        except Exception:
            log.exception("cannot record the end of job %s", self.job_id)
        self.result = self._result(state, error=message)

    def _finish(self) -> None:
        """Whatever happened: nothing of the job runs any more, every chunk's last
        state is recorded, the job's lock and subscriptions are released, and
        whoever waits for the end wakes up."""
        with self._lock:
            self.progress.set_running_tasks(0)  # nothing of the job runs any more
            self._futures = {}
            progress = self.progress.copy()
        if self._staging is not None:
            self._staging.unlock()
        # Recorded before the end is announced: whoever reads the store after
        # result() returns sees every chunk's last state.
        self._flush()
        self.emit(progress.to_event())
        if self._timer:
            self._timer.cancel()
        self.executor.unsubscribe(self.job_id)
        try:
            # A cluster made for the job ends with it, before the end is announced:
            # whoever waited finds no cluster of the job left running.
            self.executor.release()
        except Exception:
            log.exception("could not release the cluster of job %s", self.job_id)
        self.finished = time.time()  # before the end is announced: who waited reads it
        self._done.set()

    # -- what the steps say ------------------------------------------------------------------

    def _outcome(self, fut, what: str) -> Any:
        """The result of the plan or assemble task, with errors said plainly."""
        try:
            return self.executor.outcome(fut)
        except BaseException as exc:
            if self._stop_reason in ("cancelled", "timeout"):
                raise TaskCancelled(self._stop_message()) from exc
            if isinstance(exc, ByteniteNBError):
                raise
            name = type(exc).__name__
            if name == "CancelledError":
                raise TaskCancelled(f"{what} was cancelled") from exc
            raise JobFailed(f"{what} failed: {name}: {exc}") from exc

    def _chunk_outcome(self, ref: ChunkRef, outcome: dict | None, exc: BaseException | None) -> dict:
        """The chunk update a map task's outcome (or error) makes; an error names the chunk."""
        if exc is not None:
            name = type(exc).__name__
            if self._stop_reason or name == "CancelledError":
                return {"index": ref.index, "state": st.CHUNK_CANCELLED}
            if name == "KilledWorker":
                error = f"chunk {ref.index} ({ref.describe()}): the workers running it died repeatedly ({exc})"
            else:
                error = f"chunk {ref.index} ({ref.describe()}): {name}: {exc}"
            return {"index": ref.index, "state": st.CHUNK_FAILED, "error": error}
        return {k: v for k, v in outcome.items() if k in CHUNK_FIELDS}

    def _scheduler_lost_message(self, exc: SchedulerLost) -> str:
        """What a lost scheduler means for the destination, and how to go on."""
        if self.state == st.ASSEMBLING:
            # The assemble task may still run on its worker: it publishes whole, or not at all.
            where = ("the assembly was under way: its worker may still publish the output, which is complete "
                     "once _SUCCESS is written")
        else:
            where = "nothing was written to the destination"
        return (f"{exc}; {where}. Run the job again with the same id (bytenite-nb run JOB_FILE --id {self.job_id}, "
                f"or job.run(id={self.job_id!r})) on a running scheduler: the chunks committed so far are not run again")

    def _failure_budget(self) -> int:
        """How many chunks may fail with the job still completing (``config.minSuccessRatio``):
        0 unless the ratio is below 1."""
        ratio = self.spec.config.get("minSuccessRatio", 1.0)
        if ratio is None or ratio >= 1:
            return 0
        return int(self.progress.total - math.ceil(ratio * self.progress.total - 1e-9))

    def _failure_message(self, failed: list[int]) -> str:
        """Why the job failed: how many chunks, and the first errors."""
        if not failed:
            return f"{self.progress.cancelled} chunk(s) were cancelled; nothing was written to the destination"
        errors = [self._chunk_state[i].get("error") or f"chunk {i} failed" for i in failed[:MAX_ERRORS_IN_MESSAGE]]
        more = f"\n... and {len(failed) - MAX_ERRORS_IN_MESSAGE} more failed chunk(s)" if len(failed) > MAX_ERRORS_IN_MESSAGE else ""
        return (f"{len(failed)} of {self.progress.total} chunk(s) failed; nothing was written to the destination. "
                f"Run again with the same id to retry only the chunks that did not complete.\n"
                + "\n".join(errors) + more)

    def _result(self, state: str, *, error: str | None = None, manifest: dict | None = None) -> JobResult:
        """The :class:`JobResult` of a job that ran, ending in ``state``."""
        chunks = [dict(self._chunk_state[i]) for i in sorted(self._chunk_state)]
        manifest = manifest or {}
        dest = self.spec.destination.url
        return JobResult(
            job_id=self.job_id, name=self.spec.name, state=state, destination=dest,
            outputs=manifest.get("files", []), n_chunks=self.progress.total, chunks=chunks,
            duration=time.time() - self.started, error=error, resumed_chunks=self.progress.resumed,
            test_job=bool(self.spec.config.get("isTestJob")),
            success_url=(dest.rstrip("/") + "/_SUCCESS") if manifest else None,
            warnings=list(self.warnings), cluster=self.executor.describe(),
        )

    def _reused(self, record: dict) -> JobResult:
        """The :class:`JobResult` of a job complete before, from its record or its ``_SUCCESS``."""
        manifest = record.get("manifest") or {}
        self.state = st.COMPLETE
        total = manifest.get("chunkCount", record.get("n_chunks", 0)) or 0
        self.progress = Progress(total=total, done=total)
        self.emit({"type": "state", "state": st.COMPLETE, "reused": True})
        dest = self.spec.destination.url
        return JobResult(
            job_id=self.job_id, name=self.spec.name, state=st.COMPLETE, destination=dest,
            outputs=manifest.get("files", record.get("outputs", [])), n_chunks=self.progress.total,
            duration=0.0, reused=True, success_url=dest.rstrip("/") + "/_SUCCESS",
        )


class JobHandle:
    """A job running in a thread of its own: ``.status``, ``.progress``,
    ``.cancel()``, ``.wait()``, ``.result()``.

    >>> import bytenite_nb as bn
    >>> _ = open("poem.txt", "w").write("one\\ntwo\\nthree\\n")
    >>> job = bn.Job(source="poem.txt", partitioner="split-lines", app="identity", assembler="concat",
    ...              destination="out/", params={"partitioner": {"lines_per_chunk": 1}})
    >>> handle = job.submit(scheduler="sync")
    >>> handle.wait(60), handle.done(), handle.status
    (True, True, 'COMPLETE')
    >>> handle.progress.summary()
    '3/3 done'
    >>> sorted(handle.chunk_states), handle.chunk_states[0]["state"], handle.chunks_in("FAILED")
    ([0, 1, 2], 'DONE', {})
    >>> handle.cluster
    {'kind': 'sync', 'scheduler': 'sync', 'dashboard': None}
    >>> handle.result().outputs[0]["name"], open("out/output.bin").read()
    ('output.bin', 'one\\ntwo\\nthree\\n')
    """

    def __init__(self, runner: JobRunner):
        self._runner = runner

    @classmethod
    def start(cls, runner: JobRunner) -> "JobHandle":
        """Run ``runner``'s job in a thread of its own; return its handle at once."""
        threading.Thread(target=runner.run, name=f"bytenite-nb-job-{runner.job_id}", daemon=True).start()
        return cls(runner)

    @property
    def job_id(self) -> str:
        return self._runner.job_id

    @property
    def name(self) -> str:
        return self._runner.spec.name

    @property
    def status(self) -> str:
        """NEW, PARTITIONING, RUNNING, ASSEMBLING, COMPLETE, FAILED or CANCELLED."""
        return self._runner.state

    @property
    def progress(self) -> Progress:
        """A snapshot of the chunk counts (:class:`~bytenite_nb.states.Progress`):
        ``handle.progress.done``, ``.pending``, ``.total``..."""
        return self._runner.progress_snapshot()

    @property
    def started_at(self) -> float:
        """When the job was submitted (seconds since the epoch)."""
        return self._runner.started

    @property
    def finished_at(self) -> float | None:
        """When the job ended (seconds since the epoch); None while it runs."""
        return self._runner.finished

    @property
    def elapsed(self) -> float:
        """Seconds since the job was submitted (until it ended, once it has)."""
        return (self._runner.finished or time.time()) - self._runner.started

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard of the cluster the job runs on (None for the synchronous scheduler)."""
        return self._runner.executor.dashboard_link

    @property
    def cluster(self) -> dict:
        """Where the job runs: ``{"kind": "dask", "sync" or "gateway", "scheduler": address,
        "dashboard": link}``; a Gateway cluster also has its ``name`` and whether it is ``shared``."""
        return self._runner.executor.describe()

    @property
    def store(self) -> st.JobStore:
        """The job store the job's records go to (each chunk's history is read from it)."""
        return self._runner.store

    @property
    def chunk_states(self) -> dict[int, dict]:
        """What is known of each chunk so far: ``{index: {"state", "attempts", "error", "worker"...}}``."""
        return self._runner.chunk_states()

    def chunks_in(self, *states: str) -> dict[int, dict]:
        """What is known of the chunks in ``states`` only, e.g. ``handle.chunks_in("FAILED")``:
        what a display shows, without a copy of every chunk of a large job."""
        return self._runner.chunk_states(states)

    def subscribe(self, listener: Callable[[dict], None]) -> Callable[[], None]:
        """Call ``listener(event)`` on every event; returns a function that unsubscribes."""
        return self._runner.subscribe(listener)

    def cancel(self) -> None:
        """Stop the job; nothing is written to the destination."""
        self._runner.cancel("cancelled")

    def done(self) -> bool:
        """Has the job ended (COMPLETE, FAILED or CANCELLED)?"""
        return self._runner.ended()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job ends or ``timeout`` seconds pass; True if it ended."""
        return self._runner.wait(timeout)

    def result(self, timeout: float | None = None, *, raise_on_error: bool = True) -> JobResult:
        """Wait for the end; return the :class:`JobResult`, or raise :class:`JobFailed`
        (:class:`JobCancelled` if cancelled) unless ``raise_on_error=False``."""
        if not self._runner.wait(timeout):
            raise TimeoutError(f"job {self.job_id} still {self.status} after {timeout}s")
        result = self._runner.result
        if raise_on_error and (result is None or not result.ok):
            error = self._runner.error
            message = (result.error if result else None) or str(error)
            cls = JobCancelled if result is not None and result.state == st.CANCELLED else JobFailed
            if error is not None and not isinstance(error, (TaskCancelled, JobFailed)) and isinstance(error, ByteniteNBError):
                message = self._runner.mask(str(error))
            raise cls(f"job {self.job_id} {result.state if result else 'FAILED'}: {message}", result) from error
        return result

    def _ipython_display_(self) -> None:
        from .. import display

        display.show("handle", self)

    def __repr__(self) -> str:
        return f"<JobHandle {self.job_id} {self.status} {self.progress.summary()}>"
