"""Running jobs on a real LocalCluster: results, failures, retries, timeouts,
cancel, resume (also after the runner is killed with SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import bytenite_nb as bn
from bytenite_nb import store as st
from bytenite_nb.engine.staging import Staging
from tests.helpers import crc32c


def make_app(folder, body: str, name: str = "app.py") -> list[str]:
    """A process app following the runtime contract; returns its command."""
    path = folder / name
    path.write_text(textwrap.dedent("""\
        import json, os, sys, time
        task_dir = os.environ["TASK_DIR"]
        results = os.environ["TASK_RESULTS_DIR"]
        params = json.loads(os.environ["APP_PARAMS"])
        n = int(os.environ["CHUNK_NUMBER"])
        data = open(os.path.join(task_dir, "data.bin"), "rb").read()
        """) + textwrap.dedent(body))
    return [sys.executable, str(path)]


def lines_job(tmp_path, text_file, app, **kw):
    params = kw.pop("params", {"partitioner": {"lines_per_chunk": 50}})
    return bn.Job(source=str(text_file), partitioner="split-lines", app=app, assembler=kw.pop("assembler", "concat"),
                  destination=str(tmp_path / "out"), params=params, **kw)


def tree(folder) -> dict[str, bytes]:
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


def wait_until(predicate, timeout=240.0, step=0.1):
    """Wait for a condition; the ceiling is only there so a broken run ends, never a speed check."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    raise AssertionError("condition not reached")


def test_command_app_end_to_end(client, tmp_path, text_file):
    cmd = make_app(tmp_path, """
        open(os.path.join(results, "upper.txt"), "wb").write(data.upper())
    """)
    job = lines_job(tmp_path, text_file, {"command": cmd}, name="upper")
    result = job.run(client=client)
    assert result.ok and result.n_chunks == 10
    out = tmp_path / "out"
    assert (out / "output.txt").read_bytes() == text_file.read_bytes().upper()
    manifest = json.loads((out / "_SUCCESS").read_text())
    assert manifest["jobId"] == result.job_id
    assert manifest["chunkCount"] == 10
    (entry,) = manifest["files"]
    assert entry["name"] == "output.txt"
    assert entry["size"] == text_file.stat().st_size
    assert entry["crc32c"] == crc32c((out / "output.txt").read_bytes())
    assert result.outputs == manifest["files"]
    # recorded: state, chunks, attempts
    record = st.default_store().get_job(result.job_id)
    assert record["state"] == st.COMPLETE and record["n_chunks"] == 10
    assert record["progress"]["done"] == 10
    assert all(c["attempts"] == 1 for c in st.default_store().chunks(result.job_id))
    # staging is cleaned up after success
    assert not os.path.exists(Staging.of(job.resolve(), result.job_id).path)


def shout(chunk_path, results_dir, params):
    return open(chunk_path, "rb").read().upper() + params.get("suffix", "").encode()


def test_python_function_app_and_events(client, tmp_path, text_file):
    events = []
    job = lines_job(tmp_path, text_file, shout, params={"partitioner": {"lines_per_chunk": 100},
                                                         "app": {"suffix": "#"}})
    handle = job.submit(client=client, progress=events.append)
    result = handle.result()
    expected = b"".join(
        chunk.upper() + b"#" for chunk in
        [b"".join(text_file.read_bytes().splitlines(True)[i:i + 100]) for i in range(0, 500, 100)])
    assert (tmp_path / "out" / "output.bin").read_bytes() == expected
    states = [e["state"] for e in events if e["type"] == "state"]
    assert states == ["PARTITIONING", "RUNNING", "ASSEMBLING", "COMPLETE"]
    assert sum(1 for e in events if e["type"] == "chunk" and e["state"] == "DONE") == 5
    assert handle.progress.done == 5 and handle.status == "COMPLETE"
    # the same events are in the store, for other processes
    stored = st.default_store().events(job_id=result.job_id)
    assert [e["data"]["state"] for e in stored if e["type"] == "state"] == ["NEW"] + states


def test_flaky_app_is_retried(client, tmp_path, text_file):
    cmd = make_app(tmp_path, f"""
        marker = os.path.join({str(tmp_path)!r}, f"tried-{{n}}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            sys.stderr.write("transient failure\\n")
            sys.exit(1)
        open(os.path.join(results, "out.txt"), "wb").write(data)
    """)
    job = lines_job(tmp_path, text_file, {"command": cmd}, config={"retryBackoff": 0.05})
    result = job.run(client=client)
    assert (tmp_path / "out" / "output.txt").read_bytes() == text_file.read_bytes()
    assert [c["attempts"] for c in result.chunks] == [2] * 10
    assert [c["attempts"] for c in st.default_store().chunks(result.job_id)] == [2] * 10


def test_failing_app_leaves_destination_untouched(client, tmp_path, text_file):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("from before")
    cmd = make_app(tmp_path, """
        if n == 3:
            sys.stderr.write("x" * 10000 + "\\nbad row at offset 1234\\n")
            sys.exit(7)
        open(os.path.join(results, "out.txt"), "wb").write(data)
    """)
    job = lines_job(tmp_path, text_file, {"command": cmd}, config={"maxTaskRetries": 1, "retryBackoff": 0.05})
    with pytest.raises(bn.JobFailed) as e:
        job.run(client=client)
    message = str(e.value)
    assert "1 of 10 chunk(s) failed" in message
    assert "chunk 3 (in.txt[" in message and "failed after 2 attempt(s)" in message
    assert "exited with status 7" in message
    assert "bad row at offset 1234" in message  # the tail of stderr
    assert len(message) < 12000  # a tail, not the whole of stderr
    assert tree(out) == {"keep.txt": b"from before"}
    result = e.value.result
    assert result.state == "FAILED"
    assert [c["index"] for c in result.failed_chunks] == [3]
    failed = st.default_store().chunks(result.job_id, states=["FAILED"])
    assert [(c["idx"], c["attempts"]) for c in failed] == [(3, 2)]
    assert "bad row at offset 1234" in failed[0]["error"]


def fails_on_line_150(chunk_path, results_dir, params):
    data = open(chunk_path, "rb").read()
    if b"line 150 " in data:
        raise ValueError("line 150 is bad")
    return data


def test_fail_fast_stops_the_job_with_the_failing_chunks_error(client, tmp_path, text_file):
    # Many quick chunks: results that finished beside the failure must still be
    # recorded, and the job's error must be the chunk's, not the cancel's.
    job = lines_job(tmp_path, text_file, fails_on_line_150, params={"partitioner": {"lines_per_chunk": 5}},
                    config={"failFast": True, "maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed) as e:
        job.run(client=client)
    message = str(e.value)
    assert "1 of 100 chunk(s) failed" in message and "chunk 30 (in.txt[" in message, message
    assert "line 150 is bad" in message
    result = e.value.result
    assert result.state == "FAILED" and [c["index"] for c in result.failed_chunks] == [30]
    assert sorted(c["index"] for c in result.chunks) == list(range(100))  # every chunk accounted for
    assert {c["state"] for c in result.chunks} <= {"DONE", "FAILED", "CANCELLED"}
    assert not (tmp_path / "out").exists()
    records = st.default_store().chunks(result.job_id)
    assert sum(r["state"] == "DONE" for r in records) == sum(c["state"] == "DONE" for c in result.chunks)


def explode(x):
    raise RuntimeError("task failed on the worker")


def test_results_cancelled_before_they_are_gathered_come_back_as_cancelled(client):
    # A task error reaches the runner before the finished results beside it are
    # gathered; the runner then cancels every future (fail-fast, a cancel).
    from bytenite_nb.engine.executors import DaskExecutor

    done, failing = client.submit(abs, -1, pure=False), client.submit(explode, 1, pure=False)
    wait_until(lambda: done.status == "finished" and failing.status == "error")
    batches = DaskExecutor(client).completed([done, failing])
    first = next(batches)
    assert [(f.key, type(err).__name__) for f, _, err in first] == [(failing.key, "RuntimeError")]
    client.cancel([done])
    second = next(batches)
    assert [(f.key, type(err).__name__) for f, _, err in second] == [(done.key, "CancelledError")]
    assert next(batches, None) is None


def test_hanging_app_is_killed_with_its_children(client, tmp_path, text_file):
    pids = tmp_path / "pids"
    cmd = make_app(tmp_path, f"""
        import subprocess
        child = subprocess.Popen(["sleep", "300"])
        open({str(pids)!r}, "a").write(f"{{os.getpid()}} {{child.pid}}\\n")
        time.sleep(300)
    """)
    job = bn.Job(source=str(text_file), app={"command": cmd}, destination=str(tmp_path / "out"),
                 config={"taskTimeout": 1, "maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed) as e:
        job.run(client=client)
    assert "timed out after 1s (taskTimeout)" in str(e.value)
    assert not (tmp_path / "out").exists()

    def all_gone():
        alive = []
        for line in pids.read_text().split("\n"):
            for pid in line.split():
                try:
                    os.kill(int(pid), 0)
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().split()[2] != "Z":
                            alive.append(pid)
                except (ProcessLookupError, FileNotFoundError):
                    pass
        return not alive

    wait_until(all_gone)


def test_python_app_timeout(client, tmp_path, text_file):
    job = bn.Job(source=str(text_file), app={"python": "tests.apps_for_tests:spin"},
                 destination=str(tmp_path / "out"), config={"taskTimeout": 1, "maxTaskRetries": 1,
                                                            "retryBackoff": 0.05})
    with pytest.raises(bn.JobFailed) as e:
        job.run(client=client)
    assert "spin timed out after 1s (taskTimeout)" in str(e.value)
    assert "failed after 2 attempt(s)" in str(e.value)


def test_cancel_stops_everything(client, tmp_path, text_file):
    started = tmp_path / "started"
    started.mkdir()
    cmd = make_app(tmp_path, f"""
        open(os.path.join({str(started)!r}, str(os.getpid())), "w").close()
        time.sleep(300)
    """)
    job = lines_job(tmp_path, text_file, {"command": cmd})
    handle = job.submit(client=client)
    wait_until(lambda: len(os.listdir(started)) >= 2)
    handle.cancel()
    with pytest.raises(bn.JobCancelled) as e:
        handle.result(timeout=60)
    assert "cancelled" in str(e.value)
    assert handle.status == "CANCELLED"
    assert not (tmp_path / "out").exists()
    assert st.default_store().get_job(handle.job_id)["state"] == "CANCELLED"

    def apps_gone():
        return all(not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
                   for pid in os.listdir(started))

    wait_until(apps_gone)


def test_job_timeout(client, tmp_path, text_file):
    cmd = make_app(tmp_path, "time.sleep(300)\n")
    job = lines_job(tmp_path, text_file, {"command": cmd}, config={"jobTimeout": 1.5})
    with pytest.raises(bn.JobFailed) as e:
        job.run(client=client)
    assert "timed out after 1.5s (jobTimeout)" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_test_job_runs_first_chunk_only(client, tmp_path, text_file):
    job = lines_job(tmp_path, text_file, "identity", config={"isTestJob": True})
    result = job.run(client=client)
    assert result.n_chunks == 1 and result.test_job
    first_50 = b"".join(text_file.read_bytes().splitlines(True)[:50])
    assert (tmp_path / "out" / "output.bin").read_bytes() == first_50
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["testJob"] is True


def test_complete_job_is_not_run_again_unless_forced(client, tmp_path, text_file):
    runs = tmp_path / "runs.log"
    cmd = make_app(tmp_path, f"""
        open({str(runs)!r}, "a").write(f"{{n}}\\n")
        open(os.path.join(results, "o.txt"), "wb").write(data)
    """)
    job = lines_job(tmp_path, text_file, {"command": cmd})
    first = job.run(client=client, id="once")
    assert len(runs.read_text().split()) == 10
    again = job.run(client=client, id="once")
    assert again.reused and again.ok and again.outputs == first.outputs
    assert len(runs.read_text().split()) == 10
    forced = job.run(client=client, id="once", force=True)
    assert not forced.reused and len(runs.read_text().split()) == 20


def test_rerun_after_failure_runs_only_missing_chunks(client, tmp_path, text_file):
    runs = tmp_path / "runs.log"
    flag = tmp_path / "break-chunk-6"
    flag.write_text("")
    cmd = make_app(tmp_path, f"""
        open({str(runs)!r}, "a").write(f"{{n}}\\n")
        if n == 6 and os.path.exists({str(flag)!r}):
            sys.exit(2)
        open(os.path.join(results, "o.txt"), "wb").write(data)
    """)
    job = lines_job(tmp_path, text_file, {"command": cmd}, config={"maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed):
        job.run(client=client, id="resume-me")
    assert sorted(map(int, runs.read_text().split())) == list(range(10))
    flag.unlink()
    runs.write_text("")
    result = job.run(client=client, id="resume-me")
    assert runs.read_text().split() == ["6"]
    assert result.resumed_chunks == 9
    assert (tmp_path / "out" / "output.txt").read_bytes() == text_file.read_bytes()


def test_same_id_for_another_job_is_refused(client, tmp_path, text_file):
    flag = tmp_path / "fail"
    flag.write_text("")
    cmd = make_app(tmp_path, f"sys.exit(1 if os.path.exists({str(flag)!r}) else 0)\n")
    job = lines_job(tmp_path, text_file, {"command": cmd}, config={"maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed):
        job.run(client=client, id="taken")
    other = lines_job(tmp_path, text_file, "identity")
    with pytest.raises(bn.JobFailed) as e:
        other.run(client=client, id="taken")
    assert "already belongs to a different job" in str(e.value)


def test_resume_after_runner_is_killed(tmp_path, text_file):
    """SIGKILL the CLI (and its local cluster) mid-run; the same id resumes without redoing committed chunks."""
    runs = tmp_path / "runs.log"
    cmd = make_app(tmp_path, f"""
        open({str(runs)!r}, "a").write(f"{{n}}\\n")
        time.sleep(0.3)
        open(os.path.join(results, "o.txt"), "wb").write(data)
    """)
    job = lines_job(tmp_path, text_file, {"command": cmd}, params={"partitioner": {"lines_per_chunk": 10}})
    job_file = tmp_path / "job.json"
    job.save(job_file)
    env = dict(os.environ)
    argv = [sys.executable, "-m", "bytenite_nb.cli", "run", str(job_file), "--id", "killed", "--workers", "2"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    spec = job.resolve()
    staging = Staging.open(spec.staging_url, "killed")
    try:
        wait_until(lambda: len(staging.committed()) >= 6, timeout=120)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    committed_before = staging.committed()
    assert 6 <= len(committed_before) < 50
    assert not (tmp_path / "out").exists()
    runs.write_text("")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rerun = {int(x) for x in runs.read_text().split()}
    assert not rerun & committed_before  # committed chunks were not run again
    assert rerun | committed_before == set(range(50))
    assert (tmp_path / "out" / "output.txt").read_bytes() == text_file.read_bytes()
    assert "reused from an earlier run" in done.stdout


def test_worker_dying_fails_the_chunk_clearly(client, tmp_path, text_file):
    job = bn.Job(source=str(text_file), partitioner="replicate", app={"python": "tests.apps_for_tests:die"},
                 destination=str(tmp_path / "out"), params={"partitioner": {"num_replicas": 1}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(client=client)
    assert "the workers running it died" in str(e.value)
    assert not (tmp_path / "out").exists()
    client.wait_for_workers(2, timeout=60)


def test_sync_scheduler_with_memory_filesystem(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/bnb-test/in.txt", b"a\nbb\nccc\n" * 100)
    job = bn.Job(source="memory://bnb-test/in.txt", partitioner="split-lines", app=shout, assembler="concat",
                 destination="memory://bnb-test/out", params={"partitioner": {"chunk_size": 64}})
    result = job.run(scheduler="sync")
    assert fs.cat("/bnb-test/out/output.bin") == (b"a\nbb\nccc\n" * 100).upper()
    assert result.n_chunks == len(job.plan(scheduler="sync"))
    assert json.loads(fs.cat("/bnb-test/out/_SUCCESS"))["chunkCount"] == result.n_chunks


def test_identity_hard_links_chunks_and_the_output_stays_intact(tmp_path, text_file, monkeypatch):
    # Task folders on the staging filesystem: the identity app hard-links every
    # chunk into its results; the next chunks, materialised in the same reused
    # task folder (one thread), must leave those results as they were.
    monkeypatch.setenv("BYTENITE_NB_TASK_DIR", str(tmp_path / "tasks"))
    linked = []
    real_link = os.link

    def spying_link(src, dst, *a, **kw):
        real_link(src, dst, *a, **kw)
        linked.append(dst)

    monkeypatch.setattr(os, "link", spying_link)
    job = lines_job(tmp_path, text_file, "identity", params={"partitioner": {"lines_per_chunk": 60}})
    result = job.run(scheduler="sync")
    assert result.n_chunks == 9
    assert (tmp_path / "out" / "output.bin").read_bytes() == text_file.read_bytes()
    assert sum(os.path.basename(p) == "result.bin" for p in linked) == 9


@pytest.mark.parametrize("kind", ["range", "members", "empty"])
def test_materialise_never_writes_through_a_link_to_a_result(tmp_path, kind):
    # An app may hard-link data.bin into its results; a later chunk written to the
    # same path must replace the file, not rewrite the result in place.
    from bytenite_nb.engine.chunk import materialise
    from bytenite_nb.partitioners.base import ChunkRef

    src = tmp_path / "src.txt"
    src.write_bytes(b"next chunk's bytes\n")
    dest, result = tmp_path / "data.bin", tmp_path / "result.bin"
    dest.write_bytes(b"committed result\n")
    os.link(dest, result)
    ref = {"range": ChunkRef(index=1, url=str(src), start=0, end=19),
           "members": ChunkRef(index=1, members=(str(src),), names=("src.txt",)),
           "empty": ChunkRef(index=1)}[kind]
    materialise(ref, str(dest))
    assert result.read_bytes() == b"committed result\n"
    assert dest.read_bytes() != b"committed result\n"


def test_task_folders_of_dead_processes_on_this_host_are_swept(tmp_path):
    import socket

    from bytenite_nb.engine.task_folders import sweep_task_roots

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    dead = tmp_path / f"bytenite-nb-{host}-{gone.pid}-abc123"
    alive = tmp_path / f"bytenite-nb-{host}-{os.getpid()}-def456"
    elsewhere = tmp_path / f"bytenite-nb-another-host-{gone.pid}-0a1b2c"
    for folder in (dead, alive, elsewhere):
        (folder / "task").mkdir(parents=True)
        (folder / "task" / "data.bin").write_bytes(b"x" * 1000)
    assert sweep_task_roots(str(tmp_path)) == [str(dead)]
    assert not dead.exists() and alive.exists() and elsewhere.exists()


def test_secrets_never_reach_records(client, tmp_path, text_file):
    job = bn.Job(source=str(text_file), app="identity", destination=str(tmp_path / "out"),
                 storage_options={"secret": "hunter2-very-secret", "token": "tok-123456"},
                 params={"app": {"output_name": "r.bin"}})
    result = job.run(client=client)
    store = st.default_store()
    dump = json.dumps([store.get_job(result.job_id), store.events(job_id=result.job_id)], default=str)
    assert "hunter2-very-secret" not in dump and "tok-123456" not in dump
    assert "hunter2" not in (tmp_path / "out" / "_SUCCESS").read_text()


def test_plan_returns_chunk_references(client, tmp_path, text_file):
    job = lines_job(tmp_path, text_file, "identity")
    refs = job.plan(client=client)
    assert [r.index for r in refs] == list(range(10))
    assert refs[0].start == 0 and refs[-1].end == text_file.stat().st_size
    assert all(a.end == b.start for a, b in zip(refs, refs[1:]))
    assert not (tmp_path / "out").exists()


def test_one_runner_per_job_id(client, tmp_path, text_file):
    cmd = make_app(tmp_path, "time.sleep(0.5)\nopen(os.path.join(results, 'o.txt'), 'wb').write(data)\n")
    job = lines_job(tmp_path, text_file, {"command": cmd})
    first = job.submit(client=client, id="only-one")
    wait_until(lambda: first.status == "RUNNING")
    second = job.submit(client=client, id="only-one")
    with pytest.raises(bn.JobFailed) as e:
        second.result()
    assert "job only-one is already running (process" in str(e.value)
    assert first.result().ok
    assert (tmp_path / "out" / "output.txt").read_bytes() == text_file.read_bytes()
    # once it is over, the id is free again
    assert job.run(client=client, id="only-one", force=True).ok


def test_a_stale_lock_is_taken_over(client, tmp_path, text_file):
    job = lines_job(tmp_path, text_file, "identity")
    staging = Staging.open(job.resolve().staging_url, "stale-lock")
    os.makedirs(staging.path, exist_ok=True)
    # a runner that died without cleaning up: a pid that cannot exist on this host
    with open(os.path.join(staging.path, Staging.LOCK), "w") as f:
        json.dump({"pid": 2**22 + 12345, "host": __import__("socket").gethostname(), "time": time.time()}, f)
    assert job.run(client=client, id="stale-lock").ok


def test_forced_run_starts_its_chunk_records_afresh(client, tmp_path, text_file):
    job = lines_job(tmp_path, text_file, "identity")
    job.run(client=client, id="fresh-records")
    smaller = lines_job(tmp_path, text_file, "identity", params={"partitioner": {"lines_per_chunk": 250}})
    seen = []
    handle = smaller.submit(client=client, id="fresh-records", force=True, progress=seen.append)
    handle.result()
    record = st.default_store().get_job("fresh-records")
    assert record["progress"]["total"] == 2 and record["progress"]["done"] == 2
    assert [c["idx"] for c in st.default_store().chunks("fresh-records")] == [0, 1]


def test_reuse_needs_the_same_destination(client, tmp_path, text_file):
    job = lines_job(tmp_path, text_file, "identity")
    job.run(client=client, id="where")
    elsewhere = job.copy(destination=str(tmp_path / "elsewhere"))
    result = elsewhere.run(client=client, id="where")
    assert not result.reused
    assert (tmp_path / "elsewhere" / "output.bin").read_bytes() == text_file.read_bytes()
    renamed = job.copy(params={"partitioner": {"lines_per_chunk": 50}, "assembler": {"output_name": "all.txt"}})
    assert not renamed.run(client=client, id="where").reused
    assert (tmp_path / "out" / "all.txt").exists()


def test_a_complete_run_is_reused_from_its_record_or_from_its_success_file(tmp_path, text_file, monkeypatch):
    """The first step of a run: the same job id and output, complete before, is
    not run again - known from the job store, or, when the store does not
    know it (another machine, a fresh home), from the destination's _SUCCESS.
    A test job's _SUCCESS or another job's never counts."""
    runs = tmp_path / "runs.log"
    cmd = make_app(tmp_path, f"""
        open({str(runs)!r}, "a").write(f"{{n}}\\n")
        open(os.path.join(results, "o.txt"), "wb").write(data)
    """)
    job = lines_job(tmp_path, text_file, {"command": cmd})
    ran = lambda: len(runs.read_text().split()) if runs.exists() else 0  # noqa: E731
    first = job.run(scheduler="sync", id="twice")
    assert not first.reused and ran() == 10
    from_record = job.run(scheduler="sync", id="twice")
    assert from_record.reused and from_record.outputs == first.outputs and ran() == 10

    monkeypatch.setenv("BYTENITE_NB_HOME", str(tmp_path / "another-home"))  # a store that never saw the job
    assert st.default_store().get_job("twice") is None
    from_success = job.run(scheduler="sync", id="twice")
    assert from_success.reused and from_success.n_chunks == 10 and from_success.outputs == first.outputs
    assert from_success.success_url.endswith("/out/_SUCCESS") and ran() == 10
    assert not job.run(scheduler="sync", id="another-id").reused and ran() == 20

    tested = job.copy(config={"isTestJob": True}, destination=str(tmp_path / "tested"))
    assert tested.run(scheduler="sync", id="tested").test_job and ran() == 21
    monkeypatch.setenv("BYTENITE_NB_HOME", str(tmp_path / "a-third-home"))
    full = job.copy(destination=str(tmp_path / "tested")).run(scheduler="sync", id="tested")
    assert not full.reused and full.n_chunks == 10 and ran() == 31


def test_a_handle_says_where_and_when_its_job_ran(client, tmp_path, text_file):
    handle = lines_job(tmp_path, text_file, "identity").submit(client=client)
    assert handle.cluster == {"kind": "dask", "scheduler": client.scheduler.address,
                              "dashboard": client.dashboard_link}
    assert handle.dashboard_link == client.dashboard_link
    assert handle.wait(240) and handle.done()
    # Set before the end is announced: whoever waited reads a fixed end time.
    assert handle.finished_at is not None and handle.started_at <= handle.finished_at
    assert handle.elapsed == handle.finished_at - handle.started_at
    assert handle.result().ok and sorted(handle.chunk_states) == list(range(10))


def test_cancel_while_assembling_leaves_the_destination_untouched(client, tmp_path, text_file):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("before")
    gate = tmp_path / "assembling"
    job = lines_job(tmp_path, text_file, "identity", assembler="tests.apps_for_tests:slow_concat",
                    params={"partitioner": {"lines_per_chunk": 100}, "assembler": {"gate": str(gate)}})
    handle = job.submit(client=client)
    wait_until(gate.exists)
    handle.cancel()
    with pytest.raises(bn.JobCancelled):
        handle.result()
    assert tree(out) == {"keep.txt": b"before"}
    assert handle.status == "CANCELLED"


def test_a_failed_swap_puts_the_previous_output_back(tmp_path, text_file, monkeypatch):
    """A rename failing halfway through publishing (simulated: as root no rename can be made
    to fail for real) leaves the earlier complete output exactly as it was."""
    import bytenite_nb.engine.publish as publish

    out = tmp_path / "out"
    first = bn.Job(source=str(text_file), partitioner="split-lines", app="identity", assembler="passthrough",
                   destination=str(out), params={"partitioner": {"lines_per_chunk": 100}})
    first.run(scheduler="sync")
    before = tree(out)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(publish.os, "replace", flaky_replace)
    again = first.copy(app=shout)
    with pytest.raises(bn.JobFailed) as e:
        again.run(scheduler="sync", force=True)
    assert "No space left on device" in str(e.value)
    monkeypatch.setattr(publish.os, "replace", real_replace)
    assert tree(out) == before
    assert not [p for p in os.listdir(out) if p.startswith(".bytenite-nb")]


def test_unreachable_scheduler_is_a_clear_error(tmp_path, text_file):
    from tests.conftest import free_port

    job_file = tmp_path / "job.json"
    lines_job(tmp_path, text_file, "identity").save(job_file)
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "run", str(job_file), "--scheduler",
                           f"tcp://127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_empty_source_warns_and_a_test_job_of_it_fails(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    job = bn.Job(source=str(empty), partitioner="split-lines", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"))
    result = job.run(scheduler="sync")
    assert result.ok and result.n_chunks == 0
    assert result.warnings and "made no chunk" in result.warnings[0]
    assert any(e["type"] == "warning" for e in st.default_store().events(job_id=result.job_id))
    with pytest.raises(bn.JobFailed) as e:
        job.copy(config={"isTestJob": True}, destination=str(tmp_path / "test-out")).run(scheduler="sync")
    assert "a test job has nothing to test" in str(e.value)
    assert not (tmp_path / "test-out").exists()


def test_progress_events_while_running(client, tmp_path, text_file):
    cmd = make_app(tmp_path, "time.sleep(0.4)\nopen(os.path.join(results, 'o.txt'), 'wb').write(data)\n")
    events = []
    job = lines_job(tmp_path, text_file, {"command": cmd})
    job.submit(client=client, progress=events.append).result()
    progress = [e for e in events if e["type"] == "progress"]
    assert progress, "no progress event while the chunks ran"
    for e in progress:
        assert e["total"] == 10
        assert e["pending"] + e["running"] + e["retrying"] + e["done"] + e["failed"] + e["cancelled"] == 10
        assert 0 <= e["running"] <= 2  # two workers
    assert max(e["running"] for e in progress) >= 1


def test_secrets_an_app_prints_are_masked(client, tmp_path, text_file, monkeypatch):
    monkeypatch.setenv("SERVICE_TOKEN", "tok-from-the-environment-42")
    cmd = make_app(tmp_path, """
        sys.stderr.write(f"login failed with {params['api_key']} and {os.environ['SERVICE_TOKEN']}\\n")
        sys.exit(3)
    """)
    job = bn.Job(source=str(text_file), app={"command": cmd, "env": {"SERVICE_TOKEN": "tok-from-the-environment-42"}},
                 destination=str(tmp_path / "out"), params={"app": {"api_key": "sk-live-1234567890"}},
                 config={"maxTaskRetries": 0})
    events = []
    handle = job.submit(client=client, progress=events.append)
    with pytest.raises(bn.JobFailed) as e:
        handle.result()
    message = str(e.value)
    assert "login failed with *** and ***" in message
    store = st.default_store()
    dump = json.dumps([store.get_job(handle.job_id), store.chunks(handle.job_id), store.events(job_id=handle.job_id),
                       events, handle.chunk_states], default=str)
    assert "sk-live-1234567890" not in dump + message
    assert "tok-from-the-environment-42" not in dump + message


def test_a_completed_jobs_staging_is_gone_at_once_and_its_files_deleted_after(tmp_path, monkeypatch):
    """The staging area is renamed away when the job completes and deleted in a
    thread; what a process stopped mid-deletion left is deleted by the next one."""
    import threading

    from bytenite_nb.engine import staging as staging_module

    home = tmp_path / "home"
    monkeypatch.setenv("BYTENITE_NB_HOME", str(home))
    left_over = home / "staging" / ".removing-old-job-0123abcd"
    (left_over / "chunks" / "0").mkdir(parents=True)
    (left_over / "chunks" / "0" / "result.bin").write_bytes(b"x" * 1000)
    # a job whose id holds the same words is no leftover: its staging stays
    other = home / "staging" / "nightly.removing-dupes-0123abcd"
    (other / "chunks").mkdir(parents=True)
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    threads = []
    real = staging_module.remove_in_background
    monkeypatch.setattr(staging_module, "remove_in_background", lambda path: threads.append(real(path)) or threads[-1])
    result = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app="identity", assembler="concat",
                    destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 1}}).run(
        scheduler="sync")
    assert result.ok and (tmp_path / "out" / "output.bin").read_text() == "a\nb\nc\n"
    assert not (home / "staging" / result.job_id).exists()
    assert len(threads) == 1 and isinstance(threads[0], threading.Thread)
    threads[0].join(30)
    assert sorted(os.listdir(home / "staging")) == ["nightly.removing-dupes-0123abcd"]


def test_a_process_waits_at_exit_for_the_staging_it_is_deleting(tmp_path):
    """The deletion runs in a thread; a process that ends right after still deletes it all."""
    folder = tmp_path / "staging" / "job-1"
    for i in range(200):
        (folder / "chunks" / str(i)).mkdir(parents=True)
        (folder / "chunks" / str(i) / "result.bin").write_bytes(b"x" * 50_000)
    script = ("import sys; from bytenite_nb.engine.staging import remove_in_background; "
              "remove_in_background(sys.argv[1]); print('returned')")
    done = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0 and done.stdout.strip() == "returned", done.stderr
    assert os.listdir(tmp_path / "staging") == []
