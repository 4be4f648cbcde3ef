"""Which Dask cluster a job runs on.

A cluster is named the same way everywhere (``job.run(cluster=...)``,
``job.submit(cluster=...)``, ``bytenite-nb run JOB --cluster ...``, the
builder's cluster field, the ``bytenite-nb.cluster`` setting); ``scheduler=``
and ``--scheduler`` take the same names:

- ``local``: this process's local cluster (of ``workers=`` workers);
- ``sync`` (or ``synchronous``, ``single-threaded``): the calling thread;
- a scheduler address, ``tcp://...`` or ``tls://...``;
- ``gateway``: a new Dask Gateway cluster made for the job and shut down when
  it ends (:mod:`bytenite_nb.gateway`); ``gateway:NAME``: the user's running
  Gateway cluster ``NAME``, connected to and never shut down;
- ``kubernetes``: a new dask-kubernetes operator cluster built from the job
  and deleted when it ends (:mod:`bytenite_nb.kube`); ``kubernetes:NAME``: the
  running ``DaskCluster`` ``NAME``, connected to and never deleted.

:func:`resolve` says where, in one order, for the library, the CLI, widgets
and the server alike:

1. an explicit ``client`` (a ``distributed.Client``);
2. an explicit ``cluster`` or ``scheduler`` (one of the names above);
3. ``workers`` alone: this process's local cluster of that many workers;
4. the current default client (``distributed.Client()`` made in a notebook);
5. the ``bytenite-nb.cluster`` setting (:mod:`bytenite_nb.config`): any of
   the names above, so a JupyterHub deployment sets it once for everyone;
6. Dask config's ``scheduler-address``;
7. the background cluster of ``bytenite-nb cluster start``, when one runs for
   this ``BYTENITE_NB_HOME`` (:mod:`bytenite_nb.background_cluster`);
8. otherwise this process's local cluster, made on first use (and per number
   of workers) and reused by every later job.

A local cluster is made of worker processes (one thread each), except for
jobs whose app does its work in processes of its own (a command, an app
folder, a container: ``App.runs_own_process``): their tasks only wait for
those processes, so the local cluster is one worker of as many threads in
this process, which starts in a tenth of a second instead of one or two
(``threads_ok=True`` asks for that).

A cluster that cannot be reached raises
:class:`~bytenite_nb.exceptions.ClusterUnavailable` naming its address.

>>> resolve(scheduler="sync")
Target(kind='sync', address=None, source='scheduler=')
>>> resolve(scheduler="tcp://10.0.0.5:8786").kind
'address'
>>> resolve(cluster="gateway:team-cluster").name
'team-cluster'
>>> resolve(cluster="kubernetes").kind
'kubernetes'
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from dataclasses import dataclass, field, replace

from . import config
from .exceptions import ClusterUnavailable
from .machine import default_workers, worker_resources  # noqa: F401 (public here too)

SYNC_NAMES = ("sync", "synchronous", "single-threaded")
GATEWAY = "gateway"
KUBERNETES = "kubernetes"

_lock = threading.Lock()
_clients: dict[str, object] = {}
_local: dict[tuple, tuple] = {}  # (workers, processes) -> (cluster, client); never closed under a running job


@dataclass(frozen=True)
class Target:
    """Where a job runs: ``kind`` is ``client``, ``sync``, ``address``, ``local``,
    ``gateway`` or ``kubernetes``; ``source`` says, in words, which step of the order chose it."""

    kind: str
    address: str | None = None
    source: str = ""
    client: object = field(default=None, repr=False, compare=False)
    workers: int | None = field(default=None, repr=False)
    #: for ``local``: worker processes (True) or threads of this process (False)
    processes: bool = field(default=True, repr=False)
    #: for ``gateway`` and ``kubernetes``: the shared cluster's name; None: a new cluster for the job
    name: str | None = field(default=None, repr=False)


def resolve(client=None, scheduler: str | None = None, workers: int | None = None, *,
            threads_ok: bool = False, cluster: str | None = None) -> Target:
    """Where a job given ``client``, ``cluster`` (or ``scheduler``, the same) and
    ``workers`` runs (see the module's order); ``threads_ok``: a local cluster
    may be threads of this process.

    Reaches no cluster: a background cluster is only looked up in its record.

    >>> resolve(workers=2)
    Target(kind='local', address=None, source='workers=')
    >>> resolve(scheduler="local", threads_ok=True).processes
    False
    """
    if cluster and scheduler and cluster != scheduler:
        raise ValueError(f"cluster={cluster!r} and scheduler={scheduler!r} name two clusters: give one")
    target = _resolve(client, cluster or scheduler, workers, "cluster=" if cluster else "scheduler=")
    if target.kind == "local" and threads_ok:
        return replace(target, processes=False)
    return target


def _resolve(client, scheduler: str | None, workers: int | None, named_by: str = "scheduler=") -> Target:
    if client is not None and not isinstance(client, str):
        return Target("client", _address_of(client), "client=", client=client)
    scheduler = scheduler or (client if isinstance(client, str) else None)
    if scheduler:
        return _named(str(scheduler), named_by, workers)
    if workers is not None:
        return Target("local", None, "workers=", workers=workers)
    if "distributed" in sys.modules:  # no Client can exist before distributed is imported
        from distributed import default_client

        try:
            current = default_client()
        except ValueError:
            current = None
        if current is not None:
            return Target("client", _address_of(current), "the default Dask client", client=current)
    configured = config.cluster()
    if configured:
        return _named(configured, f"{config.source('cluster')}", None)
    import dask.config

    address = dask.config.get("scheduler-address", None)
    if address:
        return Target("address", str(address), "Dask config scheduler-address")
    from . import background_cluster

    record = background_cluster.running()
    if record is not None:
        return Target("address", record["address"], "the background cluster (bytenite-nb cluster start)")
    return Target("local", None, "default", workers=config.local_workers())


def _named(value: str, source: str, workers: int | None) -> Target:
    value = value.strip()
    if value in SYNC_NAMES:
        return Target("sync", None, source)
    if value == "local":
        return Target("local", None, source, workers=workers if workers is not None else config.local_workers())
    kind, _, name = value.partition(":")
    if kind == GATEWAY:
        return Target("gateway", None, source, name=name or None)
    if kind == KUBERNETES:
        return Target("kubernetes", None, source, name=name or None)
    return Target("address", value, source)


def _address_of(client) -> str | None:
    try:
        return client.scheduler.address
    except Exception:
        return None


def get_client(address=None, *, workers: int | None = None):
    """A ``distributed.Client`` to run jobs on, resolved as :func:`resolve` says
    (``address`` is a client or a scheduler address; ``"sync"`` has no client)."""
    target = resolve(client=address, workers=workers)
    return client_for(target)


def job_cluster(target: Target, *, options: dict | None = None, max_workers: int | None = None, spec=None):
    """For a ``gateway`` target, the cluster a job uses (:mod:`bytenite_nb.gateway`):
    a new one whose ``options`` (a job's ``config.clusterOptions``) are checked
    against the Gateway now, or the shared one; for a ``kubernetes`` target, a
    new one built from job ``spec`` or the shared one (:mod:`bytenite_nb.kube`);
    None for other targets. It starts with ``.start()`` (which gives its client)
    and ends with ``.release()``."""
    if target.kind == "kubernetes":
        from . import kube

        if target.name:
            return kube.SharedKubeCluster(target.name)
        if spec is None:
            raise ValueError("a new Kubernetes cluster is built from the job: give its spec")
        return kube.JobKubeCluster(spec, max_workers=max_workers)
    if target.kind != "gateway":
        return None
    from . import gateway

    if target.name:
        return gateway.SharedGatewayCluster(target.name)
    return gateway.JobGatewayCluster(options, max_workers=max_workers)


def client_for(target: Target):
    """The ``distributed.Client`` of a resolved target (not for ``sync``; for
    ``gateway`` and ``kubernetes``, see :func:`job_cluster`)."""
    if target.kind == "client":
        return target.client
    if target.kind == "address":
        return connect(target.address)
    if target.kind == "local":
        return local_client(target.workers) if target.processes else local_client(target.workers, processes=False)
    raise ValueError(f"a {target.kind} target has no Dask client")


def connect(address: str):
    """A client of the scheduler at ``address``, made once and reused while it is open."""
    import dask
    from distributed import Client

    from . import background_cluster

    with _lock:
        client = _clients.get(address)
        if client is None or client.status in ("closed", "closing"):
            try:
                client = Client(address, set_as_default=False, security=background_cluster.security_for(address),
                                timeout=dask.config.get("distributed.comm.timeouts.connect", "30s"))
            except (OSError, TimeoutError) as exc:
                raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
            _clients[address] = client
        return client


def local_client(workers: int | None = None, *, processes: bool = True):
    """The client of this process's local cluster, made on first use: ``workers``
    worker processes of one thread each, or (``processes=False``) one worker of
    ``workers`` threads in this process.

    >>> client = local_client(2, processes=False)
    >>> sum(client.nthreads().values())
    2
    >>> close_local()
    """
    from distributed import Client, LocalCluster

    n = workers or default_workers()
    key = (n, processes)
    with _lock:
        if key in _local:
            cluster, client = _local[key]
            if client.status == "running":
                return client
            # Its scheduler went away: nothing can run on it any more.
            _close(cluster, client)
        try:
            if processes:
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR,
                                       resources=worker_resources(n))
            else:
                cluster = LocalCluster(n_workers=1, threads_per_worker=n, processes=False,
                                       dashboard_address=":0", silence_logs=logging.ERROR,
                                       resources=worker_resources(1))
        except Exception as exc:
            what = f"{n} worker(s)" if processes else f"{n} thread(s)"
            raise ClusterUnavailable(f"cannot start a local Dask cluster of {what}: {exc}") from exc
        client = Client(cluster, set_as_default=False)
        _local[key] = (cluster, client)
        return client


def _close(cluster, client) -> None:
    try:
        client.close()
        cluster.close()
    except Exception:
        pass


@atexit.register
def close_local() -> None:
    """Shut this process's local clusters down (at exit, or to free their processes early)."""
    with _lock:
        clusters = list(_local.values())
        _local.clear()
    for cluster, client in clusters:
        _close(cluster, client)
