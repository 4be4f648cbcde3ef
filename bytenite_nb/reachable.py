"""The clusters reachable from here, by the names :func:`bytenite_nb.cluster.resolve`
takes: the Dask Gateway clusters of this user and the ``DaskCluster`` resources
of the Kubernetes namespace, with workers and dashboards, and the cluster
names a job may run on. The JupyterLab sidebar, the job editor's cluster
choice and the notebook builder all list them from here.

A Dask Gateway lists only the clusters of the user it authenticates, so each
is this user's. A ``DaskCluster`` is this user's when bytenite-nb made it for
them: its ``bytenite-nb/user`` annotation is exactly this user's name
(:func:`bytenite_nb.kube.known_user`; the label of that name is folded and
only for selecting). With no user name known (no ``JUPYTERHUB_USER``, no
``bytenite-nb.kubernetes.user``), none is. Others in the namespace are
listed, and may be run on, but are left alone.
A source that cannot be reached is said in ``errors`` (its message), never
an empty list that looks like "no clusters".

>>> [c["value"] for c in cluster_choices([], gateway_configured=False, kubernetes_configured=False)]
['local', 'sync']
"""

from __future__ import annotations

from .exceptions import ByteniteNBError
from .redact import redact_text


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

    from . import gateway, kube

    clusters: list[dict] = []
    errors: list[dict] = []
    gateway_configured = bool(dask.config.get("gateway.address", None))
    if gateway_configured:
        try:
            # yours by the Gateway's own authentication: it lists only its user's
            # clusters, and its cluster reports carry no user name to compare
            for c in gateway.list_clusters():
                clusters.append({"kind": "gateway", "name": c["name"], "target": f"gateway:{c['name']}",
                                 "workers": c["workers"], "status": c["status"], "dashboard": c["dashboard"],
                                 "yours": True})
        except ByteniteNBError as exc:
            errors.append({"kind": "gateway", "message": redact_text(str(exc))})
    kubernetes_configured = kube.reachable()
    if kubernetes_configured:
        try:
            me = kube.known_user()  # exact: folded label values of two names may be equal
            for c in kube.list_clusters():
                clusters.append({"kind": "kubernetes", "name": c["name"], "target": f"kubernetes:{c['name']}",
                                 "workers": c["workers"], "status": (c["phase"] or "unknown").lower(),
                                 "dashboard": c.get("dashboard"), "yours": me is not None and c.get("user") == me})
        except ByteniteNBError as exc:
            errors.append({"kind": "kubernetes", "message": redact_text(str(exc))})
    return {"clusters": clusters, "errors": errors,
            "choices": cluster_choices([c for c in clusters if c["status"] == "running" or c["kind"] == "kubernetes"],
                                       gateway_configured=gateway_configured,
                                       kubernetes_configured=kubernetes_configured, default=default)}
