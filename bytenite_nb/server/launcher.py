"""The process that runs one job submitted from JupyterLab.

    python -m bytenite_nb.server.launcher LAUNCH_DIR

``LAUNCH_DIR`` holds ``job.json`` and ``launch.json`` (written by
:class:`~bytenite_nb.server.manager.JobManager`). This is ``bytenite-nb run``
for a job that came from the browser: the job's relative paths resolve
against the folder of the job file it was edited in (``baseDir``), not
against the launch folder. Everything the job does is recorded in the job
store, where the server reads it.

SIGINT or SIGTERM cancels the job cleanly: queued chunks are dropped, running
apps are killed on every worker, nothing is written to the destination, and
the job is recorded CANCELLED. Exit status: 0 COMPLETE, 1 FAILED, 2 invalid
job, 130 CANCELLED.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _record_end_before_start(job_id: str, name: str, state: str, error: str) -> None:
    """Record a job that ended before the engine took it over (a cancel while the
    cluster was starting, a scheduler that cannot be reached...)."""
    from .. import store as st

    store = st.default_store()
    record = store.get_job(job_id)
    if record is None:
        store.create_job(job_id, name, None)
    elif record["state"] in st.FINAL_STATES:
        return
    store.set_state(job_id, state, error=error)


def main(argv: list[str] | None = None) -> int:
    """Run the job of a launch folder to its end; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bytenite_nb.server.launcher LAUNCH_DIR", file=sys.stderr)
        return 2
    folder = argv[0]
    signal.signal(signal.SIGTERM, _interrupt)
    with open(os.path.join(folder, "launch.json"), encoding="utf-8") as f:
        launch = json.load(f)
    with open(os.path.join(folder, "job.json"), encoding="utf-8") as f:
        data = json.load(f)
    job_id = launch["id"]

    from .. import store as st
    from ..engine import submit_job
    from ..exceptions import ByteniteNBError, JobValidationError
    from ..job import Job

    name = launch.get("name") or job_id
    handle = None
    try:
        job = Job.from_dict(data, base_dir=launch["baseDir"], source_name=launch.get("path"))
        handle = submit_job(job, id=job_id, scheduler=launch.get("scheduler"), workers=launch.get("workers"))
        print(f"job {job_id} started (pid {os.getpid()})", flush=True)
        executor = handle._runner.executor
        st.default_store().add_event(job_id, "cluster", {
            "kind": getattr(executor, "kind", None),
            "scheduler": getattr(executor, "address", None),
            "dashboard": handle.dashboard_link,
        })
        result = handle.result(raise_on_error=False)
    except JobValidationError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        _record_end_before_start(job_id, name, st.FAILED, str(exc))
        return 2
    except Exception as exc:  # before the engine took the job over (e.g. no scheduler at that address)
        if handle is not None:
            raise
        message = str(exc) if isinstance(exc, ByteniteNBError) else f"cannot start the job: {type(exc).__name__}: {exc}"
        print(f"error: {message}", file=sys.stderr, flush=True)
        _record_end_before_start(job_id, name, st.FAILED, message)
        return 1
    except KeyboardInterrupt:
        print(f"cancelling job {job_id}...", flush=True)
        if handle is None:
            _record_end_before_start(job_id, name, st.CANCELLED,
                                     "job was cancelled before it started; nothing was written to the destination")
            return 130
        handle.cancel()
        handle.wait(60)
        return 130
    print(f"job {job_id} {result.state}" + (f": {result.error}" if result.error else ""), flush=True)
    if result.state == st.COMPLETE:
        return 0
    return 130 if result.state == st.CANCELLED else 1


if __name__ == "__main__":
    sys.exit(main())
