"""The process that runs one job submitted from JupyterLab.

    python -m bytenite_nb.server.launcher LAUNCH_DIR  < {"launch": {...}, "job": {...}}

The server (:class:`~bytenite_nb.server.processes.JobProcesses`) writes the
complete job, credentials included, and its launch settings as one JSON
object to this process's stdin and closes it; the launcher reads it before
anything else, so the job's secrets are never in a file. ``LAUNCH_DIR``
(``$BYTENITE_NB_HOME/jupyter-jobs/ID``) names the job's folder, where the
server keeps its records (``job.json``, ``launch.json``) and where this
process's output goes (``output.log``, with every secret of the job masked).

This is ``bytenite-nb run`` for a job that came from the browser: the job's
relative paths resolve against the folder of the job file it was edited in
(``baseDir``), not against the launch folder. Everything the job does is
recorded in the job store, where the server reads it.

SIGINT or SIGTERM cancels the job cleanly: queued chunks are dropped, running
apps are killed on every worker, nothing is written to the destination, and
the job is recorded CANCELLED. Exit status: 0 COMPLETE, 1 FAILED, 2 invalid
job, 130 CANCELLED.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading

from ..redact import masker, secret_values

OUTPUT_DRAIN_SECONDS = 10


def read_launch_request(stream=None) -> dict:
    """The ``{"launch", "job"}`` object the server wrote to stdin; stdin then
    reads from ``/dev/null`` (nothing the job starts can read what was there)."""
    stream = sys.stdin.buffer if stream is None else stream
    data = stream.read()
    if stream is sys.stdin.buffer:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    request = json.loads(data or b"null")
    if not isinstance(request, dict) or not isinstance(request.get("launch"), dict) \
            or not isinstance(request.get("job"), dict):
        raise ValueError("expected a JSON object with 'launch' and 'job' objects on stdin")
    return request


def mask_output(mask) -> None:
    """Send everything this process and its children write to stdout and
    stderr through ``mask`` before it reaches the log they were pointed at.

    File descriptors 1 and 2 become a pipe read by a thread that writes the
    masked lines to the log; at exit the pipe is drained (the last lines of
    a job are the ones that tell how it ended).
    """
    log = os.dup(1)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as source:
            for line in source:
                try:
                    os.write(log, mask(line.decode("utf-8", "replace")).encode("utf-8"))
                except Exception:  # keep draining: a writer must never block on a full pipe
                    pass

    thread = threading.Thread(target=pump, name="bytenite-nb-output", daemon=True)
    thread.start()

    def drain() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
        thread.join(OUTPUT_DRAIN_SECONDS)  # ends when no process holds the pipe any more

    # Registered before the engine is imported: it runs after the engine's own
    # exit handlers (the local cluster's shutdown), which may still write.
    atexit.register(drain)


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
    """Run the job sent on stdin to its end; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bytenite_nb.server.launcher LAUNCH_DIR < LAUNCH_REQUEST_JSON", file=sys.stderr)
        return 2
    request = read_launch_request()  # before anything else: the job's secrets live in this pipe only
    launch, data = request["launch"], request["job"]
    mask = masker(secret_values(data))
    mask_output(mask)
    signal.signal(signal.SIGTERM, _interrupt)
    job_id = launch["id"]

    from .. import store as st
    from ..engine import submit_job
    from ..exceptions import ByteniteNBError, JobValidationError
    from ..job import Job

    name = launch.get("name") or job_id
    handle = None
    try:
        job = Job.from_dict(data, base_dir=launch["baseDir"], source_name=launch.get("path"))
        handle = submit_job(job, id=job_id, scheduler=launch.get("scheduler"), workers=launch.get("workers"),
                            rerun_failed=bool(launch.get("rerunFailed")))
        print(f"job {job_id} started (pid {os.getpid()})", flush=True)  # the runner records its cluster
        result = handle.result(raise_on_error=False)
    except JobValidationError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        _record_end_before_start(job_id, name, st.FAILED, mask(str(exc)))
        return 2
    except Exception as exc:  # before the engine took the job over (e.g. no scheduler at that address)
        if handle is not None:
            raise
        message = str(exc) if isinstance(exc, ByteniteNBError) else f"cannot start the job: {type(exc).__name__}: {exc}"
        print(f"error: {message}", file=sys.stderr, flush=True)
        _record_end_before_start(job_id, name, st.FAILED, mask(message))
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
