"""The engine: plan -> Dask graph -> run, with retries, timeouts, commit and resume.

Where things happen:

- a chunk goes through :mod:`.chunk` (materialise, run the app, commit its
  results to staging);
- a retry happens in :mod:`.retry`; timeouts and cancels in
  :mod:`bytenite_nb.supervision`;
- chunk results are *committed* to staging in :mod:`.staging`; the job's
  output is *published* to the destination in :mod:`.publish`;
- :mod:`.runner` drives a job and records it, step by step (reuse a complete
  run, plan, map the chunks, assemble and publish); :mod:`.executors` says
  where tasks run.

>>> import bytenite_nb as bn
>>> from bytenite_nb.engine import plan_job, run_job
>>> _ = open("words.txt", "w").write("alpha\\nbeta\\ngamma\\n")
>>> job = bn.Job(source="words.txt", partitioner="split-lines", app="identity", assembler="concat",
...              destination="out/", params={"partitioner": {"lines_per_chunk": 1}})
>>> [ref.index for ref in plan_job(job, scheduler="sync")]
[0, 1, 2]
>>> result = run_job(job, scheduler="sync")
>>> result.state, result.n_chunks, open("out/output.bin").read()
('COMPLETE', 3, 'alpha\\nbeta\\ngamma\\n')
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["JobHandle", "JobResult", "Progress", "plan_job", "run_job", "submit_job"]


def __getattr__(name: str) -> Any:  # keep `import bytenite_nb.engine.control` light
    if name == "Progress":
        from ..states import Progress

        return Progress
    if name in ("JobHandle", "JobResult", "JobRunner"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(name)


def plan_job(job, *, client=None, scheduler: str | None = None, workers: int | None = None,
             cluster: str | None = None):
    """The chunk references of ``job`` (planning runs as a task near the data)."""
    from .executors import make_executor, task_key
    from .planning import preview_chunks

    spec = job.resolve()
    executor = make_executor(client=client, scheduler=scheduler, workers=workers, cluster=cluster,
                             threads_ok=spec.app.runs_own_process, job_config=spec.config, spec=spec)
    try:
        spec = _fit_to_workers(spec, executor)
        if executor.kind != "sync":
            from .travel import prepare_workers

            prepare_workers(executor, spec, executor.elsewhere)
        return executor.submit(preview_chunks, spec, key=task_key("plan", job.id or "preview")).result()
    finally:
        executor.release()


def _fit_to_workers(spec, executor):
    """``spec`` as workers on other hosts need it (:func:`.travel.fit_data`); the
    executor remembers where its workers are. A job they cannot run lets go of
    the executor's cluster (none was started for it yet) and raises."""
    if executor.kind == "sync":
        return spec  # this process: nothing travels (and distributed stays unimported)
    from . import travel

    try:
        executor.elsewhere = travel.workers_elsewhere(executor)
        cluster = getattr(executor, "cluster", None)
        return travel.fit_data(spec, executor.elsewhere,
                               cluster_kind=cluster.describe().get("kind") if cluster is not None else None)
    except BaseException:
        executor.release()
        raise


def submit_job(job, *, client=None, scheduler: str | None = None, workers: int | None = None,
               id: str | None = None, force: bool = False, store=None,
               progress: bool | Callable[[dict], None] | None = None, rerun_failed: bool = False,
               cluster: str | None = None):
    """Validate ``job`` and start it; return a :class:`JobHandle` at once.

    Validation errors are raised here, before anything runs or is recorded
    (a Gateway cluster's options too: a cluster made for the job starts with the job;
    and a folder of this machine as staging, source or destination of a job
    whose workers run on other hosts: :mod:`.travel`).
    ``rerun_failed``: run again only the chunks an earlier run of job ``id``
    did not complete (also those a ``minSuccessRatio`` let it complete
    without), then publish the whole output.
    """
    from ..exceptions import FieldError, JobValidationError
    from ..ids import JOB_ID_RULE, new_job_id, valid_job_id
    from .executors import make_executor
    from .runner import JobHandle, JobRunner

    spec = job.resolve()
    job_id = id or job.id or new_job_id(spec.name)
    if id and not valid_job_id(id):
        raise JobValidationError(FieldError("id", JOB_ID_RULE + f", got {id!r}"))
    executor = make_executor(client=client, scheduler=scheduler, workers=workers, cluster=cluster,
                             threads_ok=spec.app.runs_own_process, job_config=spec.config, spec=spec)
    spec = _fit_to_workers(spec, executor)
    job_dict = job.to_dict()
    job_dict["id"] = job_id
    job_dict["baseDir"] = job.base_dir  # where its relative paths lead: what a rerun from the record needs
    if rerun_failed:
        from ..store import default_store

        if not (id or job.id):
            raise JobValidationError(FieldError("id", "rerun_failed needs the id of the job to rerun"))
        store = store or default_store()
        if store.get_job(job_id) is None:
            raise JobValidationError(FieldError("id", f"no earlier run of job {job_id} in the job store "
                                                      f"({store.path}): nothing to rerun"))
    runner = JobRunner(spec, job_dict, job_id, executor, store=store, force=force, rerun_failed=rerun_failed)
    if callable(progress):
        runner.subscribe(progress)  # before the start: the listener hears every event
    return JobHandle.start(runner)


def run_job(job, *, progress: bool | Callable[[dict], None] | None = None, **kwargs):
    """Run ``job`` to the end; return its :class:`JobResult` or raise :class:`JobFailed`."""
    handle = submit_job(job, progress=progress if callable(progress) else None, **kwargs)
    if progress is True:
        from ..progress import show_progress

        show_progress(handle)
    try:
        return handle.result()
    except KeyboardInterrupt:
        handle.cancel()
        handle.wait(30)
        raise
