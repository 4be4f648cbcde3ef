"""Dask Gateway clusters: one made for a job (``cluster="gateway"``), or a
shared one joined by name (``cluster="gateway:NAME"``).

The Gateway is reached the way daskhub configures dask-gateway's client, from
Dask config alone: ``gateway.address``, ``gateway.proxy-address``,
``gateway.public-address`` and ``gateway.auth.type`` (``basic``,
``jupyterhub``, ``kerberos`` or a class) with ``gateway.auth.kwargs``.

A cluster made for a job (:class:`JobGatewayCluster`) takes its options from
the job's ``config.clusterOptions`` over the ``bytenite-nb.gateway.cluster-options``
setting, each checked against what the Gateway offers. It starts when the job
starts, adapts between ``bytenite-nb.gateway.minimum-workers`` and the job's
chunk count (at most ``config.maxWorkers``), and is shut down when the job
ends however it ends; at the latest when the process exits. When the Gateway
offers an ``idle_timeout`` option it is set (``bytenite-nb.gateway.idle-timeout``),
so that even a process killed outright leaves no cluster running for long.

A shared cluster (:class:`SharedGatewayCluster`) is only connected to: it is
never scaled nor shut down by a job.

>>> offered_text({"worker_cores": 1, "image": "python:3.12"})
'worker_cores (default 1), image (default python:3.12)'
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from . import config
from .exceptions import ClusterUnavailable, FieldError, GatewayRefused, JobValidationError
from .redact import redact_text

log = logging.getLogger(__name__)

IDLE_TIMEOUT_OPTION = "idle_timeout"
JOB_OPTIONS_FIELD = "config.clusterOptions"

_lock = threading.Lock()
_shared: dict[str, tuple[Any, Any]] = {}  # name -> (GatewayCluster, Client), kept open for later jobs
_made: set["JobGatewayCluster"] = set()  # clusters made for jobs and not shut down yet


def gateway():
    """A ``dask_gateway.Gateway`` configured by Dask config alone (close it after use)."""
    try:
        from dask_gateway import Gateway
    except ImportError as exc:
        raise ClusterUnavailable("a Dask Gateway cluster needs the dask-gateway package: "
                                 "pip install 'bytenite-nb[gateway]'") from exc
    try:
        return closing_once(Gateway())
    except ValueError as exc:  # no address in Dask config
        raise ClusterUnavailable("a Dask Gateway cluster needs the Gateway's address: set Dask config "
                                 "gateway.address (DASK_GATEWAY__ADDRESS), as daskhub does") from exc
    except Exception as exc:  # an auth type that cannot be set up (no JUPYTERHUB_API_TOKEN...)
        raise ClusterUnavailable(f"cannot set up the Dask Gateway client (Dask config gateway.auth.type="
                                 f"{_auth_type()}): {type(exc).__name__}: {exc}") from exc


def closing_once(gw):
    """``gw`` (a ``dask_gateway.Gateway``) whose ``close`` does its work once:
    dask-gateway closes a Gateway again when it is collected, which fails on
    the stopped event loop of current distributed versions."""
    close = gw.close
    done = threading.Event()

    def close_once():
        if not done.is_set():
            done.set()
            close()

    gw.close = close_once
    return gw


def call(gw, what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, a request to the Gateway ``gw``, with its failures
    said plainly: refused credentials, an unreachable Gateway, an error it answers.
    The messages go to records, logs and the sidebar: credentials the address or
    the error may hold are masked."""
    try:
        return fn(*args, **kwargs)
    except (ClusterUnavailable, JobValidationError):
        raise
    except Exception as exc:
        where = address_of(gw)
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise GatewayRefused(redact_text(
                f"the Dask Gateway at {where} refused the credentials ({status} {getattr(exc, 'message', '')}) "
                f"while asked to {what}; check Dask config gateway.auth (type {_auth_type()})")) from exc
        if isinstance(exc, OSError) or type(exc).__name__.startswith("ClientConnector"):
            raise ClusterUnavailable(redact_text(f"cannot reach the Dask Gateway at {where} to {what}: {exc}")) \
                from exc
        raise ClusterUnavailable(redact_text(f"the Dask Gateway at {where} could not {what}: "
                                             f"{type(exc).__name__}: {exc}")) from exc


def address_of(gw) -> str:
    """The address of the Gateway ``gw`` for a message or a record, credentials masked.

    >>> class Gw: address = "https://ana:pw@hub.example.org/services/dask-gateway"
    >>> address_of(Gw())
    'https://***@hub.example.org/services/dask-gateway'
    """
    return redact_text(str(gw.address))


def _auth_type() -> str:
    import dask.config

    return str(dask.config.get("gateway.auth.type", "basic"))


def offered_text(options) -> str:
    """The options a Gateway offers, with their values, for a message."""
    return ", ".join(f"{name} (default {options[name]})" for name in options) or "none"


def cluster_options(gw, requested: dict | None = None):
    """The Gateway's cluster options with the ``bytenite-nb.gateway.cluster-options``
    setting, then ``requested`` (the job's ``config.clusterOptions``), applied;
    and its idle timeout, when offered and not given. Raises
    :class:`JobValidationError` naming every unknown option or bad value."""
    options = call(gw, "list its cluster options", gw.cluster_options)
    offered = offered_text(options)  # before any is changed: what the Gateway offers by default
    errors: list[FieldError] = []
    sources = ((f"Dask config {config.SECTION}.gateway.cluster-options", config.gateway_cluster_options()),
               (JOB_OPTIONS_FIELD, dict(requested or {})))
    given: set[str] = set()
    for field, values in sources:
        for name, value in values.items():
            given.add(name)
            if name not in options:
                errors.append(FieldError(f"{field}.{name}", f"the Dask Gateway offers no such option; it offers: "
                                                             f"{offered}"))
                continue
            try:
                options[name] = value
            except (TypeError, ValueError) as exc:
                errors.append(FieldError(f"{field}.{name}", f"{exc}; the Dask Gateway offers: {offered}"))
    if errors:
        raise JobValidationError(errors)
    idle = config.gateway_idle_timeout()
    if idle and IDLE_TIMEOUT_OPTION in options and IDLE_TIMEOUT_OPTION not in given:
        try:
            options[IDLE_TIMEOUT_OPTION] = idle
        except (TypeError, ValueError):
            try:
                options[IDLE_TIMEOUT_OPTION] = int(idle)
            except (TypeError, ValueError) as exc:
                log.warning("the Dask Gateway's %s option does not take %ss: %s", IDLE_TIMEOUT_OPTION, idle, exc)
    return options


class JobGatewayCluster:
    """A Gateway cluster made for one job: :meth:`start` makes it (and returns
    its client), :meth:`fit` adapts it to the job's chunks, :meth:`release`
    shuts it down. Options are checked when this object is made, before any
    cluster exists.
    """

    shared = False

    def __init__(self, requested_options: dict | None = None, *, max_workers: int | None = None):
        gw = gateway()
        try:
            self.options = cluster_options(gw, requested_options)
            self.gateway_address = address_of(gw)
        finally:
            gw.close()
        self.minimum = config.gateway_minimum_workers()
        self.max_workers = max_workers
        self.name: str | None = None
        self.dashboard_link: str | None = None
        self.scheduler_address: str | None = None
        self._cluster = None
        self._client = None
        self._lock = threading.Lock()
        self._released = False

    def start(self):
        """Make the cluster (once) and return its ``distributed.Client``."""
        with self._lock:
            if self._released:
                raise ClusterUnavailable("this job's Dask Gateway cluster was shut down already")
            if self._client is not None:
                return self._client
            gw = gateway()
            try:
                made = call(gw, "start a cluster", gw.new_cluster, self.options, shutdown_on_close=True)
            finally:
                gw.close()
            with _lock:
                _made.add(self)
            closing_once(made.gateway)
            self._cluster = made
            self.name, self.dashboard_link = made.name, made.dashboard_link
            self.scheduler_address = made.scheduler_address
            # Planning needs one worker; fit() widens this once the chunks are known.
            call(made.gateway, "adapt the cluster", made.adapt, minimum=self.minimum, maximum=max(self.minimum, 1))
            self._client = made.get_client(set_as_default=False)
            return self._client

    def fit(self, tasks: int) -> None:
        """Adapt between the minimum and ``tasks`` workers (at most ``config.maxWorkers``)."""
        cluster = self._cluster
        if cluster is None:
            return
        top = min(tasks, self.max_workers) if self.max_workers else tasks
        try:
            cluster.adapt(minimum=self.minimum, maximum=max(self.minimum, top, 1))
        except Exception as exc:  # the job still runs on the workers it has
            log.warning("could not adapt Dask Gateway cluster %s: %s", self.name, exc)

    def release(self) -> None:
        """Shut the cluster down (its workers, its scheduler, the client); safe to call twice."""
        with self._lock:
            self._released = True
            cluster, self._cluster, self._client = self._cluster, None, None
        with _lock:
            _made.discard(self)
        if cluster is None:
            return
        try:
            cluster.shutdown()
        except Exception as exc:
            log.warning("could not shut down Dask Gateway cluster %s: %s", self.name, exc)

    def describe(self) -> dict:
        """What the job record keeps of this cluster."""
        return {"kind": "gateway", "name": self.name, "gateway": self.gateway_address, "shared": False,
                "scheduler": self.scheduler_address, "dashboard": self.dashboard_link}


class SharedGatewayCluster:
    """A running Gateway cluster joined by name: connected to, never scaled or
    shut down by a job. Its client is kept for later jobs of this process."""

    shared = True

    def __init__(self, name: str):
        self.name = name
        self._client = None
        self._cluster = None

    def start(self):
        """Connect (or reuse this process's connection) and return the client."""
        with _lock:
            known = _shared.get(self.name)
            if known is not None and known[1].status == "running":
                self._cluster, self._client = known
                return self._client
        gw = gateway()
        try:
            running = call(gw, "list your clusters", gw.list_clusters)
            if self.name not in {c.name for c in running}:
                names = ", ".join(c.name for c in running) or "none"
                raise ClusterUnavailable(f"the Dask Gateway at {address_of(gw)} has no running cluster named "
                                         f"{self.name!r}; your running clusters: {names}")
            joined = call(gw, f"connect to cluster {self.name}", gw.connect, self.name, shutdown_on_close=False)
        finally:
            gw.close()
        closing_once(joined.gateway)
        client = joined.get_client(set_as_default=False)
        with _lock:
            _shared[self.name] = (joined, client)
        self._cluster, self._client = joined, client
        return client

    def fit(self, tasks: int) -> None:
        """A shared cluster is scaled by its owner, not by a job."""

    def release(self) -> None:
        """A shared cluster keeps running."""

    def describe(self) -> dict:
        cluster = self._cluster
        return {"kind": "gateway", "name": self.name, "shared": True,
                "gateway": address_of(cluster.gateway) if cluster is not None else None,
                "scheduler": cluster.scheduler_address if cluster is not None else None,
                "dashboard": cluster.dashboard_link if cluster is not None else None}


def disconnect_shared(name: str | None = None) -> None:
    """Close this process's connection to the shared cluster ``name`` (every one
    when None); the clusters keep running."""
    with _lock:
        names = [name] if name else list(_shared)
        dropped = [_shared.pop(n) for n in names if n in _shared]
    for cluster, client in dropped:
        try:
            client.close()
            cluster.close(shutdown=False)
        except Exception as exc:
            log.warning("could not close the connection to Dask Gateway cluster %s: %s", cluster.name, exc)


def list_clusters() -> list[dict]:
    """The user's running Gateway clusters: name, workers, dashboard (and whether
    a job of this process made it). Empty when no Gateway is configured."""
    import dask.config

    if not dask.config.get("gateway.address", None):
        return []
    gw = gateway()
    try:
        reports = call(gw, "list your clusters", gw.list_clusters)
        out = []
        for report in reports:
            out.append({"name": report.name, "status": report.status.name.lower(),
                        "workers": _workers(gw, report.name) if report.status.name == "RUNNING" else 0,
                        "dashboard": report.dashboard_link, "gateway": address_of(gw),
                        "made_by_a_job": any(c.name == report.name for c in list(_made))})
        return out
    finally:
        gw.close()


def _workers(gw, name: str) -> int | None:
    """How many workers the cluster ``name`` has now (None if it cannot be asked)."""
    try:
        cluster = gw.connect(name, shutdown_on_close=False)
    except Exception:
        return None
    closing_once(cluster.gateway)
    try:
        return len((cluster.scheduler_info or {}).get("workers", {}))
    finally:
        cluster.close(shutdown=False)


@atexit.register
def shut_down_job_clusters() -> None:
    """Shut down every cluster made for a job of this process that is still
    running (the process exits with a job unfinished)."""
    with _lock:
        made = list(_made)
    for cluster in made:
        cluster.release()
