"""The Dask Gateway and Kubernetes clusters the server sees, for the sidebar's
cluster section: listed with their workers and dashboards, scaled, and shut
down when this user made them; and the cluster names a job may be submitted
to, the ones :func:`bytenite_nb.cluster.resolve` takes.

A Dask Gateway lists only the clusters of the user it authenticates, so each
is this user's. A ``DaskCluster`` is this user's when bytenite-nb made it for
them (its ``bytenite-nb/user`` label, :func:`bytenite_nb.kube.user_label`);
others in the namespace are listed, and may be submitted to, but are left alone.

A source that cannot be reached is said in ``errors`` (its message), never
an empty list that looks like "no clusters".

>>> [c["value"] for c in cluster_choices([], gateway_configured=False, kubernetes_configured=False)]
['local', 'sync']
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from ..exceptions import ByteniteNBError, ClusterNotFound, ClusterNotYours, FieldError, JobValidationError

KINDS = ("gateway", "kubernetes")
MAX_SCALE = 1000


def cluster_choices(clusters: list[dict], *, gateway_configured: bool, kubernetes_configured: bool,
                    default: str | None = None) -> list[dict]:
    """The cluster names a job may run on, each ``{"value", "label"}``: the
    default setting first when it names something else, ``local``, ``sync``, a
    new Gateway or Kubernetes cluster when one is configured, then each
    running cluster by name.

    >>> [c["value"] for c in cluster_choices([{"target": "gateway:abc", "kind": "gateway", "name": "abc",
    ...     "workers": 2}], gateway_configured=True, kubernetes_configured=False, default="tcp://h:8786")]
    ['tcp://h:8786', 'local', 'sync', 'gateway', 'gateway:abc']
    """
    choices = [{"value": "local", "label": "local: a local Dask cluster for the job"},
               {"value": "sync", "label": "sync: no cluster, one chunk at a time"}]
    if gateway_configured:
        choices.append({"value": "gateway", "label": "gateway: a new Dask Gateway cluster for the job"})
    if kubernetes_configured:
        choices.append({"value": "kubernetes", "label": "kubernetes: a new Kubernetes cluster for the job"})
    for cluster in clusters:
        workers = cluster.get("workers")
        count = f"{workers} worker{'s' if workers != 1 else ''}" if workers is not None else "workers unknown"
        choices.append({"value": cluster["target"], "label": f"{cluster['target']} ({count})"})
    if default and default not in {c["value"] for c in choices}:
        choices.insert(0, {"value": default, "label": f"{default} (the default setting)"})
    return choices


def list_clusters(default: str | None = None) -> dict:
    """``{"clusters": [...], "choices": [...], "errors": [...]}``: every Gateway
    cluster of this user and every ``DaskCluster`` of the namespace, each with
    ``kind``, ``name``, ``target`` (the name a job is submitted with),
    ``workers``, ``status``, ``dashboard`` and ``yours`` (may be scaled and shut
    down from here); the :func:`cluster_choices`; and a message per source
    that could not be listed."""
    import dask.config

    from .. import gateway, kube

    clusters: list[dict] = []
    errors: list[dict] = []
    gateway_configured = bool(dask.config.get("gateway.address", None))
    if gateway_configured:
        try:
            for c in gateway.list_clusters():
                clusters.append({"kind": "gateway", "name": c["name"], "target": f"gateway:{c['name']}",
                                 "workers": c["workers"], "status": c["status"], "dashboard": c["dashboard"],
                                 "yours": True})
        except ByteniteNBError as exc:
            errors.append({"kind": "gateway", "message": str(exc)})
    kubernetes_configured = kube.reachable()
    if kubernetes_configured:
        try:
            me = kube.user_label()
            for c in kube.list_clusters():
                clusters.append({"kind": "kubernetes", "name": c["name"], "target": f"kubernetes:{c['name']}",
                                 "workers": c["workers"], "status": (c["phase"] or "unknown").lower(),
                                 "dashboard": None, "yours": c.get("user") == me})
        except ByteniteNBError as exc:
            errors.append({"kind": "kubernetes", "message": str(exc)})
    return {"clusters": clusters, "errors": errors,
            "choices": cluster_choices([c for c in clusters if c["status"] == "running" or c["kind"] == "kubernetes"],
                                       gateway_configured=gateway_configured,
                                       kubernetes_configured=kubernetes_configured, default=default)}


def check_request(kind, name, workers=None, *, scaling: bool = False) -> None:
    """Raise :class:`JobValidationError` naming each wrong field of a scale or shutdown request."""
    errors = []
    if kind not in KINDS:
        errors.append(FieldError("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}"))
    if not isinstance(name, str) or not name:
        errors.append(FieldError("name", f"expected a cluster name, got {name!r}"))
    if scaling and (not isinstance(workers, int) or isinstance(workers, bool) or not 0 <= workers <= MAX_SCALE):
        errors.append(FieldError("workers", f"expected a whole number from 0 to {MAX_SCALE}, got {workers!r}"))
    if errors:
        raise JobValidationError(errors)


def _own(kind: str, name: str) -> dict:
    """The listed cluster ``kind``/``name``, if this user made it; else the error saying why not."""
    listed = list_clusters()
    found = next((c for c in listed["clusters"] if c["kind"] == kind and c["name"] == name), None)
    if found is None:
        problems = "; ".join(e["message"] for e in listed["errors"] if e["kind"] == kind)
        names = ", ".join(c["name"] for c in listed["clusters"] if c["kind"] == kind) or "none"
        raise ClusterNotFound(f"no {kind} cluster named {name!r}; listed: {names}" + (f" ({problems})" if problems
                                                                                        else ""))
    if not found["yours"]:
        raise ClusterNotYours(f"the {kind} cluster {name!r} was not made by you: it is left to whoever made it")
    return found


def scale(kind, name, workers) -> dict:
    """Ask cluster ``kind``/``name`` (this user's) for ``workers`` workers; the cluster as listed before."""
    check_request(kind, name, workers, scaling=True)
    found = _own(kind, name)
    if kind == "gateway":
        _gateway_cluster_call(name, "scale", lambda cluster: cluster.scale(workers))
    else:
        _kube_call(name, "scale", lambda cluster: cluster.patch({"spec": {"worker": {"replicas": workers}}}))
    return {**found, "requested": workers}


def shutdown(kind, name) -> dict:
    """Shut cluster ``kind``/``name`` (this user's) down: its scheduler and workers stop."""
    check_request(kind, name)
    found = _own(kind, name)
    if kind == "gateway":
        from .. import gateway

        gw = gateway.gateway()
        try:
            gateway.call(gw, f"shut down cluster {name}", gw.stop_cluster, name)
        finally:
            gw.close()
        gateway.disconnect_shared(name)
    else:
        _kube_call(name, "delete", lambda cluster: cluster.delete())
    return {**found, "status": "stopping"}


def _gateway_cluster_call(name: str, what: str, act) -> None:
    from .. import gateway

    gw = gateway.gateway()
    try:
        cluster = gateway.call(gw, f"connect to cluster {name}", gw.connect, name, shutdown_on_close=False)
    finally:
        gw.close()
    gateway.closing_once(cluster.gateway)
    try:
        gateway.call(cluster.gateway, f"{what} cluster {name}", act, cluster)
    finally:
        cluster.close(shutdown=False)


def _kube_call(name: str, what: str, act) -> None:
    """``act`` on the ``DaskCluster`` ``name`` through kr8s (its asyncio API, in a thread of its own)."""
    from ..exceptions import ClusterUnavailable
    from ..kube import settings

    import dask_kubernetes.operator  # noqa: F401 (tells kr8s what a DaskCluster is)
    import kr8s

    async def go():
        async for cluster in kr8s.asyncio.get("daskclusters.kubernetes.dask.org", name,
                                              namespace=settings()["namespace"]):
            await act(cluster)

    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, go()).result()
    except Exception as exc:
        raise ClusterUnavailable(f"cannot {what} DaskCluster {name}: {type(exc).__name__}: {exc}") from exc
