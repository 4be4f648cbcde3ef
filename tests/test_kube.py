"""Kubernetes resources for the dask-kubernetes operator, checked against the
CRD schemas dask-kubernetes ships; the in-pod run of an image app; and, when
KUBECONFIG names a real cluster with the operator, a real job on it."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import dask
import pytest
import yaml

import bytenite_nb as bn
from bytenite_nb import kube
from bytenite_nb.cluster import job_cluster, resolve

from .conftest import missing

try:
    import dask_kubernetes
    import jsonschema
except ImportError:
    dask_kubernetes = jsonschema = None


@pytest.fixture(autouse=True)
def _needs_dask_kubernetes():
    if dask_kubernetes is None:
        missing("dask-kubernetes and jsonschema are not installed (the test extra)")

CRD_DIR = (Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm" / "dask-kubernetes-operator"
           / "crds") if dask_kubernetes else None
GPU_APP = {"image": "registry.example.com/team/detect:3", "command": ["python3", "/opt/detect.py"],
           "device_requirements": {"min_cpu": 2, "min_memory": 1.5, "gpu": 1}}


def crd_schema(kind: str) -> dict:
    """The openAPIV3Schema of ``kind`` as the shipped CRD has it, read as JSON Schema:
    Kubernetes' int-or-string and preserve-unknown-fields markers turned into what they mean."""
    crd = yaml.safe_load((CRD_DIR / f"{kind.lower()}.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _as_json_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


def _as_json_schema(node):
    if isinstance(node, list):
        return [_as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("type") == "object" and "properties" in out and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)  # Kubernetes prunes unknown fields: treat them as errors
    return out


def validate(resource: dict) -> None:
    assert resource["apiVersion"] == "kubernetes.dask.org/v1"
    schema = crd_schema(resource["kind"])
    body = {k: v for k, v in resource.items() if k not in ("apiVersion", "kind", "metadata")}
    jsonschema.validate(body, schema, cls=jsonschema.Draft7Validator)
    assert kube.NAME.fullmatch(resource["metadata"]["name"])


def containers(worker_or_scheduler: dict) -> list[dict]:
    return worker_or_scheduler["spec"]["containers"]


def lines_job(tmp_path, app, **config) -> bn.Job:
    source = tmp_path / "in.txt"
    source.write_text("".join(f"line {i}\n" for i in range(40)))
    return bn.Job(name="Sales by month", source=str(source), partitioner="split-lines", app=app,
                  assembler="concat", destination=str(tmp_path / "out"), config=config,
                  params={"partitioner": {"lines_per_chunk": 10}})


def test_the_crd_check_refuses_what_the_operator_would_refuse():
    good = {"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskWorkerGroup", "metadata": {"name": "x-app"},
            "spec": {"cluster": "x", "worker": {"replicas": 1, "spec": {"containers": [
                {"name": "worker", "image": "i", "resources": {"limits": {"cpu": "2"}}}]}}}}
    validate(good)
    for bad in ({"replicas": "two"}, {"spec": {"containers": [{"image": "no-name"}]}},
                {"spec": {"containers": [{"name": "w", "resources": {"limts": {}}}]}},
                {"spec": {"containers": [{"name": "w", "resources": {"limits": {"cpu": 2}}}]}}):  # not a string
        broken = copy.deepcopy(good)
        broken["spec"]["worker"].update(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_a_command_app_job_is_one_cluster_of_the_default_group(tmp_path):
    spec = lines_job(tmp_path, {"command": ["sh", "-c", "cp $TASK_DIR/data.bin $TASK_RESULTS_DIR/"]}).resolve()
    (cluster,) = kube.cluster_resources(spec)
    validate(cluster)
    assert cluster["kind"] == "DaskCluster" and cluster["metadata"]["name"] == "bnb-sales-by-month"
    (worker,) = containers(cluster["spec"]["worker"])
    (scheduler,) = containers(cluster["spec"]["scheduler"])
    assert worker["args"][:2] == ["dask", "worker"] and scheduler["args"][:2] == ["dask", "scheduler"]
    assert "--resources" not in worker["args"] and "resources" not in worker
    assert worker["image"] == scheduler["image"] == "ghcr.io/dask/dask:latest"
    assert {"name": "EXTRA_PIP_PACKAGES", "value": "bytenite-nb"} in worker["env"]
    assert cluster["spec"]["idleTimeout"] == 1800
    assert cluster["spec"]["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == "bnb-sales-by-month"


def test_resources_carry_the_exact_user_name_and_no_guessed_one(tmp_path, monkeypatch):
    spec = lines_job(tmp_path, {"command": ["true"]}).resolve()
    monkeypatch.setenv("JUPYTERHUB_USER", "ana@example.org")
    with dask.config.set({"bytenite-nb.kubernetes.user": None}):
        (cluster,) = kube.cluster_resources(spec)
        meta = cluster["metadata"]
        assert meta["annotations"] == {kube.USER_ANNOTATION: "ana@example.org"}
        assert meta["labels"][kube.USER_LABEL] == "ana-example.org"  # for selecting only
        with dask.config.set({"bytenite-nb.kubernetes.user": "bo@example.org"}):
            assert kube.cluster_resources(spec)[0]["metadata"]["annotations"] == {kube.USER_ANNOTATION:
                                                                                  "bo@example.org"}
        monkeypatch.delenv("JUPYTERHUB_USER")
        assert kube.known_user() is None
        assert "annotations" not in kube.cluster_resources(spec)[0]["metadata"]  # the login name is not one


def test_a_gpu_image_app_gets_a_worker_group_of_its_image_with_its_resources(tmp_path):
    with dask.config.set({"bytenite-nb.kubernetes.namespace": "jobs", "bytenite-nb.kubernetes.image": "me/base:1"}):
        spec = lines_job(tmp_path, GPU_APP, maxWorkers=1).resolve()
        cluster, group = kube.cluster_resources(spec, "night-run")
    for resource in (cluster, group):
        validate(resource)
        assert resource["metadata"]["namespace"] == "jobs"
    assert group["kind"] == "DaskWorkerGroup" and group["metadata"]["name"] == "night-run-app"
    assert group["spec"]["cluster"] == "night-run"
    assert group["spec"]["worker"]["replicas"] == 1  # config.maxWorkers caps app-workers (2)
    (default,) = containers(cluster["spec"]["worker"])
    assert default["image"] == "me/base:1" and "--resources" not in default["args"]
    (worker,) = containers(group["spec"]["worker"])
    assert worker["image"] == GPU_APP["image"]
    args = worker["args"]
    assert args[:2] == ["dask", "worker"]
    assert args[args.index("--nthreads") + 1] == "1"
    declared = dict(pair.split("=") for pair in args[args.index("--resources") + 1].split(","))
    # exactly what the engine asks of a worker for each chunk
    assert {k: float(v) for k, v in declared.items()} == spec.app.resources() == \
        {"cpu": 2.0, "memory": 1.5e9, "gpu": 1.0}
    amounts = {"cpu": "2", "memory": "1500000000", "nvidia.com/gpu": "1"}
    assert worker["resources"] == {"requests": amounts, "limits": amounts}
    assert {"name": kube.WORKER_IMAGE_ENV, "value": GPU_APP["image"]} in worker["env"]
    assert not any(e["name"] == "EXTRA_PIP_PACKAGES" for e in worker["env"])  # the app image has its own Python


def test_an_image_app_without_requirements_runs_the_whole_cluster_in_its_image(tmp_path):
    app = {"image": "me/upper:1", "command": ["sh", "-c", "tr a-z A-Z < $TASK_DIR/data.bin > $TASK_RESULTS_DIR/o"]}
    (cluster,) = kube.cluster_resources(lines_job(tmp_path, app).resolve())
    validate(cluster)
    (worker,) = containers(cluster["spec"]["worker"])
    assert worker["image"] == "me/upper:1"
    assert {"name": kube.WORKER_IMAGE_ENV, "value": "me/upper:1"} in worker["env"]


def test_fractional_cpus_and_long_names(tmp_path):
    app = {**GPU_APP, "device_requirements": {"min_cpu": 0.5}}
    job = lines_job(tmp_path, app)
    job.name = "A very long job name that goes on and on, well past what Kubernetes takes " * 2
    spec = job.resolve()
    cluster, group = kube.cluster_resources(spec)
    for resource in (cluster, group):
        validate(resource)
    assert containers(group["spec"]["worker"])[0]["resources"]["limits"] == {"cpu": "500m"}
    first, second = kube.cluster_name(job.name, unique=True), kube.cluster_name(job.name, unique=True)
    assert first != second and all(kube.NAME.fullmatch(n) for n in (first, second))


def test_a_notebook_daskjob_with_params():
    job = kube.job_resource("jobs/sales.ipynb", [("month", "5"), ("region", "north east")], output="done.ipynb")
    validate(job)
    assert job["metadata"]["name"] == "bnb-sales"
    (pod,) = job["spec"]["job"]["spec"]["containers"]
    assert pod["args"] == ["papermill", "jobs/sales.ipynb", "done.ipynb", "-p", "month", "5",
                           "-p", "region", "north east"]
    cluster = job["spec"]["cluster"]["spec"]
    assert containers(cluster["worker"])[0]["args"][:2] == ["dask", "worker"]
    assert containers(cluster["scheduler"])[0]["args"][:2] == ["dask", "scheduler"]


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "bytenite_nb.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_clusters_says_when_the_kubeconfig_cluster_is_away(tmp_path):
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "away",
              "clusters": [{"name": "away", "cluster": {"server": "http://127.0.0.1:9"}}],
              "users": [{"name": "u", "user": {"token": "x"}}],
              "contexts": [{"name": "away", "context": {"cluster": "away", "user": "u", "namespace": "jobs"}}]}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    done = cli("clusters", KUBECONFIG=str(tmp_path / "kubeconfig"))
    assert done.returncode == 0, done.stderr
    assert "kubernetes: cannot list DaskCluster resources" in done.stdout and "background:" in done.stdout


def test_cli_prints_resources_that_parse(tmp_path):
    lines_job(tmp_path, GPU_APP).save(tmp_path / "job.json")
    done = cli("kube", "spec", tmp_path / "job.json", "--name", "team-run")
    assert done.returncode == 0, done.stderr
    assert "&id" not in done.stdout  # plain YAML, no anchors, for review and GitOps
    resources = list(yaml.safe_load_all(done.stdout))
    assert [r["kind"] for r in resources] == ["DaskCluster", "DaskWorkerGroup"]
    for resource in resources:
        validate(resource)
    done = cli("kube", "job", "jobs/sales.ipynb", "-p", "month", "5", "-p", "dry_run", "true")
    assert done.returncode == 0, done.stderr
    job = yaml.safe_load(done.stdout)
    validate(job)
    assert job["spec"]["job"]["spec"]["containers"][0]["args"][-6:] == ["-p", "month", "5", "-p", "dry_run", "true"]


def test_cli_errors_name_the_field(tmp_path):
    job = lines_job(tmp_path, {**GPU_APP, "device_requirements": {"min_cpu": "two"}})
    job.save(tmp_path / "job.json")
    done = cli("kube", "spec", tmp_path / "job.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "app.device_requirements.min_cpu" in done.stderr, done.stderr
    done = cli("kube", "job", "x.ipynb", "--name", "Not_A_Name")
    assert done.returncode == 2 and "--name 'Not_A_Name'" in done.stderr
    done = cli("kube", "job", "x.ipynb", "-p", "only-a-name")
    assert done.returncode == 2


def test_kubernetes_names_resolve_to_clusters_that_wait_for_the_job(tmp_path):
    spec = lines_job(tmp_path, GPU_APP).resolve()
    made = job_cluster(resolve(cluster="kubernetes"), spec=spec, max_workers=3)
    assert isinstance(made, kube.JobKubeCluster) and not made.shared and made.groups == ["default", "app"]
    shared = job_cluster(resolve(cluster="kubernetes:team"))
    assert isinstance(shared, kube.SharedKubeCluster) and shared.shared and shared.describe()["name"] == "team"
    made.release()  # nothing was made: nothing to delete, and no error
    with pytest.raises(Exception, match="deleted already"):
        made.start()


def test_an_image_app_runs_as_a_process_on_a_worker_of_its_image(tmp_path, monkeypatch):
    """What a worker pod of the app's image does: no container tool, the command in-process."""
    monkeypatch.setenv(kube.WORKER_IMAGE_ENV, "me/upper:1")
    monkeypatch.setenv("BYTENITE_NB_CONTAINER_ENGINE", "/nonexistent/podman")  # proves none is started
    app = {"image": "me/upper:1",
           "command": ["sh", "-c", "tr a-z A-Z < $TASK_DIR/data.bin > $TASK_RESULTS_DIR/out.txt"]}
    result = lines_job(tmp_path, app).run(scheduler="sync")
    assert result.n_chunks == 4
    assert (tmp_path / "out" / "output.txt").read_text() == "".join(f"LINE {i}\n" for i in range(40))
    with pytest.raises(Exception, match="needs the app's command"):
        lines_job(tmp_path, {"image": "me/upper:1"}).run(scheduler="sync", force=True)


@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG names no Kubernetes cluster")
def test_a_job_on_a_real_kubernetes_cluster(tmp_path):
    """Needs the dask-kubernetes operator there, and a source and destination every pod reaches
    (staging defaults to a prefix next to the destination)."""
    source = os.environ.get("BYTENITE_NB_KUBE_TEST_SOURCE")
    destination = os.environ.get("BYTENITE_NB_KUBE_TEST_DESTINATION")
    if not source or not destination:
        pytest.skip("BYTENITE_NB_KUBE_TEST_SOURCE (an object-store text file pods can read) and "
                    "BYTENITE_NB_KUBE_TEST_DESTINATION (an object-store prefix they can write) are not set")
    job = bn.Job(source=source, partitioner="split-lines", app={"command": ["sh", "-c",
                 "tr a-z A-Z < $TASK_DIR/data.bin > $TASK_RESULTS_DIR/out.txt"]}, assembler="concat",
                 destination=destination, params={"partitioner": {"lines_per_chunk": 100}})
    result = job.run(cluster="kubernetes", force=True)
    assert result.n_chunks >= 1
    import fsspec

    with fsspec.open(destination.rstrip("/") + "/_SUCCESS") as f:
        assert json.loads(f.read())["jobId"] == result.job_id


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    try:
        import kmock  # noqa: F401
    except ImportError:
        missing("kmock, the Kubernetes API emulator, is not installed (the test extra)")
    from .kube_emulator import running_emulator

    with running_emulator(tmp_path_factory.mktemp("kube"), operator=True) as running:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KUBECONFIG", running.kubeconfig)
            # The stand-in operator's pods are processes of this machine, which see its
            # files: these jobs keep their data in local folders.
            with dask.config.set({"bytenite-nb.shared-disk": True}):
                yield running


def test_kubecluster_creates_scales_adapts_and_deletes_our_resources_on_the_emulator(emulator, tmp_path):
    """The calls KubeCluster makes through kr8s, with the resources of a GPU job, against kmock."""
    import asyncio

    from dask_kubernetes.operator import KubeCluster
    from dask_kubernetes.operator._objects import DaskCluster

    spec = lines_job(tmp_path, GPU_APP).resolve()
    cluster_body, group_body = kube.cluster_resources(spec, kube.cluster_name(spec.name, unique=True))
    name = cluster_body["metadata"]["name"]

    async def lifecycle():
        made = await DaskCluster(cluster_body, namespace="jobs")
        await made.create()  # what KubeCluster(custom_cluster_spec=...) does first
        # KubeCluster made inside a running loop does not start: its calls run one by one here
        cluster = KubeCluster(name=name, namespace="jobs", asynchronous=True, quiet=True, shutdown_on_close=True)
        await cluster._add_worker_group(kube.APP_GROUP, custom_spec=group_body["spec"]["worker"])
        held = emulator.objects()
        assert held[("daskclusters", "jobs", name)]["spec"] == cluster_body["spec"]
        assert held[("daskworkergroups", "jobs", f"{name}-app")]["spec"] == group_body["spec"]
        await cluster._scale(3, worker_group=kube.APP_GROUP)  # JobKubeCluster.fit
        assert emulator.objects()[("daskworkergroups", "jobs", f"{name}-app")]["spec"]["worker"]["replicas"] == 3
        await cluster._adapt(minimum=1, maximum=4)
        assert emulator.objects()[("daskautoscalers", "jobs", name)]["spec"] == \
            {"cluster": name, "minimum": 1, "maximum": 4}
        await cluster._delete_worker_group(kube.APP_GROUP)
        await made.delete()  # what closing a cluster made for a job does
        KubeCluster._instances.discard(cluster)  # never started: nothing for its exit hook to close
        return emulator.objects()

    left = asyncio.run(lifecycle())
    assert ("daskclusters", "jobs", name) not in left and ("daskworkergroups", "jobs", f"{name}-app") not in left


def test_a_cluster_that_does_not_exist_is_named(emulator):
    from bytenite_nb.exceptions import ClusterUnavailable

    with pytest.raises(ClusterUnavailable, match="cannot connect to DaskCluster 'nobody-here'"):
        kube.kube_cluster_for(None, name="nobody-here")


def upper_gpu_job(tmp_path):
    app = {**GPU_APP, "command": ["sh", "-c", "tr a-z A-Z < $TASK_DIR/data.bin > $TASK_RESULTS_DIR/out.txt"]}
    return lines_job(tmp_path, app, maxWorkers=2)


def test_a_job_runs_on_a_cluster_made_for_it_and_deletes_it(emulator, tmp_path, monkeypatch):
    """cluster="kubernetes" end to end on the emulator, the stand-in operator running the specs' commands:
    chunks need gpu=1, which only the app group's workers declare; they run the app as a process
    (no container tool here), and the cluster is deleted when the job ends."""
    monkeypatch.setenv("BYTENITE_NB_CONTAINER_ENGINE", "/nonexistent/podman")
    before = set(emulator.objects())
    result = upper_gpu_job(tmp_path).run(cluster="kubernetes")
    assert result.n_chunks == 4
    assert (tmp_path / "out" / "output.txt").read_text() == "".join(f"LINE {i}\n" for i in range(40))
    made = [key for key in set(emulator.objects()) - before if key[0] == "daskclusters"]
    assert made == [], f"left behind: {made}"
    created = [k for k in emulator.handler.objects.keys() if k[0].plural == "daskclusters"]
    assert any(name.startswith("bnb-sales-by-month-") for _, _, name in created)


def test_a_job_runs_on_a_named_cluster_and_leaves_it_running(emulator, tmp_path):
    import asyncio

    from dask_kubernetes.operator._objects import DaskCluster, DaskWorkerGroup

    spec = upper_gpu_job(tmp_path).resolve()
    body, group = kube.cluster_resources(spec, "team-shared")

    async def apply():  # what kubectl apply -f does with `bytenite-nb kube spec` output
        await (await DaskCluster(body, namespace="jobs")).create()
        await (await DaskWorkerGroup(group, namespace="jobs")).create()

    asyncio.run(apply())
    from distributed import Client

    with Client(emulator_scheduler(emulator, "team-shared"), set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)  # its owner's cluster is up before jobs are sent to it
    listed = {c["name"]: c for c in kube.list_clusters()}
    dashboard = listed["team-shared"].pop("dashboard")
    assert listed["team-shared"] == {"name": "team-shared", "workers": 1, "phase": "Running",
                                     "user": kube.known_user()}
    # the operator's service has a load balancer (here on loopback): the link is the scheduler's own dashboard
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/status", dashboard), dashboard
    with urllib.request.urlopen(dashboard.replace("/status", "/health"), timeout=30) as answer:
        assert answer.read() == b"ok"
    done = cli("clusters")  # KUBECONFIG names the emulator
    assert done.returncode == 0 and "kubernetes:team-shared  Running  1 worker(s)" in done.stdout, done.stderr
    assert f"dashboard {dashboard}" in done.stdout
    result = upper_gpu_job(tmp_path).run(cluster="kubernetes:team-shared")
    assert result.n_chunks == 4
    assert ("daskclusters", "jobs", "team-shared") in emulator.objects()
    asyncio.run(_delete("team-shared"))


def emulator_scheduler(emulator, name):
    import time

    deadline = time.monotonic() + 60
    while name not in emulator.operator.schedulers and time.monotonic() < deadline:
        time.sleep(0.1)
    return emulator.operator.schedulers[name]


async def _delete(name):
    from dask_kubernetes.operator._objects import DaskCluster

    await (await DaskCluster.get(name, namespace="jobs")).delete()


def test_the_server_says_where_a_kubernetes_setting_sends_jobs():
    from bytenite_nb.server.cluster_info import cluster_target

    with dask.config.set({"scheduler-address": None, "bytenite-nb.cluster": "kubernetes:team"}):
        shared = cluster_target()
    with dask.config.set({"scheduler-address": None, "bytenite-nb.cluster": "kubernetes"}):
        made = cluster_target()
    assert shared["kind"] == made["kind"] == "kubernetes" and shared["name"] == "team"
    assert "DaskCluster team" in shared["description"] and "deleted when it ends" in made["description"]
