"""Container apps through a real podman: one container per chunk, the runtime
contract inside it, its limits, and every way it can go wrong.

The images are built locally (tests/container_images.py). Jobs run on a real
LocalCluster whose workers declare cpu and memory resources, as bytenite-nb's
own local cluster does.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

import bytenite_nb as bn
from bytenite_nb.apps.container import APP_UID, ContainerApp
from bytenite_nb.cluster import worker_resources
from bytenite_nb.exceptions import JobFailed, JobValidationError

from .container_images import leftover_containers, make_folder, test_images

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images():
    return test_images()


@pytest.fixture(scope="module")
def rclient(images):
    """Two workers that declare their share of the machine as resources."""
    import logging

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR, resources=worker_resources(2))
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def lines_file(tmp_path, n=200):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"line {i}\n" for i in range(n)))
    return path


def busybox_job(tmp_path, script: str, **kwargs):
    images_busybox = "localhost/bytenite-nb-test/busybox:1"
    app = {"image": images_busybox, "command": ["sh", "-c", script], **kwargs.pop("app", {})}
    cfg = {"maxTaskRetries": 0, "retryBackoff": 0, **kwargs.pop("config", {})}
    return bn.Job(source=str(lines_file(tmp_path, kwargs.pop("lines", 20))), partitioner="split-lines", app=app,
                  assembler=kwargs.pop("assembler", "concat"), destination=str(tmp_path / "out"),
                  params={"partitioner": {"lines_per_chunk": kwargs.pop("lines_per_chunk", 10)},
                          "app": kwargs.pop("params", {})},
                  config=cfg, **kwargs)


def assert_failed_cleanly(tmp_path, exc_info, *needles):
    """The job failed with an error that says why, and left nothing at the destination."""
    message = str(exc_info.value)
    for needle in needles:
        assert needle in message, message
    out = tmp_path / "out"
    assert not out.exists() or os.listdir(out) == []
    job_id = exc_info.value.result.job_id
    assert leftover_containers(job_id) == []


UPPER_APP = textwrap.dedent("""\
    import json, os
    params = json.loads(os.environ["APP_PARAMS"])
    data = open(os.path.join(os.environ["TASK_DIR"], "data.bin")).read()
    record = {"chunk": int(os.environ["CHUNK_NUMBER"]), "uid": os.getuid(), "cwd": os.getcwd(),
              "text": data.upper(), "tag": params["tag"],
              "task_files": sorted(os.listdir(os.environ["TASK_DIR"])),
              "shared_cache_writable": os.access(os.environ["SHARED_CACHE_DIR"], os.W_OK),
              "user_cache_writable": os.access(os.environ["USER_CACHE_DIR"], os.W_OK)}
    with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "record.json"), "w") as f:
        f.write(json.dumps(record) + "\\n")
""")


def test_bytenite_folder_app_runs_in_its_container_over_many_chunks(rclient, images, tmp_path):
    _, python_image = images
    folder = make_folder(tmp_path, "upper", {
        "type": "app", "platform": "docker", "entrypoint": "main.py",
        "platform_config": {"container": python_image},
        "device_requirements": {"min_cpu": 1, "min_memory": 0.25}},
        {"main.py": UPPER_APP},
        schema={"type": "object", "properties": {"tag": {"type": "string"}}, "required": ["tag"]})
    source = lines_file(tmp_path, 120)
    job = bn.Job(source=str(source), partitioner="split-lines", app={"folder": str(folder)}, assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 5},
                                                            "app": {"tag": "t1"}})
    result = job.run(client=rclient)
    assert result.n_chunks == 24
    records = [json.loads(line) for line in (tmp_path / "out" / "output.json").read_text().splitlines()]
    assert [r["chunk"] for r in records] == list(range(24))
    assert "".join(r["text"] for r in records) == source.read_text().upper()
    for r in records:
        assert r["tag"] == "t1"  # params from APP_PARAMS
        assert r["uid"] != 0  # never root
        assert r["cwd"] == "/bytenite/app"  # the entrypoint runs from the mounted app/
        assert r["task_files"] == ["data.bin"]
        assert not r["shared_cache_writable"] and r["user_cache_writable"]
    # what reaches the destination belongs to whoever ran the job, not to the app's user
    assert os.stat(tmp_path / "out" / "output.json").st_uid == os.geteuid()
    assert leftover_containers(result.job_id) == []


def test_image_app_gets_params_and_chunk_number(rclient, images, tmp_path):
    job = busybox_job(tmp_path, 'echo "$CHUNK_NUMBER $APP_PARAMS $(id -u)" > "$TASK_RESULTS_DIR/out.txt"',
                      params={"greeting": "hi"}, lines=30)
    result = job.run(client=rclient)
    lines = (tmp_path / "out" / "output.txt").read_text().splitlines()
    expected_uid = APP_UID if os.geteuid() == 0 else os.geteuid()
    assert lines == [f'{i} {{"greeting": "hi"}} {expected_uid}' for i in range(3)]
    assert leftover_containers(result.job_id) == []


def test_network_is_off_unless_the_app_asks(rclient, images, tmp_path):
    script = 'ls /sys/class/net | tr "\\n" " " > "$TASK_RESULTS_DIR/net.txt"'
    interfaces = {}
    for name, app in (("off", {}), ("on", {"network": True})):
        (tmp_path / name).mkdir()
        busybox_job(tmp_path / name, script, lines=10, app=app).run(client=rclient)
        interfaces[name] = (tmp_path / name / "out" / "output.txt").read_text().split()
    assert interfaces["off"] == ["lo"]
    assert "lo" in interfaces["on"] and len(interfaces["on"]) > 1


def test_device_requirements_limit_the_container(rclient, images, tmp_path):
    # cgroup v1 or v2, whichever the machine has
    script = ('{ cat /sys/fs/cgroup/cpu.max 2>/dev/null || '
              'echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"; '
              'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; '
              '} > "$TASK_RESULTS_DIR/limits.txt"')
    job = busybox_job(tmp_path, script, lines=10,
                      app={"device_requirements": {"min_cpu": 0.5, "min_memory": 0.3}})
    job.run(client=rclient)
    quota, period, memory = (tmp_path / "out" / "output.txt").read_text().split()
    assert int(quota) / int(period) == 0.5
    assert int(memory) == 300_000_000 // 4096 * 4096 or int(memory) == 300_000_000


def test_a_job_no_worker_can_run_fails_at_once(rclient, images, tmp_path):
    job = busybox_job(tmp_path, "true", app={"device_requirements": {"min_cpu": 64}})
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path, e, "needs cpu=64", "no worker of the cluster offers")


def test_missing_image_is_a_clear_error(rclient, images, tmp_path):
    job = busybox_job(tmp_path, "true", app={"image": "localhost/bytenite-nb-test/missing:0"})
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path, e, "image 'localhost/bytenite-nb-test/missing:0' is not on this machine",
                          "could not pull it")


def test_a_crash_is_a_clear_error_with_the_stderr_tail(rclient, images, tmp_path):
    job = busybox_job(tmp_path, 'echo "cannot parse chunk $CHUNK_NUMBER" >&2; exit 3')
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path, e, "exited with status 3", "cannot parse chunk 0", "2 of 2 chunk(s) failed")


def test_task_timeout_kills_and_removes_the_container(rclient, images, tmp_path):
    # sleep as the container's first process ignores SIGTERM: only a kill stops it
    job = busybox_job(tmp_path, "exec sleep 600", config={"taskTimeout": 1}, lines=10)
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path, e, "timed out after 1s (taskTimeout)")


@pytest.mark.parametrize("script, needle", [
    ('echo x > /etc/leak', "Read-only file system"),
    ('echo x > "$TASK_DIR/leak"', "Read-only file system"),
    ('echo x > "$SHARED_CACHE_DIR/leak"', "Read-only file system"),
    ('echo x > "$TASK_RESULTS_DIR/../leak"', "Read-only file system"),
], ids=["rootfs", "task-dir", "shared-cache", "results-parent"])
def test_writing_outside_the_results_folder_fails(rclient, images, tmp_path, script, needle):
    job = busybox_job(tmp_path, f"set -e; {script}; echo ok > $TASK_RESULTS_DIR/ok.txt")
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path, e, needle)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../etc/passwd", "/bytenite/task/data.bin"])
def test_a_symlink_out_of_the_results_folder_fails(rclient, images, tmp_path, target):
    job = busybox_job(tmp_path, f'echo ok > "$TASK_RESULTS_DIR/ok.txt"; ln -s {target} "$TASK_RESULTS_DIR/leak"')
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path, e, "contains a symlink 'leak'")


def test_megabytes_on_stdout_do_not_hurt_the_job(rclient, images, tmp_path):
    # 16 MiB of logs per chunk go to a log file, not through anyone's memory
    job = busybox_job(tmp_path, 'yes "log line" | head -c 16777216; wc -c < "$TASK_DIR/data.bin" > "$TASK_RESULTS_DIR/n.txt"')
    result = job.run(client=rclient)
    assert [int(x) for x in (tmp_path / "out" / "output.txt").read_text().split()] == [70, 80]
    assert leftover_containers(result.job_id) == []


def test_megabytes_on_stdout_and_stderr_then_a_crash_give_a_short_error(rclient, images, tmp_path):
    job = busybox_job(tmp_path, 'yes "out" | head -c 8388608; yes "noise" | head -c 8388608 >&2; '
                                'echo "the real reason" >&2; exit 1')
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path, e, "exited with status 1", "the real reason")
    assert len(str(e.value)) < 20_000  # the tail of stderr, not megabytes of it


def test_container_app_spec_is_checked_by_field(tmp_path):
    (tmp_path / "in.txt").write_text("x\n")
    job = bn.Job(source=str(tmp_path / "in.txt"), app={"image": "bad name", "command": [], "netwrk": True},
                 destination=str(tmp_path / "out"))
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert sorted(e.value.fields) == ["app.command", "app.image", "app.netwrk"]  # every problem at once
    assert 'app.netwrk: unknown field (did you mean "network"?)' in str(e.value)
    job = bn.Job(source=str(tmp_path / "in.txt"), app={"image": "bad name", "command": [],
                                                       "device_requirements": {"min_cpu": "two"}},
                 destination=str(tmp_path / "out"))
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert sorted(e.value.fields) == ["app.command", "app.device_requirements.min_cpu", "app.image"]


def test_container_app_round_trips_and_declares_resources():
    app = ContainerApp.from_spec({"image": "localhost/x:1", "command": ["run"], "network": True,
                                  "device_requirements": {"minCpu": 2, "min_memory": 1.5, "gpu": 1}})
    assert app.resources() == {"cpu": 2.0, "memory": 1.5e9, "gpu": 1.0}
    assert ContainerApp.from_spec(app.to_spec()).to_spec() == app.to_spec()
    assert app.name == "x"


def test_cli_app_new_validate_and_run_in_a_container(images, tmp_path):
    _, python_image = images
    env = dict(os.environ)

    def cli(*args, ok=True):
        proc = subprocess.run(["bytenite-nb", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc

    cli("app", "new", "counter", "--image", python_image)
    assert "valid app counter@0.1" in cli("app", "validate", "counter").stdout
    (tmp_path / "chunk.txt").write_text("one two\nthree\n")
    run = cli("app", "run", "counter", "--chunk", "chunk.txt", "--params", '{"label": "x"}', "--chunk-number", "4")
    assert "summary.json" in run.stdout
    summary = json.loads((tmp_path / "counter-results" / "summary.json").read_text())
    assert summary == {"chunk": 4, "bytes": 14, "lines": 2, "words": 3, "label": "x"}
    bad = cli("app", "run", "counter", "--chunk", "chunk.txt", "--params", '{"labl": 1}', "--out", "o2", ok=False)
    assert "params.labl: unknown field" in bad.stderr
    # a crashing app: the error and the stderr tail, exit status 1
    (tmp_path / "counter" / "app" / "main.py").write_text("import sys\nsys.exit('bad chunk')\n")
    crash = cli("app", "run", "counter", "--chunk", "chunk.txt", "--out", "o3", ok=False)
    assert crash.returncode == 1 and "exited with status 1" in crash.stderr and "bad chunk" in crash.stderr


def test_cancel_kills_and_removes_running_containers(rclient, images, tmp_path):
    job = busybox_job(tmp_path, "exec sleep 600", lines=20)
    handle = job.submit(client=rclient)
    # Wait until both chunks' containers exist, however long starting them takes.
    from bytenite_nb.apps.container import find_container_tool

    engine = find_container_tool()
    while len(engine.containers(f"bytenite-nb.job={handle.job_id}")) < 2 and not handle.done():
        handle.wait(0.2)
    handle.cancel()
    with pytest.raises(bn.JobCancelled) as e:
        handle.result()
    assert "cancelled" in str(e.value)
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []
    # A cancelled job ends at once; its workers kill and remove the containers
    # beside it (SIGTERM, then SIGKILL after a grace period, then rm -f).
    import time

    while leftover_containers(handle.job_id):
        time.sleep(0.2)


def test_engine_choice_follows_the_environment(monkeypatch, images):
    from bytenite_nb.apps.container import find_container_tool
    from bytenite_nb.exceptions import ContainerError

    monkeypatch.setenv("BYTENITE_NB_CONTAINER_ENGINE", "no-such-engine")
    with pytest.raises(ContainerError) as e:
        find_container_tool()
    assert "'no-such-engine'" in str(e.value) and "BYTENITE_NB_CONTAINER_ENGINE" in str(e.value)
    monkeypatch.setenv("BYTENITE_NB_CONTAINER_ENGINE", "podman")
    assert find_container_tool().kind == "podman"


def test_a_command_missing_from_the_image_is_told_from_an_app_that_exits_127(rclient, images, tmp_path):
    (tmp_path / "a").mkdir()
    job = busybox_job(tmp_path / "a", "unused", app={"command": ["no-such-program"]})
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path / "a", e, "the command is not in image 'localhost/bytenite-nb-test/busybox:1'")
    (tmp_path / "b").mkdir()
    job = busybox_job(tmp_path / "b", "no-such-program")  # the app's own shell says 127
    with pytest.raises(JobFailed) as e:
        job.run(client=rclient)
    assert_failed_cleanly(tmp_path / "b", e, "exited with status 127", "no-such-program: not found")
