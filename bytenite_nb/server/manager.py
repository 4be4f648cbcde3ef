"""What the JupyterLab extension asks of bytenite-nb, behind the REST handlers.

The handlers (:mod:`.handlers`) only decode requests and encode answers;
:class:`JobManager` checks each request and composes the parts that do the
work, in plain Python that raises the library's own errors:

- :mod:`.processes`: the job processes (:class:`~.processes.JobProcesses`:
  started detached with the job on stdin, found, cancelled, reaped);
- :mod:`.present`: a job as the answers show it, in one shape;
- :mod:`.cluster_info`: which cluster a job runs on, in words.

A submitted job runs in a process of its own, never in the Jupyter server:
it outlives a browser reload, a closed page and a restart of the server; the
server never holds a Dask client or a job's threads; and the job's progress
reaches the browser the way it reaches every other display, through the
shared job store (SQLite), which any process can read. "Rerun the failed
chunks" starts the same job again under the same id: the engine resumes,
skipping every chunk whose result was already committed.

No secret is written: the complete job, credentials included, reaches the job
process through a pipe on its stdin, and stays in this server's memory for
"rerun the failed chunks"; ``job.json`` keeps the job with its secrets left
out or masked.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from .. import store as st
from ..exceptions import FieldError, JobConflict, JobNotFound, JobValidationError
from ..chunk_grid import GRID_PAGE_LIMIT, chunk_detail, grid_page
from ..plan import chunk_details
from ..reachable import list_clusters
from ..redact import SECRET_NAME_PATTERN, redact
from . import present
from . import clusters
from .cluster_info import Dashboards, cluster_target
from .plan_cache import HeldPlan, PlanCache, plan_key
from .present import CHUNK_PAGE_LIMIT
from .processes import JobProcesses

PLAN_PREVIEW_LIMIT = 200
PLAN_PAGE_MAX = 1000  # chunks of a plan one answer holds at most
#: how long a process that recorded the end of its job may take to exit before a new run of its id is refused
EXIT_GRACE_SECONDS = 30
RUNNING_JOBS_SHOWN = 20  # the running jobs whose dashboards the cluster answer lists


def _field_error(field: str, message: str) -> JobValidationError:
    return JobValidationError(FieldError(field, message))


class JobManager:
    """Components, validation, planning and job processes for one Jupyter server.

    ``root_dir`` is the server's root: job file paths sent by the browser are
    relative to it, and a job's relative data paths resolve against its
    job file's folder, as everywhere else. ``python`` is the interpreter job
    processes run with. The server calls :meth:`supervise` in the background.
    """

    def __init__(self, root_dir: str, *, python: str | None = None, log=None, plans: PlanCache | None = None):
        self.root_dir = os.path.realpath(os.path.expanduser(root_dir))
        self.log = log
        self.processes = JobProcesses(python=python, log=log)
        self.dashboards = Dashboards()
        self.plans = plans if plans is not None else PlanCache()  # the plans lately made, for their later pages
        self._jobs: dict[str, dict] = {}  # job id -> the complete job it runs (in memory only)
        self._lock = threading.Lock()

    @property
    def store(self) -> st.JobStore:
        """The job store of ``$BYTENITE_NB_HOME``, shared with the CLI, notebooks and job processes."""
        return st.default_store()

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

    def plan(self, data: Any, path: str | None = None, *, offset: int = 0, limit: int = PLAN_PREVIEW_LIMIT) -> dict:
        """The chunks a job would run (references only; no app runs): their
        number, total size, a page of them - ``limit`` (at most
        :data:`PLAN_PAGE_MAX`) from the ``offset``-th - with what each covers
        (``details``), and ``sample``, the first rows of the first chunk. Nothing of the
        preview stays behind (``job.plan`` removes what an engine folder
        partitioner copied for it), and no answer holds a whole plan of many chunks.

        The first page (``offset`` 0: Plan was pressed) always plans afresh, and
        the plan is held (:mod:`.plan_cache`) for the later pages of the same
        job, which are cut from it rather than planned again."""
        job = self.load_job(data, path)
        key = plan_key(data, self.base_dir_of(path), path or None)
        held = self.plans.get(key) if offset > 0 else None
        if held is None:
            # In this process with the synchronous scheduler: a preview lists and
            # splits, it never moves the data, and needs no cluster.
            held = HeldPlan.pack(job.plan(scheduler="sync"))
            self.plans.put(key, held)
        page = held.page(offset, min(limit, PLAN_PAGE_MAX))
        return {
            "count": held.count,
            "totalSize": held.total_size,
            "offset": offset,
            "chunks": [redact(r.to_dict()) | {"details": chunk_details(r)} for r in page],
            "truncated": held.count > len(page),
            "sample": held.sample,
        }

    # -- running -----------------------------------------------------------------------

    def submit(self, data: Any, path: str | None = None, *, scheduler: str | None = None,
               workers: int | None = None, job_id: str | None = None) -> dict:
        """Validate a job and start it in a detached process; return it as the jobs list shows it."""
        from ..ids import JOB_ID_RULE, new_job_id, valid_job_id

        if scheduler is not None and (not isinstance(scheduler, str)):
            raise _field_error("cluster", f"expected a cluster name (local, sync, tcp://..., gateway[:NAME], "
                                          f"kubernetes[:NAME]), got {type(scheduler).__name__}")
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise _field_error("workers", f"expected a whole number of at least 1, got {workers!r}")
        if job_id is not None and (not isinstance(job_id, str) or not valid_job_id(job_id)):
            raise _field_error("id", f"{JOB_ID_RULE}, got {job_id!r}")
        job = self.load_job(data, path)
        spec = job.resolve()  # every error before anything starts
        job_id = job_id or job.id or new_job_id(spec.name)
        full = {**data, "id": job_id}  # what the job process runs: never written to disk
        record = redact(job.to_dict())  # the record on disk: secrets left out or masked
        record["id"] = job_id
        # Resolved here, as the cluster section says it: the job process gets
        # the address itself, whatever its own Dask config says.
        where = cluster_target(scheduler, workers, runs_own_process=spec.app.runs_own_process)
        launch = {
            "id": job_id,
            "name": spec.name,
            "path": path or None,
            "baseDir": self.base_dir_of(path),
            "scheduler": where.get("target") or where["address"],
            "runsOn": where["description"],
            "workers": workers,
            "submitted": time.time(),
            "runs": 0,
            # job.json alone cannot run the job again (see rerun_failed)
            "secretsWithheld": redact(full) != full,
        }
        # One job process per id: a double-clicked Run, or Run and Rerun at
        # once, start it once and get a JobConflict (409) for the other.
        with self.processes.id_lock(job_id):
            self._refuse_if_running(job_id)
            self.processes.save_job(job_id, record)
            self._start(job_id, launch, full)
        return self.job_summary(job_id)

    def _refuse_if_running(self, job_id: str) -> None:
        """Raise :class:`JobConflict` if a process runs ``job_id`` now; else
        record the end of a run of it whose process died without recording it.
        A process that recorded the end of its job and is closing its cluster
        gets ``EXIT_GRACE_SECONDS`` to exit first. Hold the id's lock."""
        deadline = time.monotonic() + EXIT_GRACE_SECONDS
        while True:
            record = self.store.get_job(job_id)
            pid = self.processes.find(job_id, record)
            if pid is None:
                self.processes.settle(job_id)
                return
            launch = self.processes.read_launch(job_id) or {}
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
        self.processes.start(job_id, launch, job)
        with self._lock:
            self._jobs[job_id] = job

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
        try:
            return self.processes.saved_job(job_id)
        except (OSError, ValueError) as exc:
            raise JobConflict(f"job {job_id} cannot be run again: its saved job in {self.processes.folder(job_id)} "
                              f"cannot be read ({exc})") from exc

    def cancel(self, job_id: str) -> dict:
        """Ask the job's process to cancel the job (SIGINT: it stops the running
        apps and writes nothing to the destination)."""
        with self.processes.id_lock(job_id):
            self.processes.settle(job_id)  # a job whose process died has nothing left to cancel
            summary = self.job_summary(job_id)
            if summary["state"] in st.FINAL_STATES:
                raise JobConflict(f"job {job_id} is {summary['state']}; there is nothing to cancel")
            record = self.store.get_job(job_id)
            if self.processes.interrupt(job_id, record) is None:
                where = f" (pid {record.get('pid')} on {record.get('host')})" if record else ""
                raise JobConflict(f"job {job_id} runs in a process this server cannot reach{where}: "
                                  "cancel it where it was started (JobHandle.cancel(), or Ctrl-C)")
        return {**summary, "cancelling": True}

    def rerun_failed(self, job_id: str) -> dict:
        """Run a FAILED or CANCELLED job again under the same id: chunks already
        committed are kept, only the others run. A job that completed without
        some chunks (``minSuccessRatio``) runs those and publishes the whole output."""
        with self.processes.id_lock(job_id):
            self.processes.settle(job_id)
            summary = self.job_summary(job_id)
            if summary["state"] not in (st.FAILED, st.CANCELLED) and not summary.get("failedChunks"):
                raise JobConflict(f"job {job_id} is {summary['state']}; only a FAILED or CANCELLED job, or one that "
                                  "completed without some chunks (minSuccessRatio), can be rerun")
            launch = self.processes.read_launch(job_id)
            if launch is None:
                raise JobConflict(f"job {job_id} was not started from JupyterLab: run it again with the same id "
                                  f"where it was started (bytenite-nb run JOB_FILE --id {job_id})")
            job = self._job_to_rerun(job_id, launch)
            self._refuse_if_running(job_id)
            # The failed chunks run again: show them as pending rather than failed meanwhile.
            again = [{"index": c["idx"], "state": st.PENDING}
                     for c in self.store.chunks(job_id, states=[st.CHUNK_FAILED, st.CHUNK_CANCELLED])]
            self.store.update_chunks(job_id, again)
            self._start(job_id, {**launch, "rerunFailed": True}, job)
        return self.job_summary(job_id)

    def supervise(self) -> list[str]:
        """One pass of the reaper (:meth:`.processes.JobProcesses.reap`): the ids
        of the jobs whose process died without recording their end, recorded now."""
        return self.processes.reap()

    # -- jobs as the browser shows them ----------------------------------------------------

    def job_summary(self, job_id: str) -> dict:
        """One job as the jobs list shows it (:func:`.present.job_entry`). Raises :class:`JobNotFound`."""
        record = self.store.get_job(job_id)
        launch = self.processes.read_launch(job_id)
        if record is None and launch is None:
            raise JobNotFound(f"no job {job_id!r} in {self.store.path}")
        return present.job_entry(record, launch, self.root_dir)

    def list_jobs(self, limit: int = 50) -> list[dict]:
        """Recent jobs, newest first, with their chunk counts (from the shared store)."""
        records = self.store.list_jobs(limit=limit)
        known = {r["id"] for r in records}
        out = []
        # Jobs submitted here whose process has not written its first record yet.
        for job_id in self.processes.launched():
            # A job with a record but not among the newest is older than all of them.
            if job_id in known or self.store.get_job(job_id) is not None:
                continue
            launch = self.processes.read_launch(job_id)
            if launch is not None:
                out.append(present.job_entry(None, launch, self.root_dir))
        for record in records:
            out.append(present.job_entry(record, self.processes.read_launch(record["id"]), self.root_dir))
        out.sort(key=lambda j: j.get("updated") or 0, reverse=True)
        return out[:limit]

    def job_detail(self, job_id: str, *, offset: int = 0, limit: int = CHUNK_PAGE_LIMIT) -> dict:
        """One job with its chunks (:func:`.present.job_detail`). Raises :class:`JobNotFound`."""
        record = self.store.get_job(job_id)
        launch = self.processes.read_launch(job_id)
        if record is None and launch is None:
            raise JobNotFound(f"no job {job_id!r} in {self.store.path}")
        return present.job_detail(record, launch, self.root_dir, store=self.store, offset=offset, limit=limit,
                                  log=self.processes.log_tail(job_id))

    def _known(self, job_id: str) -> None:
        if self.store.get_job(job_id) is None and self.processes.read_launch(job_id) is None:
            raise JobNotFound(f"no job {job_id!r} in {self.store.path}")

    def chunk_grid(self, job_id: str, *, offset: int = 0, limit: int = GRID_PAGE_LIMIT) -> dict:
        """A page of the job's chunks as compact arrays (:func:`bytenite_nb.chunk_grid.grid_page`)."""
        self._known(job_id)
        return grid_page(self.store, job_id, offset=offset, limit=limit)

    def chunk(self, job_id: str, index: int) -> dict:
        """One chunk of the job with its attempts (:func:`bytenite_nb.chunk_grid.chunk_detail`)."""
        self._known(job_id)
        return chunk_detail(self.store, job_id, index)

    # -- cluster -----------------------------------------------------------------------

    def clusters(self, default: str | None = None) -> dict:
        """The Gateway and Kubernetes clusters this server sees, and the cluster
        names a job may be submitted to (:func:`bytenite_nb.reachable.list_clusters`)."""
        return list_clusters(default or None)

    def scale_cluster(self, kind, name, workers) -> dict:
        """Scale this user's cluster (:func:`.clusters.scale`)."""
        return clusters.scale(kind, name, workers)

    def shutdown_cluster(self, kind, name) -> dict:
        """Shut this user's cluster down (:func:`.clusters.shutdown`)."""
        return clusters.shutdown(kind, name)

    def cluster(self, address: str | None = None) -> dict:
        """Which cluster a job submitted now runs on (:func:`.cluster_info.cluster_target`),
        its dashboard, and the dashboards of the jobs running now."""
        info = cluster_target(address or None)
        if info["kind"] == "scheduler":
            info["dashboard"] = self.dashboards.link(info["address"])
        running = []
        for record in self.store.list_jobs(limit=RUNNING_JOBS_SHOWN, states=[st.PARTITIONING, st.RUNNING, st.ASSEMBLING]):
            seen = self.store.last_event(record["id"], "cluster")
            if seen:
                running.append({"id": record["id"], "name": record["name"], **seen["data"]})
        info["running"] = running
        return info
