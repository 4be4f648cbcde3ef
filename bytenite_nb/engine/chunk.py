"""Where a chunk goes: the map task, one per chunk.

``run_chunk`` runs on a worker. It materialises the chunk into
``TASK_DIR/data.bin``, runs the app with retries and the task timeout, and
commits the results to staging. It never raises for a failed chunk: it returns
an outcome that the job's runner records. (Resume happens before: the runner
sends only the chunks that staging does not hold committed.)

Where the task folder of an attempt is (``TASK_DIR`` and the app's logs):
:mod:`.task_folders`.
"""

from __future__ import annotations

import logging
import os
import time

from dask.sizeof import sizeof

from .. import config as _config
from ..apps.base import TaskContext
from ..bad_records import collecting, summary
from ..exceptions import RetriesExhausted, TaskCancelled
from ..partitioners.base import ChunkRef, Partitioner
from .. import supervision as control
from . import events
from .retry import run_with_retries
from .staging import Staging
from .task_folders import empty_folder, ensure_dir, task_root

log = logging.getLogger(__name__)


class ChunkOutcome(dict):
    """How one chunk ended: ``{"index", "state", "attempts", "duration", "error"...}``.

    A dict, of its own type only so that Dask pickles it whole when the
    runner gathers it: a plain dict is serialised field by field, which
    measured as the largest per-chunk cost on the workers of a many-chunk job.
    """

    def __reduce__(self):
        return ChunkOutcome, (dict(self),)


@sizeof.register(ChunkOutcome)
def _outcome_size(outcome: ChunkOutcome) -> int:
    """A few hundred bytes, whatever it says: Dask sizes every result it keeps,
    and walking an outcome's fields cost a worker more than its pickling."""
    return 512


def materialise(ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
    """Write the bytes of chunk ``ref`` to ``dest`` as a partitioner of plain references
    does (see :meth:`bytenite_nb.partitioners.Partitioner.materialise`)."""
    return Partitioner.materialise(Partitioner(), ref, dest, storage_options)


def run_chunk(ref: ChunkRef, spec, job_id: str) -> ChunkOutcome:
    """Run the app on one chunk, with retries, and commit its results. Returns the outcome:
    ``{"index", "state": "DONE"|"FAILED"|"CANCELLED", "attempts", "duration", "error"...}``."""
    started = time.time()
    index = ref.index
    info = ref.info()
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
            with collecting() as found:
                try:
                    spec.partitioner.materialise(ref, chunk_path, spec.source.storage_options)
                except Exception:
                    # A straggler (its first run committed, then lost its worker before
                    # reporting) finds the chunk's data released: the commit stands.
                    record = staging.record(index)
                    if record is None:
                        raise
                    staging.discard(index, token, results_dir)
                    return record
            skipped = summary(found)
            ctx = TaskContext(
                job_id=job_id, chunk_number=index, task_dir=task_dir, chunk_path=chunk_path,
                results_dir=results_dir, params=spec.app_params, timeout=cfg.get("taskTimeout"),
                shared_cache_dir=shared_cache, user_cache_dir=user_cache, log_dir=log_dir,
                max_output=int(cfg.get("maxAppOutput", 256) * 2**20), chunk_info=info)
            spec.app.run(ctx)
            control.check_cancelled(job_id)
            stats = {"attempts": n, "skipped": skipped} if skipped["count"] else {"attempts": n}
            return staging.commit(index, token, results_dir, stats)
        except BaseException as exc:
            full = staging.out_of_space(exc, f"chunk {index} ran")  # before its results are thrown away
            staging.discard(index, token, results_dir)
            if full is not None:
                raise full from exc  # another attempt cannot fix it
            raise
        finally:
            empty_folder(task_dir)

    def on_retry(n: int, exc: BaseException, delay: float) -> None:
        events.emit(job_id, {"type": "chunk", "index": index, "state": "RETRYING", "attempt": n,
                             "error": f"attempt {n}: {exc}"[:4000], "retry_in": round(delay, 2)})

    worker = _worker_address()
    try:
        marker, attempts = run_with_retries(
            attempt, retries=cfg.get("maxTaskRetries", 2), backoff=cfg.get("retryBackoff", 1.0),
            on_retry=on_retry, cancelled=lambda: control.is_cancelled(job_id))
    except TaskCancelled:
        return ChunkOutcome(index=index, state="CANCELLED", duration=time.time() - started, worker=worker)
    except RetriesExhausted as exc:
        return ChunkOutcome(
            index=index, state="FAILED", attempts=exc.attempts, duration=time.time() - started, worker=worker,
            error=f"chunk {index} ({ref.describe()}) failed after {exc.attempts} attempt(s): {exc.last}"[:8000])
    try:  # committed: what only its materialise needed can go now, not at the job's end
        spec.partitioner.release(ref, spec.source.storage_options)
    except Exception as exc:  # noqa: BLE001 - removed with the job's staging anyway
        log.warning("chunk %s of job %s: could not release its data: %s", index, job_id, exc)
    return ChunkOutcome(index=index, state="DONE", attempts=attempts, duration=time.time() - started, worker=worker,
                        files=len(marker["files"]), bytes=sum(size for _, size in marker["files"]))


def _worker_address() -> str | None:
    """The address of the Dask worker running this chunk (which worker ran what, in
    the job's records); None outside a worker (the synchronous scheduler)."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in str(name)) or "app"
