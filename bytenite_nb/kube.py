"""Kubernetes clusters of the dask-kubernetes operator, built from a job.

A resolved job (:class:`~bytenite_nb.job.JobSpec`) becomes a ``DaskCluster``
resource and, when its app runs in an image of its own and needs resources,
a ``DaskWorkerGroup`` for that image:

- the cluster's ``default`` group runs in the worker image of the
  ``bytenite-nb.kubernetes.image`` setting; it plans and assembles (and runs
  apps that need no image of their own);
- an app that names an image (an ``{"image": ...}`` app, or an app folder
  whose manifest runs in ``platform_config.container``) gets a group of
  workers in that very image: its tasks run as processes of the worker
  (``BYTENITE_NB_WORKER_IMAGE``), not as containers inside the pod. Such an
  image must hold Python with ``distributed`` and bytenite-nb. Its
  ``device_requirements`` become the pods' requests and limits (``cpu``,
  ``memory``, ``nvidia.com/gpu``) and the same Dask worker resources
  (``dask worker --resources``) that the engine asks for each chunk, so every
  chunk lands on a worker of that group, one at a time (``--nthreads 1``);
- an app with an image but no ``device_requirements`` gives Dask nothing to
  tell the groups apart by, so the default group itself runs in its image.

Pods start ``dask scheduler`` and ``dask worker`` (the ``dask-scheduler`` and
``dask-worker`` commands are gone from distributed). Settings
(``bytenite-nb.kubernetes.``): ``image``, ``pip-packages`` (installed at
start by images of the Dask project, ``EXTRA_PIP_PACKAGES``), ``namespace``,
``workers`` (of the default group), ``app-workers`` (of an app group at most),
``idle-timeout`` (seconds before the operator deletes an idle cluster),
``user`` (the exact name resources are annotated with, and the sidebar judges
ownership by; by default JupyterHub's ``JUPYTERHUB_USER``).

:func:`cluster_resources` gives the resources (what ``bytenite-nb kube spec``
prints), :func:`job_resource` a ``DaskJob`` that runs a job notebook with
papermill (``bytenite-nb kube job``), and :func:`kube_cluster_for` a running
``KubeCluster`` (``cluster="kubernetes"`` or ``"kubernetes:NAME"``).

>>> worker_resources_arg({"cpu": 2.0, "memory": 5e8, "gpu": 1.0})
'cpu=2,memory=500000000,gpu=1'
>>> pod_resources({"cpu": 0.5, "memory": 5e8})
{'requests': {'cpu': '500m', 'memory': '500000000'}, 'limits': {'cpu': '500m', 'memory': '500000000'}}
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass, field

from . import config
from .exceptions import ClusterUnavailable

log = logging.getLogger(__name__)

API_VERSION = "kubernetes.dask.org/v1"
DEFAULT_GROUP = "default"
APP_GROUP = "app"
#: the environment variable that tells a worker which image it runs in
WORKER_IMAGE_ENV = "BYTENITE_NB_WORKER_IMAGE"
#: a DaskCluster name the operator takes (an RFC 1123 label of at most 53 characters)
NAME = re.compile(r"(?=.{1,53}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?")
#: the longest DaskCluster name the operator takes, less room for a unique suffix
NAME_ROOM = 53 - 7
SCHEDULER_PORT, DASHBOARD_PORT, WORKER_DASHBOARD_PORT = 8786, 8787, 8788
#: Dask resource name -> Kubernetes resource name
K8S_RESOURCE = {"cpu": "cpu", "memory": "memory", "gpu": "nvidia.com/gpu"}


@dataclass
class WorkerGroup:
    """Workers of one image: ``resources`` are the Dask worker resources each declares."""

    name: str
    image: str
    replicas: int
    resources: dict[str, float] = field(default_factory=dict)
    #: the image an app's tasks run in as processes of these workers
    app_image: str | None = None


def settings() -> dict:
    """The ``bytenite-nb.kubernetes`` settings, with their defaults."""
    def number(key: str, default: int) -> int:
        value = config.get(f"kubernetes.{key}")
        return int(value) if value is not None else default

    return {"image": str(config.get("kubernetes.image") or "ghcr.io/dask/dask:latest"),
            "pip-packages": str(config.get("kubernetes.pip-packages") or ""),
            "namespace": config.get("kubernetes.namespace") or None,
            "workers": number("workers", 1), "app-workers": number("app-workers", 2),
            "idle-timeout": number("idle-timeout", 0)}


def cluster_name(job_name: str, unique: bool = False) -> str:
    """A ``DaskCluster`` name (an RFC 1123 label the operator takes) for a job named
    ``job_name``; ``unique`` adds a random suffix (a cluster per run).

    >>> cluster_name("Sales by Month_2024")
    'bnb-sales-by-month-2024'
    >>> len(cluster_name("x" * 80, unique=True)) <= 53
    True
    """
    slug = re.sub(r"[^a-z0-9]+", "-", str(job_name).lower()).strip("-")
    base = f"bnb-{slug}" if slug else "bnb"
    if len(base) > NAME_ROOM:  # keep long names apart by a hash of the whole
        base = base[:NAME_ROOM - 7].rstrip("-") + "-" + hashlib.sha256(slug.encode()).hexdigest()[:6]
    return f"{base}-{uuid.uuid4().hex[:6]}" if unique else base


def app_image(app) -> str | None:
    """The image ``app`` runs in, if any: an ``{"image": ...}`` app's, or an app
    folder's ``platform_config.container`` when it runs in it."""
    image = getattr(app, "image", None)
    return image if isinstance(image, str) and image else None


def worker_groups(spec) -> list[WorkerGroup]:
    """The worker groups of job ``spec``: ``default`` first (see the module docs)."""
    s = settings()
    image = app_image(spec.app)
    needs = spec.app.resources()
    if image and not needs:
        return [WorkerGroup(DEFAULT_GROUP, image, s["workers"], app_image=image)]
    groups = [WorkerGroup(DEFAULT_GROUP, s["image"], s["workers"])]
    if image or needs:
        groups.append(WorkerGroup(APP_GROUP, image or s["image"], app_replicas(spec), dict(needs), app_image=image))
    return groups


def app_replicas(spec) -> int:
    """Workers an app group starts with: ``app-workers``, at most the job's ``config.maxWorkers``."""
    top = settings()["app-workers"]
    most = spec.config.get("maxWorkers")
    return max(1, min(top, int(most)) if most else top)


def worker_resources_arg(resources: dict[str, float]) -> str:
    """``dask worker --resources`` text for Dask worker ``resources``."""
    return ",".join(f"{name}={_number(amount)}" for name, amount in resources.items())


def pod_resources(resources: dict[str, float]) -> dict:
    """A container's Kubernetes ``requests`` and ``limits`` (the same: a task gets
    what it asked for, and no more) for Dask worker ``resources``."""
    amounts: dict[str, str] = {}
    for name, amount in resources.items():
        if name == "cpu":
            amounts["cpu"] = _number(amount) if float(amount).is_integer() else f"{round(amount * 1000)}m"
        elif name == "memory":
            amounts["memory"] = str(int(amount))
        elif name in K8S_RESOURCE:
            amounts[K8S_RESOURCE[name]] = str(int(amount))
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def _number(amount: float) -> str:
    return f"{int(amount)}" if float(amount).is_integer() else f"{amount:g}"


def _env(group: WorkerGroup | None) -> list[dict]:
    env = []
    packages = settings()["pip-packages"]
    if packages and (group is None or group.app_image is None):
        env.append({"name": "EXTRA_PIP_PACKAGES", "value": packages})
    if group is not None and group.app_image:
        env.append({"name": WORKER_IMAGE_ENV, "value": group.app_image})
    return env


def worker_spec(group: WorkerGroup) -> dict:
    """The ``worker`` object of a ``DaskCluster`` or ``DaskWorkerGroup`` for ``group``."""
    args = ["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address",
            str(WORKER_DASHBOARD_PORT)]
    container: dict = {"name": "worker", "image": group.image, "args": args,
                       "ports": [{"name": "http-dashboard", "containerPort": WORKER_DASHBOARD_PORT,
                                  "protocol": "TCP"}]}
    if group.resources:
        args += ["--nthreads", "1", "--resources", worker_resources_arg(group.resources)]
        container["resources"] = pod_resources(group.resources)
    env = _env(group)
    if env:
        container["env"] = env
    return {"replicas": group.replicas, "spec": {"containers": [container]}}


def scheduler_spec(name: str, image: str) -> dict:
    """The ``scheduler`` object of a ``DaskCluster`` named ``name``."""
    def probe() -> dict:  # a fresh one each time: YAML output would show a shared one as an anchor
        return {"httpGet": {"port": "http-dashboard", "path": "/health"}}

    container = {"name": "scheduler", "image": image, "args": ["dask", "scheduler", "--host", "0.0.0.0"],
                 "ports": [{"name": "tcp-comm", "containerPort": SCHEDULER_PORT, "protocol": "TCP"},
                           {"name": "http-dashboard", "containerPort": DASHBOARD_PORT, "protocol": "TCP"}],
                 "readinessProbe": {**probe(), "initialDelaySeconds": 0, "periodSeconds": 1},
                 "livenessProbe": {**probe(), "initialDelaySeconds": 15, "periodSeconds": 20}}
    env = _env(None)
    if env:
        container["env"] = env
    return {"spec": {"containers": [container]},
            "service": {"type": "ClusterIP",
                        "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
                        "ports": [{"name": "tcp-comm", "protocol": "TCP", "port": SCHEDULER_PORT,
                                   "targetPort": "tcp-comm"},
                                  {"name": "http-dashboard", "protocol": "TCP", "port": DASHBOARD_PORT,
                                   "targetPort": "http-dashboard"}]}}


def cluster_spec(name: str, default: WorkerGroup) -> dict:
    """The ``spec`` of a ``DaskCluster`` named ``name`` whose default group is ``default``."""
    return {"idleTimeout": settings()["idle-timeout"], "worker": worker_spec(default),
            "scheduler": scheduler_spec(name, settings()["image"])}


#: the label naming who made a resource, folded to a label value: for selecting (``-l``), never for ownership
USER_LABEL = "bytenite-nb/user"
#: the annotation holding the exact user name of who made a resource: the JupyterLab
#: sidebar scales and deletes only resources whose annotation is exactly this user's
USER_ANNOTATION = "bytenite-nb/user"


def known_user() -> str | None:
    """This user's exact name when one is really known: the ``bytenite-nb.kubernetes.user``
    setting, else JupyterHub's ``JUPYTERHUB_USER``; None otherwise. The login name
    is not taken: in a notebook image it is often the same for everyone (``jovyan``).

    >>> import dask
    >>> with dask.config.set({"bytenite-nb.kubernetes.user": "ana@example.org"}):
    ...     known_user()
    'ana@example.org'
    """
    user = config.get("kubernetes.user") or os.environ.get("JUPYTERHUB_USER")
    return str(user) if user else None


def user_label(user: str | None = None) -> str:
    """``user`` (by default this user: :func:`known_user`, else the login name)
    as a label value. Different names may fold to the same value: ownership is
    judged by the exact name of :data:`USER_ANNOTATION`.

    >>> user_label("ana@example.org")
    'ana-example.org'
    """
    import getpass

    user = user or known_user() or getpass.getuser()
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", user)[:63].strip("-_.") or "unknown"


def _metadata(name: str) -> dict:
    meta = {"name": name, "labels": {"app.kubernetes.io/managed-by": "bytenite-nb", USER_LABEL: user_label()}}
    user = known_user()
    if user:
        meta["annotations"] = {USER_ANNOTATION: user}
    namespace = settings()["namespace"]
    if namespace:
        meta["namespace"] = namespace
    return meta


def cluster_resources(spec, name: str | None = None) -> list[dict]:
    """The ``DaskCluster`` of job ``spec`` (named ``name``, by default after the
    job), then a ``DaskWorkerGroup`` per further worker group."""
    name = name or cluster_name(spec.name)
    groups = worker_groups(spec)
    resources = [{"apiVersion": API_VERSION, "kind": "DaskCluster", "metadata": _metadata(name),
                  "spec": cluster_spec(name, groups[0])}]
    for group in groups[1:]:
        resources.append({"apiVersion": API_VERSION, "kind": "DaskWorkerGroup",
                          "metadata": _metadata(f"{name}-{group.name}"),
                          "spec": {"cluster": name, "worker": worker_spec(group)}})
    return resources


def job_resource(notebook: str, params: list[tuple[str, str]] | None = None, *, output: str = "out.ipynb",
                 name: str | None = None, image: str | None = None) -> dict:
    """A ``DaskJob`` that runs job notebook ``notebook`` (a path in the job's image)
    with papermill, ``params`` given as ``-p NAME VALUE``, on a cluster of its own.

    >>> job_resource("jobs/sales.ipynb", [("month", "5")])["spec"]["job"]["spec"]["containers"][0]["args"]
    ['papermill', 'jobs/sales.ipynb', 'out.ipynb', '-p', 'month', '5']
    """
    s = settings()
    stem = re.sub(r"\.ipynb$", "", str(notebook).rsplit("/", 1)[-1])
    name = name or cluster_name(stem)
    args = ["papermill", notebook, output]
    for key, value in params or []:
        args += ["-p", key, value]
    container: dict = {"name": "job", "image": image or s["image"], "args": args}
    env = _env(None)
    if env:
        container["env"] = env
    default = WorkerGroup(DEFAULT_GROUP, image or s["image"], s["workers"])
    return {"apiVersion": API_VERSION, "kind": "DaskJob", "metadata": _metadata(name),
            "spec": {"job": {"spec": {"containers": [container], "restartPolicy": "Never"}},
                     "cluster": {"spec": cluster_spec(name, default)}}}


def kube_cluster_for(spec, name: str | None = None):
    """A running ``dask_kubernetes.operator.KubeCluster``: for ``name``, the
    existing ``DaskCluster`` of that name, connected to (closing it leaves it
    running); otherwise a new cluster built from job ``spec`` by
    :func:`cluster_resources`, with a unique name, deleted when closed.

    Needs dask-kubernetes (``pip install 'bytenite-nb[kubernetes]'``), a
    Kubernetes API server (kubeconfig or in-cluster) and the operator there.
    """
    try:
        from dask_kubernetes.operator import KubeCluster
    except ImportError as exc:
        raise ClusterUnavailable("a Kubernetes cluster needs dask-kubernetes: "
                                 "pip install 'bytenite-nb[kubernetes]'") from exc
    namespace = settings()["namespace"]
    where = f"namespace {namespace}" if namespace else "the current namespace"
    if name:
        try:
            return KubeCluster.from_name(name, namespace=namespace, quiet=True)
        except Exception as exc:
            raise ClusterUnavailable(f"cannot connect to DaskCluster {name!r} in {where}: "
                                     f"{type(exc).__name__}: {exc}") from exc
    resources = cluster_resources(spec, cluster_name(spec.name, unique=True))
    try:
        cluster = KubeCluster(custom_cluster_spec=resources[0], namespace=namespace, shutdown_on_close=True,
                              quiet=True)
    except Exception as exc:
        raise ClusterUnavailable(f"cannot create DaskCluster {resources[0]['metadata']['name']} in {where}: "
                                 f"{type(exc).__name__}: {exc}") from exc
    try:
        for group in resources[1:]:
            short = group["metadata"]["name"].removeprefix(f"{cluster.name}-")
            cluster.add_worker_group(short, custom_spec=group["spec"]["worker"])
    except Exception as exc:
        cluster.close()
        raise ClusterUnavailable(f"cannot add worker groups to DaskCluster {cluster.name}: "
                                 f"{type(exc).__name__}: {exc}") from exc
    return cluster


def reachable() -> bool:
    """Whether a Kubernetes API server is configured here (a kubeconfig, or a pod's service account)."""
    import os

    return bool(os.environ.get("KUBECONFIG") or os.environ.get("KUBERNETES_SERVICE_HOST")
                or os.path.exists(os.path.expanduser("~/.kube/config")))


def list_clusters() -> list[dict]:
    """The ``DaskCluster`` resources of the namespace: ``name``, ``workers`` (of
    the default group), ``phase`` (the operator's word: ``Running``...), ``user``
    (the exact name of its :data:`USER_ANNOTATION`, None when it has none)."""
    try:
        import dask_kubernetes.operator  # noqa: F401 (tells kr8s what a DaskCluster is)
        import kr8s
    except ImportError as exc:
        raise ClusterUnavailable("listing Kubernetes clusters needs dask-kubernetes: "
                                 "pip install 'bytenite-nb[kubernetes]'") from exc
    namespace = settings()["namespace"]

    async def fetch():  # dask-kubernetes registers DaskCluster with kr8s's asyncio API
        clusters = [c.raw async for c in kr8s.asyncio.get("daskclusters.kubernetes.dask.org", namespace=namespace)]
        services = {}
        if clusters:  # the operator's scheduler services, for their dashboards
            try:
                services = {s.raw["metadata"]["name"]: s.raw
                            async for s in kr8s.asyncio.get("services", namespace=namespace)}
            except Exception:  # noqa: BLE001 - no right to list services: links from the clusters' specs
                services = {}
        return clusters, services

    try:  # in a thread of its own: the caller may be running an event loop (a notebook)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            found, services = pool.submit(asyncio.run, fetch()).result()
    except Exception as exc:
        raise ClusterUnavailable(f"cannot list DaskCluster resources: {type(exc).__name__}: {exc}") from exc
    listed = []
    for raw in found:
        name = raw["metadata"]["name"]
        listed.append({"name": name,
                       "workers": ((raw.get("spec") or {}).get("worker") or {}).get("replicas"),
                       "phase": (raw.get("status") or {}).get("phase"),
                       "user": ((raw.get("metadata") or {}).get("annotations") or {}).get(USER_ANNOTATION),
                       "dashboard": dashboard_link(raw, services.get(f"{name}-scheduler"),
                                                   raw["metadata"].get("namespace") or namespace or "default")})
    return sorted(listed, key=lambda c: c["name"])


def dashboard_link(cluster: dict, service: dict | None, namespace: str) -> str | None:
    """The dashboard of a ``DaskCluster``'s scheduler: through its load balancer
    when the operator's service has one, else the service's name in the
    cluster's DNS (reachable from pods such as JupyterHub's). Formatted by
    Dask's ``distributed.dashboard.link`` (as KubeCluster does), so a
    JupyterHub that proxies dashboards sets it once (for example
    ``{JUPYTERHUB_SERVICE_PREFIX}proxy/{host}:{port}/status``). None when the
    scheduler has no dashboard port.

    >>> spec = {"metadata": {"name": "team"}, "spec": {"scheduler": {"service": {
    ...     "type": "ClusterIP", "ports": [{"name": "http-dashboard", "port": 8787}]}}}}
    >>> dashboard_link(spec, None, "jobs")
    'http://team-scheduler.jobs:8787/status'
    >>> dashboard_link(spec, {"spec": {"type": "LoadBalancer", "ports": [{"name": "http-dashboard", "port": 80}]},
    ...                       "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}}, "jobs")
    'http://203.0.113.9:80/status'
    >>> import dask
    >>> with dask.config.set({"distributed.dashboard.link": "{NOT_SET_HERE}proxy/{host}:{port}/status"}):
    ...     dashboard_link(spec, None, "jobs")  # a template for another process: the plain link
    'http://team-scheduler.jobs:8787/status'
    """
    from distributed.utils import format_dashboard_link

    name = cluster["metadata"]["name"]
    spec = (service or {}).get("spec") or (((cluster.get("spec") or {}).get("scheduler") or {}).get("service") or {})
    port = next((p.get("port") for p in spec.get("ports") or [] if p.get("name") == "http-dashboard"), None)
    if port is None:
        return None
    ingress = ((((service or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or [{}])[0]
    host = (ingress.get("ip") or ingress.get("hostname")) if spec.get("type") == "LoadBalancer" else None
    host = host or f"{name}-scheduler.{namespace}"
    if ":" in host:  # an IPv6 address, as a URL writes it
        host = f"[{host}]"
    try:
        return format_dashboard_link(host, port)
    except (KeyError, IndexError, ValueError):
        # the template names what this process lacks (JUPYTERHUB_SERVICE_PREFIX outside the hub)
        return f"http://{host}:{port}/status"


class JobKubeCluster:
    """A Kubernetes cluster made for one job (``cluster="kubernetes"``): :meth:`start`
    makes it from the job and returns its client, :meth:`fit` scales the app's
    workers to the chunks, :meth:`release` deletes the cluster."""

    shared = False

    def __init__(self, spec, *, max_workers: int | None = None):
        self.spec = spec
        self.max_workers = max_workers
        groups = worker_groups(spec)
        self.groups = [g.name for g in groups]
        #: what the workers of each group declare, before any has joined (pods take a while)
        self.worker_resources = [g.resources for g in groups]
        self._cluster = None
        self._client = None
        self._lock = threading.Lock()
        self._released = False

    def start(self):
        """Make the cluster (once) and return its ``distributed.Client``."""
        with self._lock:
            if self._released:
                raise ClusterUnavailable("this job's Kubernetes cluster was deleted already")
            if self._client is None:
                self._cluster = kube_cluster_for(self.spec)
                self._client = self._cluster.get_client()
            return self._client

    def fit(self, tasks: int) -> None:
        """Scale the group that runs the chunks to ``tasks`` workers (at most
        ``config.maxWorkers`` and the ``app-workers`` setting)."""
        cluster = self._cluster
        if cluster is None:
            return
        top = min(tasks, self.max_workers or tasks, settings()["app-workers"])
        try:
            cluster.scale(max(top, 1), worker_group=self.groups[-1])
        except Exception as exc:  # the job still runs on the workers it has
            log.warning("could not scale Kubernetes cluster %s: %s", cluster.name, exc)

    def release(self) -> None:
        """Delete the cluster (its pods, its scheduler); safe to call twice."""
        with self._lock:
            self._released = True
            cluster, client = self._cluster, self._client
            self._cluster = self._client = None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass
        if cluster is not None:
            try:
                cluster.close()
            except Exception as exc:
                log.warning("could not delete Kubernetes cluster %s: %s", cluster.name, exc)

    def describe(self) -> dict:
        cluster = self._cluster
        return {"kind": "kubernetes", "name": getattr(cluster, "name", None), "shared": False,
                "scheduler": getattr(cluster, "scheduler_address", None),
                "dashboard": getattr(cluster, "dashboard_link", None) if cluster is not None else None}


class SharedKubeCluster(JobKubeCluster):
    """A running ``DaskCluster`` joined by name (``cluster="kubernetes:NAME"``):
    connected to, never scaled or deleted by a job."""

    shared = True

    def __init__(self, name: str):
        self.name = name
        self.worker_resources = None  # only its running workers say
        self.max_workers = None
        self._cluster = None
        self._client = None
        self._lock = threading.Lock()
        self._released = False

    def start(self):
        with self._lock:
            if self._client is None:
                self._cluster = kube_cluster_for(None, name=self.name)
                self._client = self._cluster.get_client()
            return self._client

    def fit(self, tasks: int) -> None:
        """A shared cluster keeps the size its owner gave it."""

    def release(self) -> None:
        """Let go of the connection; the cluster keeps running."""
        with self._lock:
            client, self._client = self._client, None
            cluster, self._cluster = self._cluster, None
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close()  # from_name: shutdown_on_close is False, the DaskCluster stays
                except Exception:
                    pass

    def describe(self) -> dict:
        return {**super().describe(), "name": self.name, "shared": True}
