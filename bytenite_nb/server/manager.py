"""What the JupyterLab extension asks of bytenite-nb, behind the REST handlers.

The handlers (:mod:`.handlers`) only decode requests and encode answers; all
the work is here, in plain Python that raises the library's own errors.

Where a submitted job runs: in a process of its own, started detached
(``python -m bytenite_nb.server.launcher``, in a new session), never in the
Jupyter server. So a job outlives a browser reload, a closed page and even a
restart of the server; the server never holds a Dask client or a job's
threads; and the job's progress reaches the browser the way it reaches every
other display, through the shared job store (SQLite), which any process can
read. Each job process records its pid and host in the store, which is how a
cancel (SIGINT: the job process cancels the job on KeyboardInterrupt, killing
its running apps and writing nothing) finds it. "Rerun the failed chunks"
starts the same job again under the same id: the engine resumes, skipping
every chunk whose result was already committed.

A job submitted here leaves a folder under ``$BYTENITE_NB_HOME/jupyter-jobs/ID``:
``job.json`` (a record of the job, with secrets left out or masked),
``launch.json`` (base dir, cluster, pid) and ``output.log`` (the job process's
output, secrets masked). None of them holds a secret: the complete job,
credentials included, reaches the job process through a pipe on its stdin,
and stays in this server's memory for "rerun the failed chunks".
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from .. import config
from .. import store as st
from ..apps.process import tail
from ..exceptions import ByteniteNBError, FieldError, JobConflict, JobNotFound, JobValidationError
from ..redact import SECRET_NAME_PATTERN, redact, redact_text
from ..states import Progress

LAUNCH_DIR_NAME = "jupyter-jobs"
LOG_TAIL_BYTES = 8192
PLAN_PREVIEW_LIMIT = 200
EXIT_GRACE_SECONDS = 30
DASHBOARD_CACHE_SECONDS = 60
CHUNK_PAGE_LIMIT = 100  # chunks of a job's detail page, by default...
CHUNK_PAGE_MAX = 1000  # ...and at most
ATTENTION_LIMIT = 500  # failed, retrying and running chunks listed in a job's detail
ATTENTION_STATES = (st.CHUNK_FAILED, st.RETRYING, st.CHUNK_RUNNING)


def _chunk(row: dict) -> dict:
    """A chunk of the store as the job's detail shows it."""
    return {"index": row["idx"], "state": row["state"], "attempts": row["attempts"], "duration": row["duration"],
            "size": row["size"], "covers": row["covers"], "error": row["error"]}


def _field_error(field: str, message: str) -> JobValidationError:
    return JobValidationError(FieldError(field, message))


def _process_alive(pid: int) -> bool:
    """Is ``pid`` a live process (not a zombie) on this host?"""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # "pid (name) S ...": the state letter follows the last ')'
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _process_command(pid: int) -> str:
    """The command line of ``pid``, its arguments joined by spaces ("" if unknown)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return " ".join(part.decode(errors="replace") for part in f.read().split(b"\0") if part)
    except OSError:
        pass
    try:  # no /proc (macOS): ask ps
        done = subprocess.run(["ps", "-ww", "-o", "command=", "-p", str(pid)], capture_output=True, text=True,
                              timeout=10)
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _runs_job(command: str, job_id: str, launch_dir: str) -> bool:
    """Is this command line a process running ``job_id``: its launcher, or
    ``bytenite-nb run ... --id JOB_ID``?"""
    if "bytenite_nb.server.launcher" in command and command.endswith(launch_dir):
        return True
    return bool(re.search(r"bytenite[-_]nb(\.cli)?\b.*\brun\b", command)
                and re.search(rf"--id[ =]{re.escape(job_id)}(\s|$)", command))


class JobManager:
    """Components, validation, planning and job processes for one Jupyter server.

    ``root_dir`` is the server's root: job file paths sent by the browser are
    relative to it, and a job's relative data paths resolve against its
    job file's folder, as everywhere else.
    """

    def __init__(self, root_dir: str, *, python: str | None = None, log=None):
        self.root_dir = os.path.realpath(os.path.expanduser(root_dir))
        self.python = python or sys.executable
        self.log = log
        self._children: dict[str, subprocess.Popen] = {}  # job id -> process this server started
        self._jobs: dict[str, dict] = {}  # job id -> the complete job it runs (in memory only)
        self._id_locks: dict[str, threading.Lock] = {}  # job id -> held while checking and starting
        self._dashboards: dict[str, tuple[float, str | None]] = {}  # scheduler address -> (when, link)
        self._lock = threading.Lock()

    # -- places ---------------------------------------------------------------------

    @property
    def store(self) -> st.JobStore:
        """The job store of ``$BYTENITE_NB_HOME``, shared with the CLI, notebooks and job processes."""
        return st.default_store()

    @staticmethod
    def launch_dir(job_id: str) -> str:
        """The folder of a job submitted here: ``$BYTENITE_NB_HOME/jupyter-jobs/ID``."""
        return os.path.join(config.home(), LAUNCH_DIR_NAME, job_id)

    def base_dir_of(self, path: str | None) -> str:
        """The folder a job file at ``path`` (relative to the root dir) lives in."""
        if path is None or path == "":
            return self.root_dir
        if not isinstance(path, str):
            raise _field_error("path", f"expected a file path relative to the Jupyter root, got {type(path).__name__}")
        full = os.path.realpath(os.path.join(self.root_dir, path.lstrip("/")))
        if full != self.root_dir and not full.startswith(self.root_dir + os.sep):
            raise _field_error("path", f"{path!r} is outside the Jupyter root dir")
        return os.path.dirname(full)

    def relative_to_root(self, url: str | None) -> str | None:
        """A local URL or path as a path relative to the root dir, if it is inside it."""
        if not url:
            return None
        path = url[len("file://"):] if url.startswith("file://") else url
        if "://" in path:
            return None
        path = os.path.realpath(path)
        if path == self.root_dir:
            return ""
        if path.startswith(self.root_dir + os.sep):
            return os.path.relpath(path, self.root_dir)
        return None

    # -- components and jobs, before running ------------------------------------------

    def components(self) -> dict:
        """Every partitioner, app and assembler with its params schema, the app
        runtimes a job's ``app`` object may name with the JSON Schema of each
        (``runtimeSchemas``), the ``config`` schema, the location descriptors
        with theirs (``descriptorSchemas``) and those a destination may name
        (``destinationDescriptors``), the schema of an engine folder
        object (``engineFolderSchema``), and the rule naming secret keys
        (``secretNamePattern``, a case-insensitive regular expression). Docs
        and descriptions are plain text."""
        from ..apps import runtime_schemas
        from ..engine_folders.folder import SPEC_SCHEMA as ENGINE_FOLDER_SCHEMA
        from ..job import CONFIG_SCHEMA
        from ..plaintext import plain_descriptions
        from ..registry import REGISTRIES
        from ..storage import descriptor_schemas, destination_descriptors

        out: dict[str, Any] = {kind: [c.to_dict() for c in registry] for kind, registry in REGISTRIES.items()}
        schemas = runtime_schemas()
        out["runtimes"] = sorted(schemas)
        out["runtimeSchemas"] = schemas
        out["config"] = CONFIG_SCHEMA
        descriptors = descriptor_schemas()
        out["descriptors"] = sorted(descriptors)
        out["descriptorSchemas"] = descriptors
        out["destinationDescriptors"] = destination_descriptors()
        out["engineFolderSchema"] = ENGINE_FOLDER_SCHEMA
        out["secretNamePattern"] = SECRET_NAME_PATTERN  # code made in the browser leaves these keys out
        return plain_descriptions(json.loads(json.dumps(out, default=str)))

    def load_job(self, data: Any, path: str | None = None):
        """A :class:`~bytenite_nb.Job` from a request's ``job`` object."""
        from ..job import Job

        if data is None:
            raise _field_error("job", "is required (the job file's content, as an object)")
        base_dir = self.base_dir_of(path)
        source_name = path or None
        return Job.from_dict(data, base_dir=base_dir, source_name=source_name)

    def validate(self, data: Any, path: str | None = None, *, check_storage: bool = True) -> dict:
        """Validate a job; return what it resolves to. Raises :class:`JobValidationError`."""
        job = self.load_job(data, path)
        spec = job.resolve(check_storage=check_storage)
        return {
            "valid": True,
            "name": spec.name,
            "partitioner": spec.partitioner_name,
            "app": str(spec.app.name),
            "assembler": spec.assembler_name,
            "source": spec.source.url,
            "destination": spec.destination.url,
            "files": len(spec.files),
            "config": redact(spec.config),
        }

    def plan(self, data: Any, path: str | None = None, *, limit: int = PLAN_PREVIEW_LIMIT) -> dict:
        """The chunks a job would run (references only; no app runs): their
        number, total size, and the first ``limit`` of them. Nothing of the
        preview stays behind (``job.plan`` removes what an engine folder
        partitioner copied for it)."""
        job = self.load_job(data, path)
        # In this process with the synchronous scheduler: a preview lists and
        # splits, it never moves the data, and needs no cluster.
        refs = job.plan(scheduler="sync")
        sizes = [r.size for r in refs if r.size is not None]
        return {
            "count": len(refs),
            "totalSize": sum(sizes) if sizes else None,
            "chunks": [redact(r.to_dict()) for r in refs[:limit]],
            "truncated": len(refs) > limit,
        }

    # -- running -----------------------------------------------------------------------

    def submit(self, data: Any, path: str | None = None, *, scheduler: str | None = None,
               workers: int | None = None, job_id: str | None = None) -> dict:
        """Validate a job and start it in a detached process; return its record."""
        from ..ids import new_job_id, valid_job_id

        if scheduler is not None and (not isinstance(scheduler, str)):
            raise _field_error("scheduler", f"expected a Dask scheduler address, got {type(scheduler).__name__}")
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise _field_error("workers", f"expected a whole number of at least 1, got {workers!r}")
        if job_id is not None and (not isinstance(job_id, str) or not valid_job_id(job_id)):
            raise _field_error("id", f"expected letters, digits, '.', '_' or '-' (max 128), got {job_id!r}")
        job = self.load_job(data, path)
        spec = job.resolve()  # every error before anything starts
        job_id = job_id or job.id or new_job_id(spec.name)
        full = {**data, "id": job_id}  # what the job process runs: never written to disk
        record = redact(job.to_dict())  # the record on disk: secrets left out or masked
        record["id"] = job_id
        launch = {
            "id": job_id,
            "name": spec.name,
            "path": path or None,
            "baseDir": self.base_dir_of(path),
            # Resolved here, as the cluster section reports it: the job process
            # gets the address itself, whatever its own Dask config says.
            "scheduler": self.cluster_target(scheduler, workers)["address"],
            "workers": workers,
            "submitted": time.time(),
            "runs": 0,
            # job.json alone cannot run the job again (see rerun_failed)
            "secretsWithheld": redact(full) != full,
        }
        # One job process per id: a double-clicked Run, or Run and Rerun at
        # once, start it once and get a JobConflict (409) for the other.
        with self._id_lock(job_id):
            self._refuse_if_running(job_id)
            folder = self.launch_dir(job_id)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "job.json"), "w", encoding="utf-8") as f:
                json.dump(record, f, indent=2)
            self._start(job_id, launch, full)
        return self.job_summary(job_id)

    def _id_lock(self, job_id: str) -> threading.Lock:
        """The lock held from "is a process running this id?" to "its process started"."""
        with self._lock:
            return self._id_locks.setdefault(job_id, threading.Lock())

    def _refuse_if_running(self, job_id: str) -> None:
        """Raise :class:`JobConflict` if a process runs ``job_id`` now. A process
        that recorded the end of its job and is closing its cluster gets
        ``EXIT_GRACE_SECONDS`` to exit first."""
        deadline = time.monotonic() + EXIT_GRACE_SECONDS
        while True:
            record = self.store.get_job(job_id)
            pid = self._job_process(job_id, record)
            if pid is None:
                return
            launch = self.read_launch(job_id) or {}
            ended = record is not None and record["state"] in st.FINAL_STATES \
                and (launch.get("started") or 0) <= (record.get("finished") or 0)
            if not ended:
                state = record["state"] if record else st.NEW
                raise JobConflict(f"job {job_id} is already running (pid {pid}, {state}): "
                                  "wait for it to end, or cancel it")
            if time.monotonic() > deadline:
                raise JobConflict(f"job {job_id} is still stopping (pid {pid}); try again when its process has ended")
            time.sleep(0.1)

    def _start(self, job_id: str, launch: dict, job: dict) -> None:
        """Start a job process for ``job`` (the complete job, secrets included).

        The job reaches the process through a pipe on its stdin, which the
        launcher reads before anything else: it is never written to a file.
        """
        folder = self.launch_dir(job_id)
        launch = {**launch, "runs": int(launch.get("runs") or 0) + 1, "started": time.time(),
                  "host": socket.gethostname()}
        command = [self.python, "-m", "bytenite_nb.server.launcher", folder]
        env = dict(os.environ)
        env["BYTENITE_NB_HOME"] = config.home()  # the job records into the store this server reads
        env.pop("JUPYTER_TOKEN", None)  # the job needs no access to the server
        with open(os.path.join(folder, "output.log"), "ab") as log:
            log.write(f"--- run {launch['runs']} of {job_id} ---\n".encode())
            log.flush()
            # A session of its own: the job survives the page, the server, and a
            # Ctrl-C typed at the server's terminal.
            process = subprocess.Popen(command, cwd=launch["baseDir"], env=env, stdin=subprocess.PIPE,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            with process.stdin:
                process.stdin.write(json.dumps({"launch": launch, "job": job}, default=str).encode())
        except BrokenPipeError:
            pass  # it died before reading: its output says why, and _reconcile records the end
        launch["pid"] = process.pid
        self._write_launch(job_id, launch)
        with self._lock:
            self._children[job_id] = process
            self._jobs[job_id] = job
        if self.log:
            self.log.info("bytenite-nb: started job %s (pid %s)", job_id, process.pid)

    def _job_to_rerun(self, job_id: str, launch: dict) -> dict:
        """The complete job a rerun starts again: the one this server started,
        else ``job.json`` when nothing was left out of it."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job
        if launch.get("secretsWithheld"):
            where = f"open {launch['path']}, " if launch.get("path") else ""
            raise JobConflict(f"job {job_id} was submitted with credentials, which are never written to disk, "
                              f"and this server has restarted since: {where}set its id to {job_id} and press Run "
                              "(only the chunks that did not complete run)")
        path = os.path.join(self.launch_dir(job_id), "job.json")
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise JobConflict(f"job {job_id} cannot be run again: its saved job {path} cannot be read ({exc})") from exc

    def _write_launch(self, job_id: str, launch: dict) -> None:
        path = os.path.join(self.launch_dir(job_id), "launch.json")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(launch, f, indent=2)
        os.replace(tmp, path)

    def read_launch(self, job_id: str) -> dict | None:
        """The launch record of a job submitted from JupyterLab, or None."""
        try:
            with open(os.path.join(self.launch_dir(job_id), "launch.json"), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError):
            return None

    def _reap(self) -> None:
        """Collect the exit status of job processes that ended (no zombies)."""
        with self._lock:
            for job_id, process in list(self._children.items()):
                if process.poll() is not None:
                    del self._children[job_id]

    def _job_process(self, job_id: str, record: dict | None) -> int | None:
        """The pid of the live process running ``job_id`` on this host, if any.

        Only a process that is a job process for this very id counts (a
        launcher for its folder, or ``bytenite-nb run ... --id ID``): a pid in
        an old record may since belong to anything else.
        """
        self._reap()
        with self._lock:
            child = self._children.get(job_id)
        if child is not None and child.poll() is None:
            return child.pid
        candidates = []
        if record and record.get("pid") and record.get("host") == socket.gethostname():
            candidates.append(int(record["pid"]))
        launch = self.read_launch(job_id)
        if launch and launch.get("pid") and launch.get("host") == socket.gethostname():
            candidates.append(int(launch["pid"]))
        folder = self.launch_dir(job_id)
        for pid in candidates:
            if _process_alive(pid) and _runs_job(_process_command(pid), job_id, folder):
                return pid
        return None

    def _reconcile(self, job_id: str, record: dict | None) -> dict | None:
        """Record the end of a job whose process died without recording it (killed, crashed)."""
        launch = self.read_launch(job_id)
        if launch is None or (record is not None and record["state"] in st.FINAL_STATES):
            return record
        if self._job_process(job_id, record) is not None:
            return record
        # Read again: the process may have recorded its end just before exiting.
        record = self.store.get_job(job_id)
        if record is not None and record["state"] in st.FINAL_STATES:
            return record
        tail = self.log_tail(job_id, 2000).strip()
        message = (f"the job process (pid {launch.get('pid')}) ended without recording the end of the job"
                   + (f"; its output ends with:\n{tail}" if tail else ""))
        if record is None:
            self.store.create_job(job_id, launch.get("name") or job_id, None)
        self.store.set_state(job_id, st.FAILED, error=message)
        return self.store.get_job(job_id)

    def log_tail(self, job_id: str, limit: int = LOG_TAIL_BYTES) -> str:
        """The end of a submitted job's output, with credentials masked."""
        return redact_text(tail(os.path.join(self.launch_dir(job_id), "output.log"), limit))

    # -- records -------------------------------------------------------------------------

    def _decorate(self, record: dict, launch: dict | None) -> dict:
        """A store record as the browser shows it."""
        out = {k: v for k, v in record.items() if k not in ("spec", "result")}
        result = record.get("result") or {}
        spec = record.get("spec") or {}
        destination = result.get("destination") or self._destination_url(spec, launch)
        out["destination"] = destination
        out["destinationPath"] = self.relative_to_root(destination)
        out["outputs"] = [{**o, "path": self.relative_to_root(o.get("url"))} for o in (result.get("outputs") or [])]
        out["startedFrom"] = "jupyterlab" if launch else "elsewhere"
        out["jobFile"] = (launch or {}).get("path")
        out["scheduler"] = (launch or {}).get("scheduler")
        out["canRerun"] = bool(launch) and record["state"] in (st.FAILED, st.CANCELLED)
        out["canCancel"] = record["state"] not in st.FINAL_STATES
        return out

    def _destination_url(self, spec: dict, launch: dict | None) -> str | None:
        from ..storage import parse_location

        value = spec.get("dataDestination")
        if value is None:
            return None
        try:
            return parse_location(value, field="dataDestination", base_dir=(launch or {}).get("baseDir"),
                                  destination=True).url
        except ByteniteNBError:
            return None

    def _starting(self, launch: dict) -> dict:
        """A job whose process has not recorded it yet."""
        now = time.time()
        return {"id": launch["id"], "name": launch.get("name"), "kind": "job", "state": st.NEW,
                "created": launch.get("submitted", now), "updated": launch.get("started", now),
                "started": None, "finished": None, "n_chunks": None, "error": None, "host": launch.get("host"),
                "pid": launch.get("pid"), "runs": launch.get("runs", 1), "duration": None,
                "progress": Progress().to_dict()}

    def job_summary(self, job_id: str) -> dict:
        """One job as the jobs list shows it. Raises :class:`JobNotFound`."""
        record = self.store.get_job(job_id)
        launch = self.read_launch(job_id)
        if record is None and launch is None:
            raise JobNotFound(f"no job {job_id!r} in {self.store.path}")
        return self._present(job_id, record, launch)

    def _present(self, job_id: str, record: dict | None, launch: dict | None) -> dict:
        if launch is not None:
            record = self._reconcile(job_id, record)
        if record is None:
            record = self._starting(launch)
        elif (launch and record["state"] in st.FINAL_STATES and (launch.get("started") or 0) > (record.get("finished") or 0)
              and self._job_process(job_id, record) is not None):
            # Rerun: the new run's process has not recorded its start yet.
            record = {**record, "state": st.NEW, "error": None}
        return self._decorate(record, launch)

    def list_jobs(self, limit: int = 50) -> list[dict]:
        """Recent jobs, newest first, with their chunk counts (from the shared store)."""
        records = self.store.list_jobs(limit=limit)
        known = {r["id"] for r in records}
        out = []
        # Jobs submitted here whose process has not written its first record yet.
        folder = os.path.join(config.home(), LAUNCH_DIR_NAME)
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                # A job with a record but not among the newest is older than all of them.
                if name in known or self.store.get_job(name) is not None:
                    continue
                launch = self.read_launch(name)
                if launch is None:
                    continue
                out.append(self._present(name, None, launch))
        for record in records:
            out.append(self._present(record["id"], record, self.read_launch(record["id"])))
        out.sort(key=lambda j: j.get("updated") or 0, reverse=True)
        return out[:limit]

    def job_detail(self, job_id: str, *, offset: int = 0, limit: int = CHUNK_PAGE_LIMIT) -> dict:
        """One job: its chunk counts (``progress``), the chunks that failed or are
        running or retrying (``attention``, at most ``ATTENTION_LIMIT``; their
        number in ``attentionTotal``), a page of the other chunks (``chunks``,
        from ``offset``, at most ``limit``; ``chunkPage`` tells the page and the
        number of those chunks), its output's end, and its cluster's dashboard.

        A job of 100 000 chunks answers with a few hundred of them, not all.
        """
        out = self.job_summary(job_id)
        attention = self.store.chunks(job_id, states=ATTENTION_STATES, limit=ATTENTION_LIMIT)
        out["attention"] = [_chunk(c) for c in attention]
        out["attentionTotal"] = self.store.count_chunks(job_id, states=ATTENTION_STATES)
        page = self.store.chunks(job_id, exclude=ATTENTION_STATES, offset=offset, limit=limit)
        out["chunks"] = [_chunk(c) for c in page]
        out["chunkPage"] = {"offset": offset, "limit": limit,
                            "total": self.store.count_chunks(job_id, exclude=ATTENTION_STATES)}
        record = self.store.get_job(job_id) or {}
        out["spec"] = record.get("spec")
        out["log"] = self.log_tail(job_id)
        cluster = self.store.last_event(job_id, "cluster")
        out["cluster"] = cluster["data"] if cluster else None
        return out

    def cancel(self, job_id: str) -> dict:
        """Ask the job's process to cancel the job (SIGINT: it stops the running
        apps and writes nothing to the destination)."""
        summary = self.job_summary(job_id)
        if summary["state"] in st.FINAL_STATES:
            raise JobConflict(f"job {job_id} is {summary['state']}; there is nothing to cancel")
        record = self.store.get_job(job_id)
        pid = self._job_process(job_id, record)
        if pid is None:
            where = f" (pid {record.get('pid')} on {record.get('host')})" if record else ""
            raise JobConflict(f"job {job_id} runs in a process this server cannot reach{where}: "
                              "cancel it where it was started (JobHandle.cancel(), or Ctrl-C)")
        os.kill(pid, signal.SIGINT)
        return {**summary, "cancelling": True}

    def rerun_failed(self, job_id: str) -> dict:
        """Run a FAILED or CANCELLED job again under the same id: chunks already
        committed are kept, only the others run."""
        with self._id_lock(job_id):
            summary = self.job_summary(job_id)
            if summary["state"] not in (st.FAILED, st.CANCELLED):
                raise JobConflict(f"job {job_id} is {summary['state']}; only a FAILED or CANCELLED job can be rerun")
            launch = self.read_launch(job_id)
            if launch is None:
                raise JobConflict(f"job {job_id} was not started from JupyterLab: run it again with the same id "
                                  f"where it was started (bytenite-nb run JOB_FILE --id {job_id})")
            job = self._job_to_rerun(job_id, launch)
            self._refuse_if_running(job_id)
            # The failed chunks run again: show them as pending rather than failed meanwhile.
            again = [{"index": c["idx"], "state": st.PENDING}
                     for c in self.store.chunks(job_id, states=[st.CHUNK_FAILED, st.CHUNK_CANCELLED])]
            self.store.update_chunks(job_id, again)
            self._start(job_id, launch, job)
        return self.job_summary(job_id)

    # -- cluster -----------------------------------------------------------------------

    @staticmethod
    def cluster_target(address: str | None = None, workers: int | None = None) -> dict:
        """Where a job started now runs: what :func:`bytenite_nb.cluster.resolve`
        answers in its job process (which has no default client): the given
        scheduler address (the setting), else a local cluster of ``workers``,
        else the ``bytenite-nb.cluster`` setting, Dask config's
        ``scheduler-address``, a background cluster, else a local cluster.

        A Dask Gateway named by Dask config (``gateway.address``) is not used:
        the answer says so in ``note`` rather than claim a cluster jobs never reach.

        >>> JobManager.cluster_target("tcp://10.0.0.5:8786")["kind"]
        'scheduler'
        """
        import dask

        from ..cluster import resolve

        where = resolve(scheduler=address or None, workers=workers)
        sources = {"scheduler=": "setting", "Dask config scheduler-address": "dask config"}
        if where.kind == "address":
            target = {"kind": "scheduler", "address": where.address, "source": sources.get(where.source, where.source)}
        elif where.kind == "sync":
            target = {"kind": "local", "address": None, "source": where.source,
                      "note": f"{where.source} says sync: each job runs in its own job process, one chunk "
                              "at a time, with no cluster."}
        else:
            target = {"kind": "local", "address": None, "source": "default"}
            gateway = dask.config.get("gateway.address", None)
            if gateway:
                target["note"] = (f"Dask config names a Dask Gateway ({redact_text(str(gateway))}), which "
                                  "bytenite-nb does not use: jobs run on a local cluster. Set a scheduler "
                                  "address to run them on another cluster.")
        return target

    def cluster(self, address: str | None = None) -> dict:
        """Which cluster a job submitted now runs on (see :meth:`cluster_target`),
        its dashboard, and the dashboards of the jobs running now."""
        info = self.cluster_target(address or None)
        if info["kind"] == "scheduler":
            info["dashboard"] = self._dashboard(info["address"])
        running = []
        for record in self.store.list_jobs(limit=20, states=[st.PARTITIONING, st.RUNNING, st.ASSEMBLING]):
            seen = self.store.last_event(record["id"], "cluster")
            if seen:
                running.append({"id": record["id"], "name": record["name"], **seen["data"]})
        info["running"] = running
        return info

    def _dashboard(self, address: str) -> str | None:
        """A scheduler's dashboard URL, asked at most once a minute per address."""
        now = time.monotonic()
        with self._lock:
            cached = self._dashboards.get(address)
        if cached is not None and now - cached[0] < DASHBOARD_CACHE_SECONDS:
            return cached[1]
        link = _scheduler_dashboard(address)
        with self._lock:
            self._dashboards[address] = (now, link)
        return link


def _scheduler_dashboard(address: str) -> str | None:
    """The dashboard URL a scheduler advertises, or None if it cannot be reached."""
    try:
        from distributed import Client

        from ..background_cluster import security_for

        with Client(address, timeout=5, set_as_default=False, security=security_for(address)) as client:
            return client.dashboard_link
    except Exception:
        return None
