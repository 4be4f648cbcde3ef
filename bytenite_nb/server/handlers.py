"""REST handlers under ``/bytenite-nb/``: decode the request, call the
:class:`~.manager.JobManager`, encode the answer. Nothing else happens here,
but for the schedule of the manager's reaper on the server's event loop
(:func:`supervise_in_background`): no request writes a job's records as a side effect.

Every handler requires Jupyter's authentication (``@tornado.web.authenticated``
on every method). Errors come back as JSON with the library's own message::

    {"error": "JobValidationError", "message": "invalid job: app: is required",
     "errors": [{"field": "app", "message": "is required"}]}

Routes (``ID`` is a job id):

=======  ==============================  ==========================================
GET      /bytenite-nb/components         partitioners, apps, assemblers + schemas
POST     /bytenite-nb/validate           ``{"job", "path"?}`` -> what the job resolves to
POST     /bytenite-nb/plan               ``{"job", "path"?, "offset"?, "limit"?}`` -> a page of the chunks
GET      /bytenite-nb/jobs               recent jobs with live progress
POST     /bytenite-nb/jobs               ``{"job", "path"?, "cluster"?, "workers"?, "id"?}`` -> start
                                        (``cluster``: any name :mod:`bytenite_nb.cluster` takes;
                                        ``scheduler`` is the same)
GET      /bytenite-nb/jobs/ID            one job: chunk counts, failed/running chunks, a page of
                                        the others (``?offset=&limit=``), output tail, dashboard
POST     /bytenite-nb/jobs/ID/cancel     cancel a running job
POST     /bytenite-nb/jobs/ID/rerun      run a FAILED/CANCELLED job again: only unfinished chunks
GET      /bytenite-nb/jobs/ID/chunks     the chunk grid: ``?offset=&limit=`` -> states (a letter
                                        each), the worker of each, the workers' addresses
GET      /bytenite-nb/jobs/ID/chunk      ``?index=N`` -> one chunk: attempts, error, worker, history
GET      /bytenite-nb/cluster            which cluster jobs run on (``?address=``)
GET      /bytenite-nb/clusters           Gateway and Kubernetes clusters, and the names a job may
                                        run on (``?default=``)
POST     /bytenite-nb/clusters/scale     ``{"kind", "name", "workers"}``: scale one of yours
POST     /bytenite-nb/clusters/shutdown  ``{"kind", "name"}``: shut one of yours down
=======  ==============================  ==========================================
"""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import ThreadPoolExecutor

import tornado.ioloop
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..chunk_grid import GRID_PAGE_LIMIT, GRID_PAGE_MAX
from ..exceptions import (ByteniteNBError, ClusterNotFound, ClusterNotYours, ComponentNotFound, FieldError,
                          JobConflict, JobNotFound, JobValidationError)
from .manager import JobManager
from .present import CHUNK_PAGE_LIMIT, CHUNK_PAGE_MAX
from .processes import REAP_INTERVAL_SECONDS

NAMESPACE = "bytenite-nb"
JOB_ID = r"(?P<job_id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})"

# Validation and planning list storage and may take a while: never on the
# server's event loop.
_blocking = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bytenite-nb-server")


def error_body(exc: BaseException) -> tuple[int, dict]:
    """The HTTP status and JSON body for a library error."""
    body: dict = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, JobValidationError):
        body["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
        return 400, body
    if isinstance(exc, FieldError):
        body["errors"] = [{"field": exc.field, "message": exc.message}]
        return 400, body
    if isinstance(exc, (JobNotFound, ComponentNotFound, ClusterNotFound)):
        return 404, body
    if isinstance(exc, ClusterNotYours):
        return 403, body
    if isinstance(exc, JobConflict):
        return 409, body
    return 422, body  # the job cannot be done as it is (a partitioner that cannot split the source...)


class BaseHandler(APIHandler):
    """Shared by every bytenite-nb handler: the manager, JSON in and out."""

    @property
    def manager(self) -> JobManager:
        """The server's :class:`JobManager`."""
        return self.settings["bytenite_nb_manager"]

    def body(self) -> dict:
        """The request's JSON object; a 400 naming the problem otherwise."""
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except json.JSONDecodeError as exc:
            raise JobValidationError(FieldError("", f"the request body is not valid JSON: {exc.msg}")) from exc
        if not isinstance(data, dict):
            raise JobValidationError(FieldError("", "the request body must be a JSON object"))
        return data

    async def call(self, fn, *args, status: int = 200, **kwargs) -> None:
        """Run ``fn`` off the event loop and answer with its result, or with the
        library's error as JSON."""
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(_blocking, functools.partial(fn, *args, **kwargs))
        except ByteniteNBError as exc:
            code, body = error_body(exc)
            self.set_status(code)
            self.finish(json.dumps(body))
            return
        self.set_status(status)
        self.finish(json.dumps(result, default=str))

    def int_argument(self, name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
        """The whole-number query argument ``name`` (``default`` if absent); a 400
        naming it when it is not a number from ``minimum`` to ``maximum``."""
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            expected = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
            raise JobValidationError(FieldError(name, f"expected a whole number {expected}, got {raw!r}"))
        return value


class ComponentsHandler(BaseHandler):
    """``/bytenite-nb/components``: the catalog (:meth:`JobManager.components`)."""

    @tornado.web.authenticated
    async def get(self):
        """Partitioners, apps and assemblers with their params schemas."""
        await self.call(self.manager.components)


class ValidateHandler(BaseHandler):
    """``/bytenite-nb/validate``: :meth:`JobManager.validate`."""

    @tornado.web.authenticated
    async def post(self):
        """``{"job", "path"?}`` -> what the job resolves to, or a 400 naming every wrong field."""
        await self.call(lambda: self._validate(self.body()))

    def _validate(self, data: dict) -> dict:
        return self.manager.validate(data.get("job"), data.get("path"))


class PlanHandler(BaseHandler):
    """``/bytenite-nb/plan``: :meth:`JobManager.plan`."""

    @tornado.web.authenticated
    async def post(self):
        """``{"job", "path"?, "offset"?, "limit"?}`` -> the chunk count, total size and a page of chunks."""
        await self.call(lambda: self._plan(self.body()))

    def _plan(self, data: dict) -> dict:
        page = {}
        for name, least in (("offset", 0), ("limit", 1)):
            value = data.get(name, None)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
                raise JobValidationError(FieldError(name, f"expected a whole number of at least {least}, got {value!r}"))
            if value is not None:
                page[name] = value
        return self.manager.plan(data.get("job"), data.get("path"), **page)


class JobsHandler(BaseHandler):
    """``/bytenite-nb/jobs``: the jobs list and submitting a job."""

    @tornado.web.authenticated
    async def get(self):
        """``?limit=`` -> ``{"jobs": [...]}``, newest first, with live progress."""
        await self.call(lambda: {"jobs": self.manager.list_jobs(self.int_argument("limit", 50))})

    @tornado.web.authenticated
    async def post(self):
        """``{"job", "path"?, "cluster"?, "workers"?, "id"?}`` -> 201 and the job started,
        409 if a process runs that id already."""
        await self.call(lambda: self._submit(self.body()), status=201)

    def _submit(self, data: dict) -> dict:
        cluster, scheduler = data.get("cluster") or None, data.get("scheduler") or None
        if cluster and scheduler and cluster != scheduler:
            raise JobValidationError(FieldError("cluster", f"cluster {cluster!r} and scheduler {scheduler!r} name "
                                                           "two clusters: give one"))
        return self.manager.submit(data.get("job"), data.get("path"), scheduler=cluster or scheduler,
                                   workers=data.get("workers"), job_id=data.get("id"))


class JobHandler(BaseHandler):
    """``/bytenite-nb/jobs/ID``: :meth:`JobManager.job_detail`."""

    @tornado.web.authenticated
    async def get(self, job_id: str):
        """``?offset=&limit=`` -> the job, its notable chunks and a page of the others."""
        await self.call(lambda: self.manager.job_detail(
            job_id, offset=self.int_argument("offset", 0, minimum=0),
            limit=self.int_argument("limit", CHUNK_PAGE_LIMIT, maximum=CHUNK_PAGE_MAX)))


class CancelHandler(BaseHandler):
    """``/bytenite-nb/jobs/ID/cancel``: :meth:`JobManager.cancel`."""

    @tornado.web.authenticated
    async def post(self, job_id: str):
        """202 and the job, cancelling; 409 if it has ended or runs out of reach."""
        await self.call(self.manager.cancel, job_id, status=202)


class RerunHandler(BaseHandler):
    """``/bytenite-nb/jobs/ID/rerun``: :meth:`JobManager.rerun_failed`."""

    @tornado.web.authenticated
    async def post(self, job_id: str):
        """202 and the job, started again; 409 unless it is FAILED or CANCELLED and idle."""
        await self.call(self.manager.rerun_failed, job_id, status=202)


class ChunkGridHandler(BaseHandler):
    """``/bytenite-nb/jobs/ID/chunks``: :meth:`JobManager.chunk_grid`."""

    @tornado.web.authenticated
    async def get(self, job_id: str):
        """``?offset=&limit=`` -> a page of the job's chunk states and workers, compact."""
        await self.call(lambda: self.manager.chunk_grid(
            job_id, offset=self.int_argument("offset", 0, minimum=0),
            limit=self.int_argument("limit", GRID_PAGE_LIMIT, maximum=GRID_PAGE_MAX)))


class ChunkHandler(BaseHandler):
    """``/bytenite-nb/jobs/ID/chunk``: :meth:`JobManager.chunk`."""

    @tornado.web.authenticated
    async def get(self, job_id: str):
        """``?index=N`` -> the chunk's record and history; 404 naming it if the job has no such chunk."""
        await self.call(lambda: self.manager.chunk(job_id, self._index()))

    def _index(self) -> int:
        if self.get_argument("index", None) is None:
            raise JobValidationError(FieldError("index", "is required (the chunk's number)"))
        return self.int_argument("index", 0, minimum=0)


class ClustersHandler(BaseHandler):
    """``/bytenite-nb/clusters``: :meth:`JobManager.clusters`."""

    @tornado.web.authenticated
    async def get(self):
        """``?default=`` (the default cluster setting) -> the clusters, the names to submit to, and errors."""
        await self.call(self.manager.clusters, self.get_argument("default", None))


class ScaleClusterHandler(BaseHandler):
    """``/bytenite-nb/clusters/scale``: :meth:`JobManager.scale_cluster`."""

    @tornado.web.authenticated
    async def post(self):
        """``{"kind", "name", "workers"}`` -> 202 and the cluster; 400 naming a wrong field."""
        await self.call(lambda: self._scale(self.body()), status=202)

    def _scale(self, data: dict) -> dict:
        return self.manager.scale_cluster(data.get("kind"), data.get("name"), data.get("workers"))


class ShutdownClusterHandler(BaseHandler):
    """``/bytenite-nb/clusters/shutdown``: :meth:`JobManager.shutdown_cluster`."""

    @tornado.web.authenticated
    async def post(self):
        """``{"kind", "name"}`` -> 202 and the cluster, stopping; 404 unknown, 403 not yours."""
        await self.call(lambda: self._shutdown(self.body()), status=202)

    def _shutdown(self, data: dict) -> dict:
        return self.manager.shutdown_cluster(data.get("kind"), data.get("name"))


class ClusterHandler(BaseHandler):
    """``/bytenite-nb/cluster``: :meth:`JobManager.cluster`."""

    @tornado.web.authenticated
    async def get(self):
        """``?address=`` (the default cluster setting) -> where jobs run and the dashboards."""
        await self.call(self.manager.cluster, self.get_argument("address", None))


ROUTES = [
    ("components", ComponentsHandler),
    ("validate", ValidateHandler),
    ("plan", PlanHandler),
    ("jobs", JobsHandler),
    (f"jobs/{JOB_ID}", JobHandler),
    (f"jobs/{JOB_ID}/cancel", CancelHandler),
    (f"jobs/{JOB_ID}/rerun", RerunHandler),
    (f"jobs/{JOB_ID}/chunks", ChunkGridHandler),
    (f"jobs/{JOB_ID}/chunk", ChunkHandler),
    ("cluster", ClusterHandler),
    ("clusters", ClustersHandler),
    ("clusters/scale", ScaleClusterHandler),
    ("clusters/shutdown", ShutdownClusterHandler),
]


def setup_handlers(web_app, manager: JobManager) -> None:
    """Add the bytenite-nb routes to a Jupyter server's tornado application."""
    web_app.settings["bytenite_nb_manager"] = manager
    base_url = web_app.settings["base_url"]
    handlers = [(url_path_join(base_url, NAMESPACE, route) + "/?$", handler) for route, handler in ROUTES]
    web_app.add_handlers(".*$", handlers)


def supervise_in_background(io_loop, manager: JobManager) -> tornado.ioloop.PeriodicCallback:
    """Run the manager's reaper (:meth:`JobManager.supervise`) every
    ``REAP_INTERVAL_SECONDS`` on ``io_loop``, off the loop itself; it stops with the loop."""

    async def supervise() -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(_blocking, manager.supervise)
        except Exception:
            if manager.log:
                manager.log.exception("bytenite-nb: the job process reaper failed; it runs again")

    callback = tornado.ioloop.PeriodicCallback(supervise, REAP_INTERVAL_SECONDS * 1000)
    io_loop.add_callback(callback.start)
    return callback
