"""Where a job runs: the one resolution order, local clusters of threads or
processes, and the background cluster of ``bytenite-nb cluster start``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import dask
import pytest

import bytenite_nb as bn
from bytenite_nb import background_cluster, cluster
from bytenite_nb.cluster import resolve
from bytenite_nb.engine.executors import SyncExecutor, make_executor

#: nothing configured: the order's later steps are what the tests set
NO_CONFIG = {"scheduler-address": None, "bytenite-nb.cluster": None}


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "bytenite_nb.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))


def test_explicit_choices_come_first():
    with dask.config.set({"scheduler-address": "tcp://127.0.0.1:9", "bytenite-nb.cluster": "tcp://127.0.0.1:8"}):
        assert resolve(scheduler="sync") == cluster.Target("sync", None, "scheduler=")
        assert resolve(scheduler="single-threaded").kind == "sync"
        assert resolve(scheduler="tcp://10.0.0.5:8786") == cluster.Target("address", "tcp://10.0.0.5:8786", "scheduler=")
        assert resolve("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"  # an address passed as client
        local = resolve(scheduler="local", workers=3)
        assert (local.kind, local.workers, local.processes) == ("local", 3, True)
        assert resolve(workers=2) == cluster.Target("local", None, "workers=", workers=2)


def test_a_client_passed_in_is_used(client):
    target = resolve(client=client)
    assert (target.kind, target.client, target.address) == ("client", client, client.scheduler.address)
    assert cluster.client_for(target) is client


def test_then_the_default_client_then_settings_then_scheduler_address(client):
    from distributed import Client

    with dask.config.set({**NO_CONFIG, "scheduler-address": "tcp://127.0.0.1:9", "bytenite-nb.cluster": "sync"}):
        assert resolve() == cluster.Target("sync", None, "Dask config bytenite-nb.cluster")
        with Client(client.scheduler.address) as default:  # set as the default client
            target = resolve()
            assert (target.kind, target.client, target.source) == ("client", default, "the default Dask client")
            assert resolve(scheduler="sync").kind == "sync"  # explicit still wins
    with dask.config.set({**NO_CONFIG, "scheduler-address": "tcp://127.0.0.1:9"}):
        assert resolve() == cluster.Target("address", "tcp://127.0.0.1:9", "Dask config scheduler-address")
    with dask.config.set({**NO_CONFIG, "bytenite-nb.cluster": "local", "bytenite-nb.local-cluster.workers": 3}):
        target = resolve()
        assert (target.kind, target.workers) == ("local", 3)
    with dask.config.set(NO_CONFIG):
        assert resolve() == cluster.Target("local", None, "default")


def test_the_cluster_setting_reaches_the_executor(tmp_path):
    with dask.config.set({**NO_CONFIG, "bytenite-nb.cluster": "sync"}):
        assert isinstance(make_executor(), SyncExecutor)
        (tmp_path / "in.txt").write_text("a\nb\n")
        job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app="identity",
                     assembler="concat", destination=str(tmp_path / "out"),
                     params={"assembler": {"output_name": "x.txt"}})
        result = job.run()
    assert result.ok and (tmp_path / "out" / "x.txt").read_text() == "a\nb\n"


def test_an_unreachable_address_is_named():
    from bytenite_nb.exceptions import ClusterUnavailable

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ClusterUnavailable, match="tcp://127.0.0.1:9"):
            cluster.get_client("tcp://127.0.0.1:9")


def write_record(record: dict) -> None:
    os.makedirs(background_cluster.folder(), exist_ok=True)
    with open(background_cluster.record_path(), "w") as f:
        json.dump(record, f)


def test_a_recorded_background_cluster_comes_after_the_settings():
    address = "tls://127.0.0.1:9"
    write_record({"address": address, "pid": os.getpid(), "workers": 2, "tls": {"ca": "C", "cert": "C", "key": "K"}})
    with dask.config.set(NO_CONFIG):
        assert resolve() == cluster.Target("address", address, "the background cluster (bytenite-nb cluster start)")
        assert resolve(scheduler="local").kind == "local"
    with dask.config.set({**NO_CONFIG, "scheduler-address": "tcp://127.0.0.1:8"}):
        assert resolve().address == "tcp://127.0.0.1:8"
    security = background_cluster.security_for(address)
    assert security.require_encryption and security.tls_client_key == "K"
    assert background_cluster.security_for("tcp://127.0.0.1:8") is None


def test_a_stale_background_record_is_removed():
    gone = subprocess.Popen(["true"])
    gone.wait()
    write_record({"address": "tls://127.0.0.1:9", "pid": gone.pid, "workers": 2})
    with dask.config.set(NO_CONFIG):
        assert resolve().kind == "local"
    assert not os.path.exists(background_cluster.record_path())
    done = cli("cluster", "stop")
    assert done.returncode == 0 and "no background cluster runs" in done.stdout


def pid_job(tmp_path, app) -> bn.Job:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "in.txt").write_text("".join(f"line {i}\n" for i in range(4)))
    return bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app=app, assembler="concat",
                  destination=str(tmp_path / "out"),
                  params={"partitioner": {"lines_per_chunk": 1}, "assembler": {"output_name": "pids.txt"}})


PPID_COMMAND = [sys.executable, "-c",
                "import os; open(os.path.join(os.environ['TASK_RESULTS_DIR'], 'p'), 'w').write(f'{os.getppid()}\\n')"]


def test_a_local_cluster_is_threads_for_process_apps_and_processes_for_python_apps(tmp_path):
    # A command app's tasks only wait for its processes: threads of this process run them.
    try:
        pid_job(tmp_path, {"command": PPID_COMMAND}).run(scheduler="local", workers=2)
        assert set((tmp_path / "out" / "pids.txt").read_text().split()) == {str(os.getpid())}
        threads = cluster.local_client(2, processes=False)
        assert list(threads.nthreads().values()) == [2]
        # A Python app runs in the workers' own Python: worker processes.
        job = pid_job(tmp_path / "py", {"python": "tests.apps_for_tests:process_id"})
        job.run(scheduler="local", workers=2)
        pids = set((tmp_path / "py" / "out" / "pids.txt").read_text().split())
        assert pids and str(os.getpid()) not in pids
        assert pids <= {str(p) for p in cluster.local_client(2).run(os.getpid).values()}
    finally:
        cluster.close_local()


def test_the_background_cluster_is_started_reused_and_stopped(tmp_path):
    status = cli("cluster", "status")
    assert status.returncode == 1 and "no background cluster runs" in status.stdout
    started = cli("cluster", "start", "--workers", "1", "--idle-timeout", "10 minutes")
    try:
        assert started.returncode == 0, started.stderr
        assert "background cluster started: tls://127.0.0.1:" in started.stdout
        record = background_cluster.running()
        assert record is not None and record["workers"] == 1 and record["idle_timeout"] == "10 minutes"
        # The record holds the TLS key: its owner's alone.
        assert stat.S_IMODE(os.stat(background_cluster.record_path()).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(background_cluster.folder()).st_mode) == 0o700
        again = cli("cluster", "start")
        assert again.returncode == 0 and f"already running: {record['address']}" in again.stdout
        shown = json.loads(cli("cluster", "status", "--json").stdout)
        assert shown["background"]["address"] == shown["jobs_run_on"]["address"] == record["address"]
        assert "tls" not in shown["background"]

        # A CLI run with nothing else configured runs on it.
        job = pid_job(tmp_path, {"command": PPID_COMMAND})
        job.save(tmp_path / "job.json")
        ran = cli("run", tmp_path / "job.json")
        assert ran.returncode == 0, ran.stderr
        from distributed import Client

        with Client(record["address"], security=background_cluster.security_for(record["address"]),
                    set_as_default=False) as check:
            workers = {str(pid) for pid in check.run(os.getpid).values()}
        assert set((tmp_path / "out" / "pids.txt").read_text().split()) <= workers
        # Without its certificate, nobody gets in.
        with pytest.raises(Exception):
            Client(record["address"], timeout=3, set_as_default=False)
    finally:
        stopped = cli("cluster", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not os.path.exists(background_cluster.record_path())
    assert not background_cluster._alive(record["pid"])
    assert cli("cluster", "status").returncode == 1


def test_an_idle_background_cluster_stops_by_itself():
    record = background_cluster.start(workers=1, idle_timeout="1s")
    try:
        deadline = time.monotonic() + 60
        while background_cluster._alive(record["pid"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not background_cluster._alive(record["pid"]), "still running long after its idle timeout"
        assert background_cluster.running() is None
        assert "idle timeout" in open(background_cluster.log_path()).read()
    finally:
        background_cluster.stop()


def test_a_bad_idle_timeout_is_refused():
    done = cli("cluster", "start", "--idle-timeout", "soon")
    assert done.returncode == 2 and "--idle-timeout" in done.stderr and "'soon'" in done.stderr
    assert background_cluster.running() is None
