"""Running a job: plan -> one task per chunk -> assemble, recorded as it goes.

The runner lives in the process that submits the job (a notebook kernel, the
CLI, the Jupyter server). It drives the Dask graph, records every state
change in the job store (chunk updates in batches, off the hot path), emits
events to listeners (progress bars, widgets), and enforces ``jobTimeout`` and
``cancel()``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import store as st
from ..exceptions import ByteniteNBError, JobCancelled, JobFailed, TaskCancelled
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
                "test_job": self.test_job, "success_url": self.success_url, "warnings": self.warnings}

    def _ipython_display_(self) -> None:
        from .. import display

        display.show("result", self)

    def __repr__(self) -> str:
        outs = ", ".join(o["name"] for o in self.outputs[:3]) + (" ..." if len(self.outputs) > 3 else "")
        return (f"<JobResult {self.job_id} {self.state} chunks={self.n_chunks} "
                f"duration={self.duration:.1f}s outputs=[{outs}]>")


class JobRunner:
    """Runs one job once. Use :func:`bytenite_nb.engine.submit_job` rather than this directly."""

    def __init__(self, spec, job_dict: dict, job_id: str, executor, *, store: st.JobStore | None = None,
                 force: bool = False, owns_executor: bool = False):
        self.spec = spec
        self.job_dict = job_dict
        self.job_id = job_id
        self.executor = executor
        self.store = store or st.default_store()
        self.force = force
        self.owns_executor = owns_executor
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
        self._futures: list = []
        self._keys: set[str] = set()
        self._stop_reason: str | None = None
        self._done = threading.Event()
        self._timer: threading.Timer | None = None
        self._staging: Staging | None = None
        self._flush_lock = threading.Lock()
        self._recorded_first_attempts = 0  # what the store holds of progress.first_attempts_running

    # -- events ----------------------------------------------------------------------

    def emit(self, event: dict) -> None:
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
        self.state = state
        self.store.set_state(self.job_id, state, **kwargs)
        self.emit({"type": "state", "state": state, "error": kwargs.get("error")})

    def _chunk_update(self, update: dict) -> None:
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
            futures = list(self._futures)
        self.executor.stop_job(self.job_id)
        self.executor.cancel(futures)

    # -- the job -------------------------------------------------------------------------

    def run(self) -> JobResult:
        try:
            self.result = self._run()
        except BaseException as exc:
            self.error = exc
            if not isinstance(exc, ByteniteNBError):
                log.exception("job %s crashed", self.job_id)
            if self.state not in st.FINAL_STATES:
                state = st.CANCELLED if self._stop_reason == "cancelled" else st.FAILED
                message = self._stop_message() or mask_values(f"{type(exc).__name__}: {exc}", self._secrets)
                try:
                    self._set_state(state, error=message)
                except Exception:
                    log.exception("cannot record the end of job %s", self.job_id)
                self.result = self._result(state, error=message)
        finally:
            with self._lock:
                self.progress.set_running_tasks(0)  # nothing of the job runs any more
                self._futures = []
                progress = self.progress.copy()
            if self._staging is not None:
                self._staging.unlock()
            # Recorded before the end is announced: whoever reads the store after
            # result() returns sees every chunk's last state.
            self._flush()
            self.emit(progress.to_event())
            self._done.set()
            if self._timer:
                self._timer.cancel()
            self.executor.unsubscribe(self.job_id)
            self.finished = time.time()
            if self.owns_executor:
                self.executor.close()
        return self.result

    def _stop_message(self) -> str | None:
        if self._stop_reason == "timeout":
            return f"job timed out after {self.spec.config['jobTimeout']:g}s (jobTimeout); nothing was written"
        if self._stop_reason == "cancelled":
            return "job was cancelled; nothing was written to the destination"
        if self._stop_reason == "fail-fast":
            return None
        return None

    def _check_stop(self) -> None:
        if self._stop_reason in ("cancelled", "timeout"):
            raise TaskCancelled(self._stop_message())

    def _run(self) -> JobResult:
        spec, job_id, cfg = self.spec, self.job_id, self.spec.config
        # A job done before is reported without work, unless forced.
        if not self.force:
            previous = self.store.get_job(job_id)
            done_before = bool(previous and previous["state"] == st.COMPLETE and previous.get("result"))
            # Only the same job: another job given this id (other source, app, params) runs.
            if done_before and previous["result"].get("fingerprint") == spec.output_fingerprint:
                return self._reused(previous["result"])
            success = None if done_before else read_success(spec.destination)
            if success and success.get("jobId") == job_id and success.get("fingerprint") == spec.output_fingerprint \
                    and not success.get("testJob"):
                return self._reused({"manifest": success})
        self.store.create_job(job_id, spec.name, self.job_dict)
        if cfg.get("jobTimeout"):
            self._timer = threading.Timer(cfg["jobTimeout"], self.cancel, args=("timeout",))
            self._timer.daemon = True
            self._timer.start()
        self.executor.forget_job(job_id)
        self.executor.subscribe(job_id, self._worker_event)
        threading.Thread(target=self._flusher, name=f"bytenite-nb-record-{job_id}", daemon=True).start()

        # 1. plan (a task near the data), or reuse the plan of an interrupted run
        self._set_state(st.PARTITIONING)
        staging = self._staging = Staging.of(spec, job_id)
        staging.lock()  # one runner per job id
        resumed = staging.claim(spec.fingerprint, force=self.force)
        refs = staging.load_plan() if resumed else None
        if refs is None:
            fut = self.executor.submit(plan_and_stage, spec, job_id, key=task_key("plan", job_id))
            with self._lock:
                self._futures.append(fut)
            refs = self._outcome(fut, "planning")
        self._check_stop()
        if not refs:
            if cfg.get("isTestJob"):
                raise JobFailed("the partitioner made no chunk from the source: a test job has nothing to test")
            self._warn("the partitioner made no chunk from the source (empty files?): "
                       "the output is what the assembler makes of no results")
        if cfg.get("isTestJob"):
            refs = refs[:1]
        with self._lock:
            self.progress = Progress(total=len(refs))
        self.store.set_chunks(job_id, [r.to_dict() for r in refs])
        self.emit({"type": "planned", "chunks": len(refs)})

        # 2. one task per chunk; committed chunks are not run again
        committed = staging.committed()
        todo: list[ChunkRef] = []
        for ref in refs:
            if ref.index in committed:
                self._chunk_update({"index": ref.index, "state": st.DONE, "resumed": True})
            else:
                todo.append(ref)
        self._set_state(st.RUNNING)
        keys = [task_key("chunk", job_id, r.index) for r in todo]
        self._keys = set(keys)
        # The map tasks need no file listing: keep what travels with every task small.
        futures = self.executor.map(run_chunk, todo, keys=keys, resources=spec.app.resources(),
                                    spec=dataclasses.replace(spec, files=[]), job_id=job_id)
        with self._lock:
            self._futures = list(futures)
        if self._stop_reason:
            self.executor.cancel(futures)
        by_key = {k: r for k, r in zip(keys, todo)}
        del futures
        for batch in self.executor.completed(self._futures):
            for fut, value, error in batch:
                ref = by_key[fut.key]
                self._chunk_update(self._chunk_outcome(ref, value, error))
                if self._chunk_state[ref.index]["state"] == st.CHUNK_FAILED and cfg.get("failFast") \
                        and not self._stop_reason:
                    self._stop_reason = "fail-fast"
                    self.executor.stop_job(job_id)
                    self.executor.cancel(self._futures)
        with self._lock:
            self._futures = []  # release the results held on the workers
        self._flush()
        self._check_stop()
        failed = sorted(i for i, c in self._chunk_state.items() if c["state"] == st.CHUNK_FAILED)
        if failed or self.progress.cancelled:
            message = self._failure_message(failed)
            self._set_state(st.FAILED, error=message)
            return self._result(st.FAILED, error=message)

        # 3. assemble and publish; _SUCCESS last
        self._set_state(st.ASSEMBLING)
        manifest = {
            "jobId": job_id, "name": spec.name, "chunkCount": len(refs), "testJob": bool(cfg.get("isTestJob")),
            "partitioner": spec.partitioner_name, "assembler": spec.assembler_name,
            "fingerprint": spec.output_fingerprint,
        }
        # Not cancelled through Dask (a running task cannot be stopped that way): a
        # cancel reaches it on the worker, which stops before touching the destination,
        # or, if publishing has begun, lets it finish - the job is then COMPLETE.
        fut = self.executor.submit(assemble_and_publish, spec, job_id, [r.index for r in refs], manifest,
                                   key=task_key("assemble", job_id))
        manifest = self._outcome(fut, "assembly")
        result = self._result(st.COMPLETE, manifest=manifest)
        self._set_state(st.COMPLETE, result=result.to_dict() | {"manifest": manifest, "fingerprint": spec.output_fingerprint})
        if not cfg.get("keepStaging"):
            try:
                staging.remove()
            except Exception:
                log.warning("could not remove the staging area of %s", job_id)
        return result

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
        if exc is not None:
            name = type(exc).__name__
            if self._stop_reason or name == "CancelledError":
                return {"index": ref.index, "state": st.CHUNK_CANCELLED}
            if name == "KilledWorker":
                error = f"chunk {ref.index} ({ref.describe()}): the workers running it died repeatedly ({exc})"
            else:
                error = f"chunk {ref.index} ({ref.describe()}): {name}: {exc}"
            return {"index": ref.index, "state": st.CHUNK_FAILED, "error": error}
        return {k: v for k, v in outcome.items() if k in ("index", "state", "attempts", "duration", "error", "resumed", "files", "bytes")}

    def _failure_message(self, failed: list[int]) -> str:
        if not failed:
            return f"{self.progress.cancelled} chunk(s) were cancelled; nothing was written to the destination"
        errors = [self._chunk_state[i].get("error") or f"chunk {i} failed" for i in failed[:MAX_ERRORS_IN_MESSAGE]]
        more = f"\n... and {len(failed) - MAX_ERRORS_IN_MESSAGE} more failed chunk(s)" if len(failed) > MAX_ERRORS_IN_MESSAGE else ""
        return (f"{len(failed)} of {self.progress.total} chunk(s) failed; nothing was written to the destination. "
                f"Run again with the same id to retry only the chunks that did not complete.\n"
                + "\n".join(errors) + more)

    def _result(self, state: str, *, error: str | None = None, manifest: dict | None = None) -> JobResult:
        chunks = [dict(self._chunk_state[i]) for i in sorted(self._chunk_state)]
        manifest = manifest or {}
        dest = self.spec.destination.url
        return JobResult(
            job_id=self.job_id, name=self.spec.name, state=state, destination=dest,
            outputs=manifest.get("files", []), n_chunks=self.progress.total, chunks=chunks,
            duration=time.time() - self.started, error=error, resumed_chunks=self.progress.resumed,
            test_job=bool(self.spec.config.get("isTestJob")),
            success_url=(dest.rstrip("/") + "/_SUCCESS") if manifest else None,
            warnings=list(self.warnings),
        )

    def _reused(self, record: dict) -> JobResult:
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
    """A running job: ``.status``, ``.progress``, ``.cancel()``, ``.result()``.

    >>> # handle = job.submit(); handle.progress.done; handle.result()
    """

    def __init__(self, runner: JobRunner):
        self._runner = runner
        self._thread = threading.Thread(target=runner.run, name=f"bytenite-nb-job-{runner.job_id}", daemon=True)

    def _start(self) -> "JobHandle":
        self._thread.start()
        return self

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
        with self._runner._lock:
            return self._runner.progress.copy()

    @property
    def elapsed(self) -> float:
        """Seconds since the job was submitted (until it ended, once it has)."""
        return (self._runner.finished or time.time()) - self._runner.started

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard of the cluster the job runs on (None for the synchronous scheduler)."""
        return self._runner.executor.dashboard_link

    @property
    def chunk_states(self) -> dict[int, dict]:
        """What is known of each chunk so far: ``{index: {"state", "attempts", "error"...}}``."""
        with self._runner._lock:
            return {i: dict(c) for i, c in self._runner._chunk_state.items()}

    def subscribe(self, listener: Callable[[dict], None]) -> Callable[[], None]:
        """Call ``listener(event)`` on every event; returns a function that unsubscribes."""
        self._runner.listeners.append(listener)
        return lambda: self._runner.listeners.remove(listener) if listener in self._runner.listeners else None

    def cancel(self) -> None:
        """Stop the job; nothing is written to the destination."""
        self._runner.cancel("cancelled")

    def done(self) -> bool:
        """Has the job ended (COMPLETE, FAILED or CANCELLED)?"""
        return self._runner._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job ends or ``timeout`` seconds pass; True if it ended.

        >>> # while not handle.wait(5): print(handle.progress.done, "done")
        """
        return self._runner._done.wait(timeout)

    def result(self, timeout: float | None = None, *, raise_on_error: bool = True) -> JobResult:
        """Wait for the end; return the :class:`JobResult`, or raise :class:`JobFailed`
        (:class:`JobCancelled` if cancelled) unless ``raise_on_error=False``."""
        if not self._runner._done.wait(timeout):
            raise TimeoutError(f"job {self.job_id} still {self.status} after {timeout}s")
        result = self._runner.result
        if raise_on_error and (result is None or not result.ok):
            error = self._runner.error
            message = (result.error if result else None) or str(error)
            cls = JobCancelled if result is not None and result.state == st.CANCELLED else JobFailed
            if error is not None and not isinstance(error, (TaskCancelled, JobFailed)) and isinstance(error, ByteniteNBError):
                message = mask_values(str(error), self._runner._secrets)
            raise cls(f"job {self.job_id} {result.state if result else 'FAILED'}: {message}", result) from error
        return result

    def _ipython_display_(self) -> None:
        from .. import display

        display.show("handle", self)

    def __repr__(self) -> str:
        return f"<JobHandle {self.job_id} {self.status} {self.progress.summary()}>"
