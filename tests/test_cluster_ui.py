"""The sidebar's cluster section through the server's REST routes, against a
real dask-gateway-server on loopback (tests/gateway_server.py): Gateway
clusters listed with workers and dashboard, scaled, shut down, offered as
cluster names, and a job submitted to one by name, its chunks' workers recorded."""

from __future__ import annotations

import json
import time
import uuid

import dask
import pytest
from traitlets.config import Config

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403  (fixtures: jp_fetch, jp_serverapp, ...)

from tests.conftest import missing

from bytenite_nb import gateway
from bytenite_nb.reachable import cluster_choices
from tests.test_gateway import gateway_env, gateway_server, gateway_settings, shared_cluster  # noqa: F401
from tests.test_server import api, wait_for_job  # noqa: F401 (the authenticated REST fixture)

WAIT_SECONDS = 120  # a ceiling for clusters to start, not a performance assertion


@pytest.fixture
def jp_server_config():
    return Config({"ServerApp": {"jpserver_extensions": {"bytenite_nb.server": True}}})


@pytest.fixture
def user(gateway_server, monkeypatch):  # noqa: F811
    """A Gateway user of its own for the server (Dask config) and the job processes it starts
    (environment); ``shared_cluster`` makes its running cluster of one worker."""
    name = f"user-{uuid.uuid4().hex[:8]}"
    for key, value in gateway_env(gateway_server, name).items():
        monkeypatch.setenv(key, value)
    with dask.config.set(gateway_settings(gateway_server, name)):
        yield name


@pytest.fixture
def team_cluster(shared_cluster):  # noqa: F811
    return shared_cluster


def listed(api, name: str):  # noqa: F811
    status, body = api("GET", "clusters")
    assert status == 200, body
    return body, next((c for c in body["clusters"] if c["name"] == name), None)


def wait_listed(api, name: str, test, what: str):  # noqa: F811
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        body, cluster = listed(api, name)
        if test(cluster):
            return body, cluster
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster {name} never {what}: {json.dumps(body)}")
        time.sleep(0.5)


def test_the_users_gateway_clusters_are_listed_scaled_and_offered(api, team_cluster):  # noqa: F811
    body, cluster = wait_listed(api, team_cluster, lambda c: c is not None and c["workers"] == 1, "had a worker")
    assert cluster["kind"] == "gateway" and cluster["target"] == f"gateway:{team_cluster}"
    assert cluster["status"] == "running" and cluster["yours"] is True
    assert cluster["dashboard"].endswith(f"/clusters/{team_cluster}/status"), cluster
    assert body["errors"] == []
    values = [c["value"] for c in body["choices"]]
    assert values[:3] == ["local", "sync", "gateway"] and f"gateway:{team_cluster}" in values
    assert "kubernetes" not in values  # no Kubernetes configured here
    status, scaled = api("POST", "clusters/scale", {"kind": "gateway", "name": team_cluster, "workers": 2})
    assert status == 202 and scaled["requested"] == 2, scaled
    wait_listed(api, team_cluster, lambda c: c["workers"] == 2, "reached 2 workers")


def test_a_job_is_submitted_to_a_gateway_cluster_by_name(api, team_cluster, jp_root_dir):  # noqa: F811
    folder = jp_root_dir / "jobs"
    folder.mkdir()
    (folder / "in.txt").write_text("".join(f"{i}\n" for i in range(6)))
    job = {"name": "on-gateway", "partitioner": "split-lines", "app": "identity", "assembler": "concat",
           "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "in.txt"}},
           "dataDestination": "out/", "params": {"partitioner": {"lines_per_chunk": 1}}}
    status, started = api("POST", "jobs", {"job": job, "path": "jobs/on-gateway.bnjob.json",
                                           "cluster": f"gateway:{team_cluster}", "id": "on-gateway"})
    assert status == 201, started
    done = wait_for_job(api, "on-gateway")
    assert done["state"] == "COMPLETE", done.get("log")
    assert done["cluster"]["kind"] == "gateway" and done["cluster"]["name"] == team_cluster
    assert done["cluster"]["dashboard"].endswith(f"/clusters/{team_cluster}/status")
    status, grid = api("GET", "jobs/on-gateway/chunks")
    assert status == 200 and grid["states"] == "D" * 6
    assert -1 not in grid["workers"] and grid["workerNames"], grid
    gw = gateway.gateway()
    try:
        joined = gw.connect(team_cluster, shutdown_on_close=False)
        workers = set(joined.scheduler_info["workers"])
        joined.close(shutdown=False)
    finally:
        gw.close()
    assert set(grid["workerNames"]) <= workers, (grid["workerNames"], workers)
    # The cluster is shared: the job leaves it running.
    _, cluster = listed(api, team_cluster)
    assert cluster is not None and cluster["status"] == "running"


def test_a_cluster_is_shut_down_from_the_sidebar(api, team_cluster):  # noqa: F811
    wait_listed(api, team_cluster, lambda c: c is not None, "was listed")
    status, body = api("POST", "clusters/shutdown", {"kind": "gateway", "name": team_cluster})
    assert status == 202 and body["status"] == "stopping", body
    wait_listed(api, team_cluster, lambda c: c is None or c["status"] in ("stopping", "stopped"), "stopped")
    body, _ = listed(api, team_cluster)
    assert f"gateway:{team_cluster}" not in [c["value"] for c in body["choices"]]


@pytest.mark.parametrize("path, request_body, status, field", [
    ("clusters/scale", {"kind": "mesos", "name": "x", "workers": 1}, 400, "kind"),
    ("clusters/scale", {"kind": "gateway", "name": "x", "workers": -1}, 400, "workers"),
    ("clusters/scale", {"kind": "gateway", "name": "x", "workers": True}, 400, "workers"),
    ("clusters/shutdown", {"kind": "gateway"}, 400, "name"),
])
def test_bad_cluster_requests_name_the_field(api, user, path, request_body, status, field):  # noqa: F811
    code, body = api("POST", path, request_body)
    assert code == status and body["errors"][0]["field"] == field, body


def test_an_unknown_cluster_is_named_with_those_listed(api, team_cluster):  # noqa: F811
    code, body = api("POST", "clusters/shutdown", {"kind": "gateway", "name": "no-such-cluster"})
    assert code == 404 and "no-such-cluster" in body["message"] and team_cluster in body["message"], body


def test_a_gateway_refusing_the_credentials_is_said_not_hidden(api, gateway_server):  # noqa: F811
    with dask.config.set(gateway_settings(gateway_server, "someone", password="wrong")):
        code, body = api("GET", "clusters")
    assert code == 200 and body["clusters"] == []
    assert body["errors"][0]["kind"] == "gateway" and "refused the credentials" in body["errors"][0]["message"]


def test_the_default_setting_is_offered_first():
    choices = cluster_choices([], gateway_configured=False, kubernetes_configured=True, default="tcp://10.0.0.5:8786")
    assert [c["value"] for c in choices] == ["tcp://10.0.0.5:8786", "local", "sync", "kubernetes"]
    assert cluster_choices([], gateway_configured=False, kubernetes_configured=False, default="sync")[1]["value"] \
        == "sync"


def test_the_builder_offers_the_running_clusters_and_runs_on_one(team_cluster, tmp_path):
    from bytenite_nb import Job
    from bytenite_nb.widgets import JobBuilder

    (tmp_path / "in.txt").write_text("".join(f"{i}\n" for i in range(4)))
    job = Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app="identity", assembler="concat",
              destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 1}})
    builder = JobBuilder(job=job)
    cluster = builder.sections["Cluster"]
    builder.cluster_mode.value = "kubernetes"
    assert builder.run_kwargs == {"cluster": "kubernetes"}
    builder.cluster_mode.value = "gateway"
    assert builder.run_kwargs == {"cluster": "gateway"}
    builder.cluster_mode.value = "running"  # lists what is running
    deadline = time.monotonic() + WAIT_SECONDS
    while f"gateway:{team_cluster}" not in [v for _, v in cluster.running.options]:
        assert time.monotonic() < deadline, cluster.running_note.value
        time.sleep(0.5)
        cluster.list_running()
    cluster.running.value = f"gateway:{team_cluster}"
    assert builder.run_kwargs == {"cluster": f"gateway:{team_cluster}"}
    assert f"job.submit(cluster='gateway:{team_cluster}')" in builder.code()
    handle = builder.run()
    assert handle.result().ok
    builder.progress.join(60)
    assert f"Cluster: gateway <b>{team_cluster}</b>" in builder.progress.dashboard.value
    assert f'/clusters/{team_cluster}/status"' in builder.progress.dashboard.value
    assert builder.progress.grid.states == "DDDD" and -1 not in builder.progress.grid.workers


def test_the_builder_says_when_no_running_cluster_is_chosen(gateway_server):  # noqa: F811
    from bytenite_nb.exceptions import FieldError
    from bytenite_nb.widgets import JobBuilder

    with dask.config.set(gateway_settings(gateway_server, f"user-{uuid.uuid4().hex[:8]}")):
        builder = JobBuilder()
        builder.cluster_mode.value = "running"
    assert builder.sections["Cluster"].running.options == ()
    assert "No running Dask Gateway or Kubernetes cluster" in builder.sections["Cluster"].running_note.value
    with pytest.raises(FieldError, match="no running cluster is chosen"):
        builder.run_kwargs


# -- Kubernetes, on kmock's API emulator (no API server can run here) ---------------------


@pytest.fixture
def kube_api(tmp_path, monkeypatch):
    """kmock's Kubernetes API emulator (no operator: nothing acts on the resources),
    with the kubeconfig pointing at it, and no Gateway configured."""
    try:
        import dask_kubernetes  # noqa: F401
        import kmock  # noqa: F401
    except ImportError:
        missing("dask-kubernetes and kmock are not installed (the test extra)")
    from tests.kube_emulator import running_emulator

    with running_emulator(tmp_path) as emulator, dask.config.set({"gateway.address": None,
                                                                  "bytenite-nb.kubernetes.user": None}):
        monkeypatch.setenv("KUBECONFIG", emulator.kubeconfig)
        monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
        yield emulator


def make_dask_cluster(tmp_path, user: str | None = None) -> str:
    """A ``DaskCluster`` as bytenite-nb makes it for a job, labelled and annotated
    with ``user`` (by default this user), created on the emulator; its name."""
    import asyncio

    from dask_kubernetes.operator._objects import DaskCluster

    from bytenite_nb import Job, kube

    source = tmp_path / "in.txt"
    source.write_text("a\n")
    spec = Job(name=f"team {uuid.uuid4().hex[:6]}", source=str(source), app="identity",
               destination=str(tmp_path / "out")).resolve()
    body = kube.cluster_resources(spec)[0]
    if user is not None:
        body["metadata"]["labels"][kube.USER_LABEL] = kube.user_label(user)
        body["metadata"].setdefault("annotations", {})[kube.USER_ANNOTATION] = user

    async def create():
        made = await DaskCluster(body, namespace="jobs")
        await made.create()

    asyncio.run(create())
    return body["metadata"]["name"]


def test_kubernetes_clusters_are_listed_and_only_yours_scaled_or_deleted(api, kube_api, tmp_path,  # noqa: F811
                                                                          monkeypatch):
    from bytenite_nb import kube

    monkeypatch.setenv("JUPYTERHUB_USER", "ana@example.org")
    mine = make_dask_cluster(tmp_path)
    # a name whose label value is the same as this user's: only the exact annotation tells them apart
    theirs = make_dask_cluster(tmp_path, user="ana-example.org")
    assert kube.user_label("ana-example.org") == kube.user_label()
    status, body = api("GET", "clusters")
    assert status == 200 and body["errors"] == [], body
    listed = {c["name"]: c for c in body["clusters"]}
    assert listed[mine]["yours"] is True and listed[theirs]["yours"] is False
    assert listed[mine]["kind"] == "kubernetes" and listed[mine]["target"] == f"kubernetes:{mine}"
    # no operator here made the scheduler's service: the link is its name in the cluster's DNS
    assert listed[mine]["dashboard"] == f"http://{mine}-scheduler.jobs:{kube.DASHBOARD_PORT}/status"
    values = [c["value"] for c in body["choices"]]
    assert "kubernetes" in values and f"kubernetes:{mine}" in values and f"kubernetes:{theirs}" in values
    assert "gateway" not in values

    status, scaled = api("POST", "clusters/scale", {"kind": "kubernetes", "name": mine, "workers": 3})
    assert status == 202, scaled
    assert kube_api.objects()[("daskclusters", "jobs", mine)]["spec"]["worker"]["replicas"] == 3
    status, refused = api("POST", "clusters/scale", {"kind": "kubernetes", "name": theirs, "workers": 3})
    assert status == 403 and "not made by you" in refused["message"] and theirs in refused["message"]
    status, refused = api("POST", "clusters/shutdown", {"kind": "kubernetes", "name": theirs})
    assert status == 403
    assert ("daskclusters", "jobs", theirs) in kube_api.objects()

    status, gone = api("POST", "clusters/shutdown", {"kind": "kubernetes", "name": mine})
    assert status == 202, gone
    assert ("daskclusters", "jobs", mine) not in kube_api.objects()
    assert ("daskclusters", "jobs", theirs) in kube_api.objects()


def test_with_no_user_name_known_no_kubernetes_cluster_is_scaled_or_deleted(api, kube_api, tmp_path):  # noqa: F811
    import getpass

    # made by bytenite-nb with no JUPYTERHUB_USER: labelled with the login name, annotated with nothing
    unnamed = make_dask_cluster(tmp_path)
    # annotated with the login name, which is often the same for everyone (jovyan): not trusted either
    login = make_dask_cluster(tmp_path, user=getpass.getuser())
    status, body = api("GET", "clusters")
    assert status == 200 and body["errors"] == [], body
    listed = {c["name"]: c for c in body["clusters"]}
    assert listed[unnamed]["yours"] is False and listed[login]["yours"] is False
    for name in (unnamed, login):
        status, refused = api("POST", "clusters/scale", {"kind": "kubernetes", "name": name, "workers": 3})
        assert status == 403 and "no user name is known" in refused["message"], refused
        assert "bytenite-nb.kubernetes.user" in refused["message"] and name in refused["message"]
        status, refused = api("POST", "clusters/shutdown", {"kind": "kubernetes", "name": name})
        assert status == 403 and "no user name is known" in refused["message"], refused
        assert ("daskclusters", "jobs", name) in kube_api.objects()
        assert kube_api.objects()[("daskclusters", "jobs", name)]["spec"]["worker"]["replicas"] == 1


def test_a_kubernetes_cluster_deleted_after_it_was_listed_is_said_gone(api, kube_api, tmp_path,  # noqa: F811
                                                                       monkeypatch):
    import asyncio

    from dask_kubernetes.operator._objects import DaskCluster

    from bytenite_nb.server import clusters

    monkeypatch.setenv("JUPYTERHUB_USER", "ana@example.org")
    names = [make_dask_cluster(tmp_path), make_dask_cluster(tmp_path)]
    own = clusters._own

    async def delete(name):
        await (await DaskCluster.get(name, namespace="jobs")).delete()

    def own_then_deleted(kind, name):  # its owner deletes it between the check and the request
        found = own(kind, name)
        asyncio.run(delete(name))
        return found

    monkeypatch.setattr(clusters, "_own", own_then_deleted)
    status, gone = api("POST", "clusters/scale", {"kind": "kubernetes", "name": names[0], "workers": 3})
    assert status == 404 and "is gone" in gone["message"] and names[0] in gone["message"], gone
    status, gone = api("POST", "clusters/shutdown", {"kind": "kubernetes", "name": names[1]})
    assert status == 404 and "is gone" in gone["message"] and names[1] in gone["message"], gone
    assert not {("daskclusters", "jobs", name) for name in names} & set(kube_api.objects())
