"""Faults on a real multi-process cluster: ``dask scheduler`` and ``dask worker``
processes started here, killed, frozen and restarted; the object store stopped;
staging full; the CLI killed while it publishes. Every case checks the
destination against the expected output and its ``_SUCCESS``: nothing lost,
nothing duplicated, nothing half-written.

README.md, "Guarantees under faults", lists what each case proves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import bytenite_nb as bn
from bytenite_nb.engine.staging import Staging
from tests.faults_helpers import (DaskProcesses, MotoServer, PATIENCE, check_destination, counting_app, input_text,
                                  one_paragraph_error, process_env, read_tree, run_counts, runs_of, signal_tree,
                                  wait_until)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # processes start slowly on a shared machine

LINES_PER_CHUNK = 10


@pytest.fixture
def dask_procs(tmp_path):
    procs = DaskProcesses(tmp_path / "cluster")
    yield procs
    procs.close()


def slow_job(tmp_path, data_lines: int = 120, sleep: float = 1.0, dest=None, **config) -> tuple[bn.Job, bytes]:
    """A job of ``data_lines // 10`` chunks whose app takes ``sleep`` seconds a
    chunk and counts its runs in ``tmp_path/runs.log``; returns it and the
    output it must make."""
    data = input_text(tmp_path / "in.txt", data_lines)
    job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines",
                 app={"command": counting_app(tmp_path, sleep)}, assembler="concat",
                 destination=str(dest or tmp_path / "out"),
                 params={"partitioner": {"lines_per_chunk": LINES_PER_CHUNK},
                         "app": {"runs": str(tmp_path / "runs.log"), "sleep": sleep},
                         "assembler": {"output_name": "out.txt"}},
                 config={"maxTaskRetries": 2, "retryBackoff": 0.5, **config})
    return job, data.upper()


def committed(job: bn.Job, job_id: str) -> set[int]:
    spec = job.resolve()
    return Staging.open(spec.staging_url, job_id).committed()


def cli(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bytenite_nb.cli", *args], env=env or process_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


# -- 1. a worker killed ---------------------------------------------------------------


def test_a_killed_worker_is_replaced_and_the_output_is_that_of_a_clean_run(tmp_path, dask_procs):
    """SIGKILL a worker's whole process tree (nanny, worker, the app it runs) while
    it holds chunks, start a new worker: the job completes, byte for byte as a
    clean run of the same job."""
    job, expected = slow_job(tmp_path, sleep=2.0)
    n = len(expected.splitlines()) // LINES_PER_CHUNK
    address = dask_procs.start_scheduler()
    first = dask_procs.start_worker("first", nthreads=2)
    dask_procs.wait_for_workers(1)

    handle = job.submit(scheduler=address, id="worker-killed")

    def mid_job():  # some chunks committed, and the worker's apps run others
        done = committed(job, "worker-killed")
        return len(done) >= 2 and {c for c, _, _ in runs_of(tmp_path / "runs.log")} - done

    wait_until(mid_job, what="chunks committed while the worker runs more")
    recorded_done = {i for i, c in handle.chunk_states.items() if c["state"] == "DONE"}
    dask_procs.kill(first)
    started = {c for c, _, _ in runs_of(tmp_path / "runs.log")}
    before_kill = committed(job, "worker-killed")
    assert before_kill < set(range(n)), "the kill came after the last chunk"
    assert started - before_kill, "no chunk was in flight when the worker died"
    dask_procs.start_worker("second", nthreads=2)
    result = handle.result(timeout=PATIENCE)
    assert result.ok
    out = read_tree(tmp_path / "out")
    manifest = check_destination(out, {"out.txt": expected}, "worker-killed", n)
    counts = run_counts(tmp_path / "runs.log")
    assert set(counts) == set(range(n))
    # A chunk whose outcome the runner had is never run again (a chunk committed
    # but not yet reported when its worker died may be: its first commit wins).
    assert all(counts[i] == 1 for i in recorded_done), (counts, recorded_done)
    assert all(counts[i] <= 2 for i in range(n)), counts

    # A clean run of the same job elsewhere: the very same bytes and the same manifest.
    (tmp_path / "clean").mkdir()
    clean_job, _ = slow_job(tmp_path / "clean", sleep=0.0, dest=tmp_path / "clean-out")
    clean = clean_job.run(scheduler=address, id="clean")
    clean_out = read_tree(tmp_path / "clean-out")
    clean_manifest = check_destination(clean_out, {"out.txt": expected}, "clean", n)
    assert clean.ok and clean_out["out.txt"] == out["out.txt"]
    assert [(f["name"], f["size"], f["crc32c"]) for f in manifest["files"]] == \
        [(f["name"], f["size"], f["crc32c"]) for f in clean_manifest["files"]]


# -- 2. the scheduler killed -----------------------------------------------------------


def test_a_killed_scheduler_fails_the_run_plainly_and_the_same_id_resumes(tmp_path, dask_procs):
    """SIGKILL the scheduler mid-job: the CLI fails within a minute with a
    one-paragraph message, exit status 1, and the destination untouched; the
    same id on a new scheduler and worker runs again only the chunks that were
    in flight (and those never started)."""
    job, expected = slow_job(tmp_path, sleep=1.0)
    n = len(expected.splitlines()) // LINES_PER_CHUNK
    job_file = tmp_path / "job.json"
    job.save(job_file)
    address = dask_procs.start_scheduler()
    old_worker = dask_procs.start_worker("old", nthreads=2)
    dask_procs.wait_for_workers(1)

    run = cli("run", str(job_file), "--id", "scheduler-killed", "--scheduler", address)
    wait_until(lambda: len(committed(job, "scheduler-killed")) >= 2, what="two committed chunks")
    dask_procs.kill(dask_procs.scheduler)
    killed_at = time.monotonic()
    _, stderr = run.communicate(timeout=PATIENCE)
    took = time.monotonic() - killed_at
    assert run.returncode == 1, stderr
    assert took < 60, f"the run took {took:.0f}s to notice its scheduler was gone"
    message = one_paragraph_error(stderr)
    # Nothing else on stderr but the progress lines: no log records, no traceback.
    assert all(line.startswith("[scheduler-killed]") for line in stderr.split(message)[0].splitlines() if line), stderr
    assert f"lost the connection to the Dask scheduler at {address}" in message, message
    assert "--id scheduler-killed" in message, message
    assert not (tmp_path / "out").exists()

    # The old worker finishes what it ran, or dies with it: either way, once it
    # is gone, what staging holds committed is what the next run must not redo.
    dask_procs.kill(old_worker)
    done_before = committed(job, "scheduler-killed")
    started_before = {c for c, _, _ in runs_of(tmp_path / "runs.log")}
    in_flight = started_before - done_before
    assert done_before < set(range(n))

    new_address = dask_procs.start_scheduler()
    dask_procs.start_worker("new", nthreads=2)
    dask_procs.wait_for_workers(1)
    again = cli("run", str(job_file), "--id", "scheduler-killed", "--scheduler", new_address)
    stdout, stderr = again.communicate(timeout=PATIENCE)
    assert again.returncode == 0, stderr
    assert f"{len(done_before)} reused from an earlier run" in stdout
    check_destination(read_tree(tmp_path / "out"), {"out.txt": expected}, "scheduler-killed", n)
    counts = run_counts(tmp_path / "runs.log")
    assert counts == {i: (2 if i in in_flight else 1) for i in range(n)}



def test_a_scheduler_killed_while_publishing_leaves_a_whole_output_or_none(tmp_path, dask_procs):
    """SIGKILL the scheduler while the assemble task publishes (held on its
    worker once the outputs are uploaded beside the destination): the CLI says
    the publish may still complete; whatever the orphaned worker does, the next
    run of the id on a new scheduler leaves the whole output and its _SUCCESS."""
    gate = tmp_path / "paused"
    dask_procs.env = process_env(BYTENITE_NB_PAUSE_AT=f"publish-swap:{gate}")
    job, expected = slow_job(tmp_path, sleep=0.0)
    n = len(expected.splitlines()) // LINES_PER_CHUNK
    job_file = tmp_path / "job.json"
    job.save(job_file)
    address = dask_procs.start_scheduler()
    old_worker = dask_procs.start_worker("old", nthreads=2)
    dask_procs.wait_for_workers(1)
    run = cli("run", str(job_file), "--id", "lost-publishing", "--scheduler", address)
    wait_until(gate.exists, what="the publish held")
    dask_procs.kill(dask_procs.scheduler)
    _, stderr = run.communicate(timeout=PATIENCE)
    assert run.returncode == 1, stderr
    message = one_paragraph_error(stderr)
    assert "the assembly was under way: its worker may still publish the output" in message, message
    gate.unlink()  # the orphaned worker goes on, as far as it can
    time.sleep(5)
    dask_procs.kill(old_worker)
    halfway = read_tree(tmp_path / "out") if (tmp_path / "out").exists() else {}
    if "_SUCCESS" in halfway:  # it finished: complete
        check_destination(halfway, {"out.txt": expected}, "lost-publishing", n)

    dask_procs.env = process_env()
    new_address = dask_procs.start_scheduler()
    dask_procs.start_worker("new", nthreads=2)
    dask_procs.wait_for_workers(1)
    again = cli("run", str(job_file), "--id", "lost-publishing", "--scheduler", new_address)
    _, stderr = again.communicate(timeout=PATIENCE)
    assert again.returncode == 0, stderr
    check_destination(read_tree(tmp_path / "out"), {"out.txt": expected}, "lost-publishing", n)
    assert all(count == 1 for count in run_counts(tmp_path / "runs.log").values())
    from bytenite_nb.store import default_store

    assert default_store().get_job("lost-publishing")["state"] == "COMPLETE"

# -- 3. a worker frozen -----------------------------------------------------------------


def test_a_frozen_worker_s_chunk_is_done_elsewhere_once(tmp_path, dask_procs):
    """SIGSTOP a worker's whole process tree while its app runs a chunk. A frozen
    worker enforces nothing (its taskTimeout watchdog is frozen too); the
    scheduler's worker-ttl removes it and the chunk runs on the other worker.
    The output holds every chunk once; woken up at the end, the frozen worker
    changes nothing at the destination."""
    job, expected = slow_job(tmp_path, sleep=1.0, taskTimeout=60)
    n = len(expected.splitlines()) // LINES_PER_CHUNK
    address = dask_procs.start_scheduler(DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL="10s")
    frozen = dask_procs.start_worker("frozen")
    dask_procs.start_worker("other")
    dask_procs.wait_for_workers(2)
    frozen_pid = dask_procs.worker_pids()["frozen"]

    handle = job.submit(scheduler=address, id="worker-frozen")
    held = wait_until(lambda: [c for c, _, ppid in runs_of(tmp_path / "runs.log") if ppid == frozen_pid],
                      what="a chunk run by the worker to freeze")[-1]
    signal_tree(frozen.pid, signal.SIGSTOP)
    try:
        result = handle.result(timeout=PATIENCE)
        assert result.ok
        out = read_tree(tmp_path / "out")
        check_destination(out, {"out.txt": expected}, "worker-frozen", n)
        # The held chunk was started again by the other worker.
        assert [ppid for c, _, ppid in runs_of(tmp_path / "runs.log") if c == held][-1] != frozen_pid
    finally:
        signal_tree(frozen.pid, signal.SIGCONT)
    # Awake again, it finishes its app and tries to commit a chunk of a job that is over.
    time.sleep(5)
    assert read_tree(tmp_path / "out") == out
    from fsspec.core import url_to_fs

    _, staging_root = url_to_fs(job.resolve().staging_url)
    assert not os.path.exists(os.path.join(staging_root, "worker-frozen")), "the job's staging came back"



def test_a_frozen_app_is_stopped_by_task_timeout_and_its_chunk_retried(tmp_path, dask_procs):
    """SIGSTOP only the app a worker runs (the worker stays awake): its
    ``taskTimeout`` kills the app's process group and the chunk is tried again;
    every chunk is in the output once."""
    job, expected = slow_job(tmp_path, sleep=1.0, taskTimeout=8, retryBackoff=0.1)
    n = len(expected.splitlines()) // LINES_PER_CHUNK
    address = dask_procs.start_scheduler()
    dask_procs.start_worker("worker", nthreads=2)
    dask_procs.wait_for_workers(1)
    handle = job.submit(scheduler=address, id="app-frozen")
    chunk, app_pid, _ = wait_until(lambda: runs_of(tmp_path / "runs.log"), what="an app running")[0]
    os.kill(app_pid, signal.SIGSTOP)
    result = handle.result(timeout=PATIENCE)
    assert result.ok
    check_destination(read_tree(tmp_path / "out"), {"out.txt": expected}, "app-frozen", n)
    assert run_counts(tmp_path / "runs.log")[chunk] == 2
    assert handle.chunk_states[chunk]["attempts"] == 2

# -- 6. the CLI killed while it publishes ------------------------------------------------


def passthrough_job(folder, dest, lines: int, tag: str) -> tuple[bn.Job, dict[str, bytes]]:
    """A job writing one file per chunk (``chunk_NNNN/out.txt``); returns it and what it must publish."""
    folder.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{tag} line {i:04d}\n" for i in range(lines)).encode()
    (folder / "in.txt").write_bytes(data)
    job = bn.Job(source=str(folder / "in.txt"), partitioner="split-lines",
                 app={"command": counting_app(folder, 0.0)}, assembler="passthrough", destination=str(dest),
                 params={"partitioner": {"lines_per_chunk": LINES_PER_CHUNK},
                         "app": {"runs": str(folder / "runs.log"), "sleep": 0.0}})
    rows = data.splitlines(keepends=True)
    chunks = [b"".join(rows[i:i + LINES_PER_CHUNK]).upper() for i in range(0, len(rows), LINES_PER_CHUNK)]
    return job, {f"chunk_{i:04d}/out.txt": c for i, c in enumerate(chunks)}


@pytest.mark.parametrize("point", ["publish-swap", "publish-success"])
def test_a_cli_killed_while_publishing_is_finished_by_the_next_run(tmp_path, point):
    """A destination holds a complete run of one job (three files); a second job
    (two files) is published there by a CLI that is SIGKILLed half-way through:
    before anything changed, or with its outputs moved in but no ``_SUCCESS``.
    The next run of its id finishes the publish: the destination then holds
    exactly the second job's output - the first job's third file gone - never
    a mix of both under a ``_SUCCESS``."""
    dest = tmp_path / "out"
    first, first_out = passthrough_job(tmp_path / "first", dest, 30, "first")
    second, second_out = passthrough_job(tmp_path / "second", dest, 20, "second")
    first.run(scheduler="sync", id="first")
    check_destination(read_tree(dest), first_out, "first", 3)
    job_file = tmp_path / "second.json"
    second.save(job_file)

    gate = tmp_path / "paused"
    run = cli("run", str(job_file), "--id", "second", "--scheduler", "local",
              env=process_env(BYTENITE_NB_PAUSE_AT=f"{point}:{gate}"))
    wait_until(gate.exists, what=f"the publish paused at {point}")
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(60)
    halfway = read_tree(dest)
    if point == "publish-swap":  # nothing changed yet: the first job's output, whole
        assert {k: v for k, v in halfway.items() if not k.startswith(".bytenite-nb")} == \
            {**first_out, "_SUCCESS": halfway["_SUCCESS"]}
    else:  # outputs moved, no _SUCCESS: no reader takes this for a complete output
        assert "_SUCCESS" not in halfway
        assert all(halfway[name] == data for name, data in second_out.items())

    again = cli("run", str(job_file), "--id", "second", "--scheduler", "local")
    stdout, stderr = again.communicate(timeout=PATIENCE)
    assert again.returncode == 0, stderr
    check_destination(read_tree(dest), second_out, "second", 2)
    assert run_counts(tmp_path / "second" / "runs.log") == {0: 1, 1: 1}  # the chunks were committed: not run again


# -- 5. staging full ---------------------------------------------------------------------


@pytest.fixture
def small_staging(tmp_path):
    """A 1 MiB tmpfs to stage on (mounting one needs root, or a user namespace's)."""
    folder = tmp_path / "small-staging"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        from tests.conftest import missing

        missing(f"cannot mount a small tmpfs here (mount says: {done.stderr.strip()}); a full staging "
                f"filesystem needs one (root, or a quota); a file size limit would not fill the filesystem")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("extra_kib, when", [(300, "chunk 3 ran"), (50, "assembler 'concat' wrote the output")])
def test_a_full_staging_fails_the_job_naming_the_folder(tmp_path, small_staging, dask_procs, extra_kib, when):
    """Chunk results that do not fit in staging (12 of 300 KiB in 1 MiB), or an
    assembled output that does not fit beside them (12 of 50 KiB, then 600 KiB
    more): the job fails at once (another attempt cannot make room) with an
    error naming the staging folder, and nothing reaches the destination."""
    job, _ = slow_job(tmp_path, sleep=0.0, staging=str(small_staging), maxTaskRetries=3)
    job.params["app"]["extra_bytes"] = extra_kib * 1024
    address = dask_procs.start_scheduler()
    dask_procs.start_worker("worker", nthreads=1)
    dask_procs.wait_for_workers(1)
    with pytest.raises(bn.JobFailed) as failed:
        job.run(scheduler=address, id="staging-full")
    message = str(failed.value)
    assert f"staging is full: no space left on the filesystem of {small_staging}" in message, message
    assert f"while {when}" in message, message
    assert "Traceback" not in message
    assert not (tmp_path / "out").exists()


# -- 4. the object store stopped -----------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    """moto's S3 server in a process of this test's own, with a bucket; every
    process the test starts reaches it through AWS_ENDPOINT_URL."""
    moto = MotoServer(tmp_path)
    moto.start()
    moto.fs().mkdir("bucket")
    yield moto
    moto.stop()


def store_env(moto: MotoServer, **extra: str) -> dict:
    return process_env(AWS_ENDPOINT_URL=moto.url, AWS_ENDPOINT_URL_S3=moto.url, **extra)


def objects(fs, prefix: str) -> dict[str, bytes]:
    fs.invalidate_cache()
    return {key[len(prefix):].lstrip("/"): fs.cat_file(key) for key in fs.find(prefix)}


def restart(moto: MotoServer, down_for: float) -> None:
    """Stop the store, wait, start it again on the same port. moto keeps objects
    in memory: it comes back empty, as a store that lost its data; the bucket is
    made again, as an operator would."""
    moto.stop()
    time.sleep(down_for)
    moto.start()
    moto.fs().mkdir("bucket")


def test_the_object_store_stopped_during_the_map(tmp_path, store, dask_procs):
    """Staging on S3; the store stops mid-map for a few seconds and comes back
    without its data. Commits retry through the outage; what was committed
    before it is gone, so the run either completes (nothing was lost) or fails
    plainly, writing nothing; the next run of the id completes. The output is
    whole either way."""
    job, expected = slow_job(tmp_path, sleep=1.0, staging="s3://bucket/staging", maxTaskRetries=5, retryBackoff=1.0)
    n = len(expected.splitlines()) // LINES_PER_CHUNK
    job_file = tmp_path / "job.json"
    job.save(job_file)
    env = store_env(store)
    dask_procs.env = env
    address = dask_procs.start_scheduler()
    dask_procs.start_worker("worker", nthreads=2)
    dask_procs.wait_for_workers(1)
    fs = store.fs()

    def commits() -> int:
        fs.invalidate_cache()
        try:
            return len(fs.ls("bucket/staging/store-map/commits"))
        except FileNotFoundError:
            return 0

    run = cli("run", str(job_file), "--id", "store-map", "--scheduler", address, env=env)
    wait_until(lambda: commits() >= 2, what="two chunks committed to S3 staging")
    restart(store, down_for=3)
    _, stderr = run.communicate(timeout=PATIENCE)
    if run.returncode != 0:
        assert run.returncode == 1, stderr
        message = one_paragraph_error(stderr)
        assert "gone from s3://bucket/staging/store-map (" in message, message
        assert not (tmp_path / "out").exists()
        again = cli("run", str(job_file), "--id", "store-map", "--scheduler", address, env=env)
        _, stderr = again.communicate(timeout=PATIENCE)
        assert again.returncode == 0, stderr
    check_destination(read_tree(tmp_path / "out"), {"out.txt": expected}, "store-map", n)


def test_the_object_store_stopped_during_publish(tmp_path, store, dask_procs):
    """Destination on S3. A first job's output is there; a second job's publish
    is held once its outputs are uploaded beside the destination, the store
    stops, the publish goes on: it fails plainly (exit status 1, one
    paragraph). The store comes back (empty: see ``restart``) and the next run
    of the id publishes the whole output from staging without running a chunk
    again; ``_SUCCESS`` lists exactly what is there."""
    gate = tmp_path / "paused"
    env = store_env(store, BYTENITE_NB_PAUSE_AT=f"publish-swap:{gate}")
    dask_procs.env = env
    address = dask_procs.start_scheduler()
    dask_procs.start_worker("worker", nthreads=2)
    dask_procs.wait_for_workers(1)
    fs = store.fs()
    jobs = {}
    for name, lines in (("first", 30), ("second", 20)):
        job, out = passthrough_job(tmp_path / name, "s3://bucket/out", lines, name)
        job.save(tmp_path / f"{name}.json")
        jobs[name] = out

    first = cli("run", str(tmp_path / "first.json"), "--id", "first", "--scheduler", address, env=env)
    wait_until(gate.exists, what="the first publish held")
    gate.unlink()
    _, stderr = first.communicate(timeout=PATIENCE)
    assert first.returncode == 0, stderr
    check_destination(objects(fs, "bucket/out"), jobs["first"], "first", 3)

    second = cli("run", str(tmp_path / "second.json"), "--id", "second", "--scheduler", address, env=env)
    wait_until(gate.exists, what="the second publish held")
    store.stop()
    gate.unlink()
    _, stderr = second.communicate(timeout=PATIENCE)
    assert second.returncode == 1, stderr
    message = one_paragraph_error(stderr)
    assert "cannot write to s3://bucket/out" in message, message

    restart(store, down_for=0)
    again = cli("run", str(tmp_path / "second.json"), "--id", "second", "--scheduler", address, env=env)
    wait_until(gate.exists, what="the publish of the run again held")
    gate.unlink()
    _, stderr = again.communicate(timeout=PATIENCE)
    assert again.returncode == 0, stderr
    check_destination(objects(fs, "bucket/out"), jobs["second"], "second", 2)
    assert run_counts(tmp_path / "second" / "runs.log") == {0: 1, 1: 1}


# -- 7. the Jupyter server restarted ------------------------------------------------------


GATED_APP = """\
import os, pathlib, shutil, time
gate = pathlib.Path(os.environ["GATE"])
while not gate.exists():
    time.sleep(0.1)
shutil.copy(pathlib.Path(os.environ["TASK_DIR"], "data.bin"), pathlib.Path(os.environ["TASK_RESULTS_DIR"], "out.txt"))
"""


class JupyterServer:
    """A real ``jupyter server`` process on loopback, on a BYTENITE_NB_HOME of the test's."""

    def __init__(self, folder, root, home):
        from tests.faults_helpers import free_port, wait_for_port

        self.port, self.token = free_port(), os.urandom(16).hex()
        with open(os.path.join(str(folder), f"server-{self.port}.log"), "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
                 f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
                 *(["--allow-root"] if os.geteuid() == 0 else [])],
                env=process_env(JUPYTER_TOKEN=self.token, BYTENITE_NB_HOME=str(home)),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, self.proc)

    def call(self, path: str, body: dict | None = None) -> dict:
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/bytenite-nb/{path}", method="POST" if body is not None else "GET",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def state_of(self, job_id: str) -> str | None:
        return next((j["state"] for j in self.call("jobs")["jobs"] if j["id"] == job_id), None)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # the server alone, as a crash takes it
            self.proc.wait(60)


def test_a_job_outlives_a_restart_of_the_server_that_launched_it(tmp_path, bnb_home):
    """The Jupyter server that launched a job is SIGKILLed while the job runs and a
    new one started on the same BYTENITE_NB_HOME: the job goes on, and the new
    server's jobs list (what the sidebar shows) finds it RUNNING, then COMPLETE,
    with its whole output."""
    root = tmp_path / "root"
    root.mkdir()
    data = "".join(f"row {i}\n" for i in range(100))
    (root / "in.txt").write_text(data)
    (root / "gated.py").write_text(GATED_APP)
    gate = tmp_path / "gate"
    servers = [JupyterServer(tmp_path, root, bnb_home)]
    try:
        job = {"name": "gated", "partitioner": "split-lines",
               "app": {"command": [sys.executable, "gated.py"], "env": {"GATE": str(gate)}},
               "assembler": "concat", "dataSource": "in.txt", "dataDestination": "out/",
               "params": {"partitioner": {"chunk_size": 256}, "assembler": {"output_name": "out.txt"}}}
        servers[0].call("jobs", {"job": job, "path": "gated.bnjob.json", "id": "gated", "workers": 1})
        wait_until(lambda: servers[0].state_of("gated") == "RUNNING", what="the job running")
        servers[0].kill()

        servers.append(JupyterServer(tmp_path, root, bnb_home))
        assert servers[1].state_of("gated") == "RUNNING"
        gate.write_text("open")
        wait_until(lambda: servers[1].state_of("gated") in ("COMPLETE", "FAILED", "CANCELLED"), what="the job's end")
        assert servers[1].state_of("gated") == "COMPLETE"
        detail = servers[1].call("jobs/gated")
        assert detail["state"] == "COMPLETE"
        assert (root / "out" / "out.txt").read_text() == data
        assert json.loads((root / "out" / "_SUCCESS").read_text())["jobId"] == "gated"
    finally:
        gate.write_text("open")  # never leave a job waiting
        for server in servers:
            server.kill()
