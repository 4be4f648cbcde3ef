"""Scaling and shutting down, from the sidebar's cluster section, the Dask
Gateway and Kubernetes clusters this user made (those listed by
:func:`bytenite_nb.reachable.list_clusters` as ``yours``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from ..exceptions import ClusterNotFound, ClusterNotYours, FieldError, JobValidationError
from ..reachable import list_clusters

KINDS = ("gateway", "kubernetes")
MAX_SCALE = 1000


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
    if kind == "kubernetes" and not found["yours"]:
        from ..kube import known_user

        if known_user() is None:  # the login name is often the same for all (jovyan): not trusted
            raise ClusterNotYours(f"cannot tell whether the kubernetes cluster {name!r} is yours: no user name "
                                  "is known (JUPYTERHUB_USER is not set); set Dask config "
                                  "bytenite-nb.kubernetes.user to your user name")
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
    """``act`` on the ``DaskCluster`` ``name`` through kr8s (its asyncio API, in a thread of its own).

    Raises :class:`ClusterNotFound` when it is gone (deleted since it was listed): nothing was done.
    """
    from ..exceptions import ClusterUnavailable
    from ..kube import settings

    import dask_kubernetes.operator  # noqa: F401 (tells kr8s what a DaskCluster is)
    import kr8s

    async def go() -> int:
        acted = 0
        async for cluster in kr8s.asyncio.get("daskclusters.kubernetes.dask.org", name,
                                              namespace=settings()["namespace"]):
            await act(cluster)
            acted += 1
        return acted

    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            acted = pool.submit(asyncio.run, go()).result()
    except kr8s.NotFoundError:
        acted = 0
    except Exception as exc:
        raise ClusterUnavailable(f"cannot {what} DaskCluster {name}: {type(exc).__name__}: {exc}") from exc
    if not acted:
        raise ClusterNotFound(f"the kubernetes cluster {name!r} is gone (deleted since it was listed): "
                              f"nothing to {what}")
