"""Jobs on Dask Gateway clusters, against a real dask-gateway-server on loopback.

The server (its ``local`` backend: clusters are processes of this machine,
``dask scheduler`` and ``dask worker``) runs for the module; a password of a
``SimpleAuthenticator`` lets anyone in under any user name, so each test is a
user of its own and sees only its own clusters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import dask
import pytest

import bytenite_nb as bn
from bytenite_nb import gateway
from bytenite_nb.cluster import Target, resolve
from bytenite_nb.exceptions import ClusterUnavailable, GatewayRefused, JobCancelled, JobValidationError

from .conftest import missing
from .gateway_server import PASSWORD, running_gateway


@pytest.fixture(scope="module")
def gateway_server(tmp_path_factory):
    """A dask-gateway-server on loopback for the module; yields its address."""
    try:
        import dask_gateway  # noqa: F401
        import dask_gateway_server  # noqa: F401
    except ImportError:
        missing("dask-gateway and dask-gateway-server[local] are not installed (the test extra)")
    with running_gateway(str(tmp_path_factory.mktemp("gateway"))) as address:
        yield address


def gateway_settings(address: str, user: str, password: str = PASSWORD) -> dict:
    """Dask config as daskhub sets it, for ``user``. The local backend's clusters
    run on this machine and see its files (``bytenite-nb.shared-disk``), so these
    jobs keep their data in local folders; tests/test_travel.py runs Gateway jobs
    whose workers are taken to share no disk."""
    return {"gateway.address": address, "gateway.proxy-address": None, "gateway.public-address": None,
            "gateway.auth.type": "basic", "gateway.auth.kwargs": {"username": user, "password": password},
            "bytenite-nb.shared-disk": True}


def gateway_env(address: str, user: str, password: str = PASSWORD) -> dict:
    """The same settings as environment variables, for a subprocess."""
    return dict(os.environ, DASK_GATEWAY__ADDRESS=address, DASK_GATEWAY__AUTH__TYPE="basic",
                DASK_GATEWAY__AUTH__KWARGS__USERNAME=user, DASK_GATEWAY__AUTH__KWARGS__PASSWORD=password,
                DASK_BYTENITE_NB__SHARED_DISK="true")


@pytest.fixture
def user(gateway_server):
    """A user of the Gateway of its own, set in Dask config for the test."""
    name = f"user-{uuid.uuid4().hex[:8]}"
    with dask.config.set(gateway_settings(gateway_server, name)):
        yield name


def running_clusters() -> list:
    """The running (or starting) clusters of the configured user."""
    gw = gateway.gateway()
    try:
        return gw.list_clusters()
    finally:
        gw.close()


def cluster_report(name: str):
    gw = gateway.gateway()
    try:
        return gw.get_cluster(name)
    finally:
        gw.close()


def team_job(folder, chunks: int = 4, **config) -> bn.Job:
    """A job whose chunks each say the BNB_TEAM of the worker that ran them."""
    (folder / "in.txt").write_text("".join(f"line {i}\n" for i in range(chunks)))
    return bn.Job(source="in.txt", partitioner="split-lines", app="tests.apps_for_tests:worker_team",
                  assembler="concat", destination="out/", params={"partitioner": {"lines_per_chunk": 1}},
                  config=config, base_dir=str(folder))


def output_lines(folder) -> list[str]:
    return (folder / "out" / "output.txt").read_text().splitlines()


# -- naming a cluster -----------------------------------------------------------------


def test_gateway_names_resolve_everywhere():
    with dask.config.set({"scheduler-address": None, "bytenite-nb.cluster": None}):
        assert resolve(cluster="gateway") == Target("gateway", None, "cluster=")
        assert resolve(cluster="gateway:team").name == "team"
        assert resolve(scheduler="gateway:team") == Target("gateway", None, "scheduler=", name="team")
        assert resolve(cluster="sync").kind == "sync" and resolve(cluster="tcp://10.0.0.5:8786").kind == "address"
        with pytest.raises(ValueError, match="name two clusters"):
            resolve(cluster="gateway", scheduler="sync")
    with dask.config.set({"scheduler-address": None, "bytenite-nb.cluster": "gateway:shared"}):
        assert resolve() == Target("gateway", None, "Dask config bytenite-nb.cluster", name="shared")
    assert resolve(cluster="kubernetes") == Target("kubernetes", None, "cluster=")
    assert resolve(cluster="kubernetes:mine").name == "mine"


def test_a_gateway_without_an_address_is_named(tmp_path):
    pytest.importorskip("dask_gateway")
    with dask.config.set({"gateway.address": None}):
        with pytest.raises(ClusterUnavailable, match="gateway.address"):
            team_job(tmp_path).submit(cluster="gateway")


# -- a cluster made for the job --------------------------------------------------------


def test_a_cluster_made_for_a_job_runs_it_and_is_gone_after(user, tmp_path):
    with dask.config.set({"bytenite-nb.gateway.cluster-options": {"team": "green"}}):
        result = team_job(tmp_path, chunks=4, maxWorkers=2).run(cluster="gateway")
    assert output_lines(tmp_path) == ["green"] * 4  # the configured option reached the workers
    where = result.cluster
    assert (where["kind"], where["shared"]) == ("gateway", False)
    assert where["dashboard"] == f"{dask.config.get('gateway.address')}/clusters/{where['name']}/status"
    assert running_clusters() == []  # shut down before run() returned
    report = cluster_report(where["name"])
    assert report.status.name in ("STOPPING", "STOPPED")
    assert report.options["idle_timeout"] == 1800  # the backstop, from bytenite-nb.gateway.idle-timeout
    # The job's record keeps where it ran, for the widgets and the sidebar.
    from bytenite_nb.store import default_store

    assert default_store().last_event(result.job_id, "cluster")["data"] == where
    assert default_store().get_job(result.job_id)["result"]["cluster"] == where


def test_the_jobs_cluster_options_win_over_the_setting(user, tmp_path):
    with dask.config.set({"bytenite-nb.gateway.cluster-options": {"team": "green"}}):
        result = team_job(tmp_path, chunks=2, clusterOptions={"team": "blue", "idle_timeout": 60}).run(
            cluster="gateway")
    assert output_lines(tmp_path) == ["blue", "blue"]
    assert cluster_report(result.cluster["name"]).options["idle_timeout"] == 60


def test_unknown_options_and_bad_values_are_named_before_any_cluster(user, tmp_path):
    job = team_job(tmp_path, clusterOptions={"worker_cores": 9, "gpus": 1})
    with pytest.raises(JobValidationError) as caught:
        job.submit(cluster="gateway")
    assert caught.value.fields == ["config.clusterOptions.worker_cores", "config.clusterOptions.gpus"]
    message = str(caught.value)
    assert "worker_cores must be <= 2" in message and "offers no such option" in message
    assert "worker_cores (default 1), idle_timeout (default 0.0), team (default none)" in message
    assert running_clusters() == []
    with pytest.raises(JobValidationError, match="config.maxWorkers"):
        team_job(tmp_path, maxWorkers=0).submit(cluster="gateway")


def test_a_cancelled_job_leaves_no_cluster(user, tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\n")
    job = bn.Job(source="in.txt", partitioner="split-lines", app={"command": ["sleep", "120"]},
                 assembler="concat", destination="out/", params={"partitioner": {"lines_per_chunk": 1}},
                 base_dir=str(tmp_path))
    handle = job.submit(cluster="gateway")
    deadline = time.time() + 120
    while handle.progress.running == 0 and time.time() < deadline:
        assert not handle.done(), handle.result(raise_on_error=False).error
        time.sleep(0.2)
    assert handle.progress.running > 0
    name = handle.cluster["name"]
    assert [c.name for c in running_clusters()] == [name]
    handle.cancel()
    with pytest.raises(JobCancelled):
        handle.result(timeout=120)
    assert running_clusters() == []
    assert not (tmp_path / "out").exists()


def test_an_interrupted_process_leaves_no_cluster(gateway_server, tmp_path):
    """A Ctrl-C (a kernel's interrupt) during job.run cancels the job and shuts its cluster down."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    (tmp_path / "in.txt").write_text("a\n")
    script = tmp_path / "interrupted.py"
    script.write_text(textwrap.dedent("""
        import os, signal, threading, time
        import bytenite_nb as bn

        job = bn.Job(source="in.txt", app={"command": ["sleep", "120"]}, destination="out/")
        def interrupt():
            time.sleep(float(os.environ["INTERRUPT_AFTER"]))
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupt, daemon=True).start()
        job.run(cluster="gateway")
    """))
    env = gateway_env(gateway_server, user)
    env["INTERRUPT_AFTER"] = "8"
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr
    with dask.config.set(gateway_settings(gateway_server, user)):
        assert running_clusters() == []
        gw = gateway.gateway()
        try:
            assert len(gw.list_clusters(status=["stopping", "stopped"])) == 1  # there was one, shut down
        finally:
            gw.close()


# -- a shared cluster ------------------------------------------------------------------


@pytest.fixture
def shared_cluster(user):
    """A running Gateway cluster of one worker, made by the test (as a team would)."""
    gw = gateway.gateway()
    options = gw.cluster_options()
    options.team = "shared"
    cluster = gw.new_cluster(options, shutdown_on_close=False)
    gateway.closing_once(cluster.gateway)
    cluster.scale(1)
    try:
        yield cluster.name
    finally:
        gateway.disconnect_shared(cluster.name)
        gw.stop_cluster(cluster.name)
        cluster.close(shutdown=False)
        gw.close()


def test_a_shared_cluster_is_joined_by_name_and_keeps_running(shared_cluster, tmp_path):
    public = "https://hub.example.org/services/dask-gateway"  # what a browser reaches, behind JupyterHub
    with dask.config.set({"gateway.public-address": public}):
        result = team_job(tmp_path, chunks=3).run(cluster=f"gateway:{shared_cluster}")
    assert output_lines(tmp_path) == ["shared"] * 3
    assert (result.cluster["name"], result.cluster["shared"]) == (shared_cluster, True)
    assert result.cluster["dashboard"] == f"{public}/clusters/{shared_cluster}/status"
    assert [c.name for c in running_clusters()] == [shared_cluster]
    # A later job of the process reuses the connection.
    (tmp_path / "again").mkdir()
    again = team_job(tmp_path / "again", chunks=1)
    assert again.run(cluster=f"gateway:{shared_cluster}").ok
    assert [c.name for c in running_clusters()] == [shared_cluster]


def test_an_unknown_shared_cluster_is_named(shared_cluster, tmp_path):
    handle = team_job(tmp_path).submit(cluster="gateway:no-such-cluster")
    with pytest.raises(Exception) as caught:
        handle.result(timeout=60)
    assert "no running cluster named 'no-such-cluster'" in str(caught.value)
    assert shared_cluster in str(caught.value)


# -- credentials -----------------------------------------------------------------------


def test_a_gateway_that_refuses_the_credentials_says_so(gateway_server, tmp_path):
    with dask.config.set(gateway_settings(gateway_server, "mallory", password="wrong")):
        with pytest.raises(GatewayRefused) as caught:
            team_job(tmp_path).submit(cluster="gateway")
    message = str(caught.value)
    assert f"the Dask Gateway at {gateway_server} refused the credentials (401" in message
    assert "gateway.auth (type basic)" in message
    job_file = tmp_path / "job.json"
    team_job(tmp_path).save(job_file)
    done = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "run", str(job_file), "--cluster", "gateway"],
                          env=gateway_env(gateway_server, "mallory", "wrong"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: the Dask Gateway at {gateway_server} refused the credentials")
    assert "Traceback" not in done.stderr


def test_credentials_in_the_gateway_address_are_masked_in_messages(tmp_path):
    pytest.importorskip("dask_gateway")
    from bytenite_nb.reachable import list_clusters

    from .faults_helpers import free_port

    port = free_port()  # nothing listens there
    with dask.config.set(gateway_settings(f"http://ana:s3cret-pw@127.0.0.1:{port}", "ana")):
        with pytest.raises(ClusterUnavailable) as caught:
            gateway.list_clusters()
        listed = list_clusters()
        with pytest.raises(ClusterUnavailable) as submitted:
            team_job(tmp_path).submit(cluster="gateway")
    # what the sidebar's REST reply and the notebook builder show
    (error,) = [e for e in listed["errors"] if e["kind"] == "gateway"]
    for message in (str(caught.value), error["message"], str(submitted.value)):
        assert "s3cret-pw" not in message and f"the Dask Gateway at http://***@127.0.0.1:{port}" in message, message


# -- the command line ------------------------------------------------------------------


def test_the_cli_runs_on_a_gateway_and_lists_clusters(gateway_server, tmp_path):
    user = f"user-{uuid.uuid4().hex[:8]}"
    env = gateway_env(gateway_server, user)
    job_file = tmp_path / "job.json"
    team_job(tmp_path, chunks=2, clusterOptions={"team": "cli"}).save(job_file)
    done = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "run", str(job_file), "--cluster", "gateway"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "COMPLETE: 2 chunk(s)" in done.stdout and "on Dask Gateway cluster " in done.stdout
    assert output_lines(tmp_path) == ["cli", "cli"]

    with dask.config.set(gateway_settings(gateway_server, user)):
        gw = gateway.gateway()
        cluster = gw.new_cluster(shutdown_on_close=False)
        gateway.closing_once(cluster.gateway)
        try:
            cluster.scale(1)
            deadline = time.time() + 60
            while not cluster.scheduler_info.get("workers") and time.time() < deadline:
                time.sleep(0.2)
            listed = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "clusters"], env=env,
                                    capture_output=True, text=True, timeout=60)
            assert listed.returncode == 0, listed.stderr
            assert f"gateway {gateway_server}: 1 cluster(s)" in listed.stdout
            assert (f"gateway:{cluster.name}  running  1 worker(s)  dashboard "
                    f"{gateway_server}/clusters/{cluster.name}/status") in listed.stdout
            shown = json.loads(subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "clusters", "--json"],
                                              env=env, capture_output=True, text=True, timeout=60).stdout)
            assert [(c["name"], c["workers"]) for c in shown["gateway"]["clusters"]] == [(cluster.name, 1)]
            assert shown["default"]["kind"] in ("local", "address")
        finally:
            gw.stop_cluster(cluster.name)
            cluster.close(shutdown=False)
            gw.close()
