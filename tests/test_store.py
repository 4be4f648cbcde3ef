"""The job store: states and timestamps, redaction, chunk batches, progress,
events and ``follow``, and several processes using one store at once."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import bytenite_nb as bn
from bytenite_nb import store as st
from bytenite_nb.ids import new_job_id
from bytenite_nb.states import CATEGORIES, Progress
from bytenite_nb.store import JobStore, default_store


@pytest.fixture
def store(tmp_path):
    return JobStore(str(tmp_path / "jobs.sqlite"))


def everything_stored(path: str) -> str:
    """Every byte the store holds: its SQL dump and its files (database and write-ahead log)."""
    conn = sqlite3.connect(path)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    raw = b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))
    return dump + raw.decode("latin-1")


def wait_until(predicate, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s")
        time.sleep(0.02)


# -- jobs: states and timestamps ----------------------------------------------------------


def test_job_states_and_timestamps(store):
    store.create_job("j1", "demo", {"app": "identity"})
    job = store.get_job("j1")
    assert job["state"] == "NEW" and job["name"] == "demo" and job["kind"] == "job"
    assert job["spec"] == {"app": "identity"}
    assert job["created"] == job["updated"] and job["started"] is None and job["finished"] is None
    assert job["duration"] is None and job["runs"] == 1 and job["pid"] == os.getpid()

    store.set_state("j1", st.PARTITIONING)
    started = store.get_job("j1")["started"]
    assert started is not None and started >= job["created"]
    store.set_state("j1", st.RUNNING, n_chunks=4)
    running = store.get_job("j1")
    assert running["started"] == started, "started is the first start, not the latest state"
    assert running["n_chunks"] == 4 and running["finished"] is None
    store.set_state("j1", st.ASSEMBLING)
    store.set_state("j1", st.COMPLETE, result={"outputs": [{"name": "out.txt"}]})
    done = store.get_job("j1")
    assert done["state"] == "COMPLETE" and done["finished"] >= started
    assert done["duration"] == pytest.approx(done["finished"] - started)
    assert done["result"] == {"outputs": [{"name": "out.txt"}]}
    states = [e["data"]["state"] for e in store.events(job_id="j1") if e["type"] == "state"]
    assert states == ["NEW", "PARTITIONING", "RUNNING", "ASSEMBLING", "COMPLETE"]


def test_failed_job_keeps_its_error(store):
    store.create_job("j", "demo", {})
    store.set_state("j", st.RUNNING)
    store.set_state("j", st.FAILED, error="2 of 4 chunk(s) failed")
    job = store.get_job("j")
    assert (job["state"], job["error"]) == ("FAILED", "2 of 4 chunk(s) failed")
    assert job["finished"] is not None
    last = store.events(job_id="j")[-1]
    assert last["data"] == {"state": "FAILED", "error": "2 of 4 chunk(s) failed"}


def test_a_new_run_of_an_id_resets_the_run_and_keeps_the_chunks_until_planned(store):
    store.create_job("j", "first", {"v": 1})
    store.set_chunks("j", [{"index": i, "size": 10} for i in range(3)])
    store.update_chunks("j", [{"index": 0, "state": st.DONE, "attempts": 1}])
    store.set_state("j", st.RUNNING)
    store.set_state("j", st.FAILED, error="boom")
    created = store.get_job("j")["created"]
    store.create_job("j", "second", {"v": 2})
    job = store.get_job("j")
    assert (job["name"], job["spec"], job["state"], job["runs"]) == ("second", {"v": 2}, "NEW", 2)
    assert job["created"] == created
    assert job["started"] is job["finished"] is job["error"] is job["result"] is None
    assert [c["state"] for c in store.chunks("j")] == ["DONE", "PENDING", "PENDING"]


def test_list_jobs_newest_first_with_filters_and_progress(store):
    for name in ("a", "b", "c"):
        store.create_job(name, name, {}, kind="notebook" if name == "b" else "job")
    store.set_chunks("a", [{"index": 0}, {"index": 1}])
    store.update_chunks("a", [{"index": 0, "state": st.DONE}])
    store.set_state("c", st.COMPLETE)
    assert [j["id"] for j in store.list_jobs()] == ["c", "a", "b"]  # last updated first
    assert [j["id"] for j in store.list_jobs(limit=2)] == ["c", "a"]
    assert [j["id"] for j in store.list_jobs(states=["NEW"])] == ["a", "b"]
    assert [j["id"] for j in store.list_jobs(kind="notebook")] == ["b"]
    a = next(j for j in store.list_jobs() if j["id"] == "a")
    assert (a["progress"]["done"], a["progress"]["pending"], a["progress"]["total"]) == (1, 1, 2)


def test_delete_job_removes_its_chunks_and_events(store):
    store.create_job("gone", "x", {})
    store.set_chunks("gone", [{"index": 0}])
    store.create_job("kept", "y", {})
    store.delete_job("gone")
    assert store.get_job("gone") is None
    assert store.chunks("gone") == [] and store.events(job_id="gone") == []
    assert store.get_job("kept")["state"] == "NEW" and store.events(job_id="kept")


def test_missing_job_is_none(store):
    assert store.get_job("nope") is None


def test_default_store_lives_in_bytenite_nb_home(bnb_home):
    s = default_store()
    assert s.path == str(bnb_home / "jobs.sqlite")
    s.create_job("here", "x", {})
    assert JobStore(str(bnb_home / "jobs.sqlite")).get_job("here")["state"] == "NEW"


def test_memory_store():
    s = JobStore(":memory:")
    s.create_job("m", "x", {"a": 1})
    s.set_chunks("m", [{"index": 0}])
    assert s.get_job("m")["progress"]["total"] == 1


def test_a_write_that_cannot_start_does_not_block_other_threads(tmp_path):
    # The store's folder disappears (a deleted home): every write fails, none hangs.
    s = JobStore(str(tmp_path / "gone" / "jobs.sqlite"))
    shutil.rmtree(tmp_path / "gone")
    outcomes: list[str] = []

    def write():
        try:
            s.create_job("x", "x", {})
            outcomes.append("written")
        except sqlite3.OperationalError as exc:
            outcomes.append(str(exc))

    for _ in range(2):  # each in a new thread: a fresh connection attempt each time
        t = threading.Thread(target=write, daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive(), "a failed write left the store locked for every other thread"
    assert outcomes == ["unable to open database file"] * 2


# -- redaction ---------------------------------------------------------------------------

SECRETS = ["AKIAEXAMPLEKEY123", "s3cr3t-value", "tok-abc-123", "hunter2pw", "azkey999",
           "pw-in-url-777", "sas-sig-888", "bearer-xyz-42", "sess-tok-5"]


def secret_spec() -> dict:
    return {
        "dataSource": {"dataSourceDescriptor": "url",
                       "params": {"url": "https://alice:pw-in-url-777@example.com/data.csv"}},
        "dataDestination": "https://example.com/out?sv=2024&sig=sas-sig-888&se=2030",
        "storageOptions": {"key": "AKIAEXAMPLEKEY123", "secret": "s3cr3t-value",
                           "endpoint_url": "http://127.0.0.1:9000",
                           "client_kwargs": {"aws_session_token": "sess-tok-5"}},
        "params": {"app": {"token": "tok-abc-123", "password": "hunter2pw", "threshold": 3,
                           "headers": [{"Authorization": "bearer-xyz-42"}]},
                   "assembler": {"connection_string": "DefaultEndpointsProtocol=https;AccountKey=azkey999"}},
    }


def test_secrets_in_specs_errors_and_events_are_never_stored(store):
    store.create_job("j", "secretive", secret_spec())
    store.set_chunks("j", [{"index": 0}, {"index": 1}])
    store.update_chunks("j", [{"index": 0, "state": st.CHUNK_FAILED,
                               "error": "GET https://bob:hunter2pw@example.com/x failed"}])
    store.add_event("j", "note", {"password": "hunter2pw", "url": "s3://AKIAEXAMPLEKEY123:s3cr3t-value@bucket/k"})
    store.set_state("j", st.FAILED, error="cannot read https://example.com/x?token=tok-abc-123&sig=sas-sig-888",
                    result={"secret": "s3cr3t-value", "ok": True})
    stored = everything_stored(store.path)
    leaked = [s for s in SECRETS if s in stored]
    assert leaked == []

    # What is kept is still useful: the shape, harmless values, where things are.
    job = store.get_job("j")
    spec = job["spec"]
    assert spec["storageOptions"]["key"] == spec["storageOptions"]["secret"] == "***"
    assert spec["storageOptions"]["endpoint_url"] == "http://127.0.0.1:9000"
    assert spec["storageOptions"]["client_kwargs"]["aws_session_token"] == "***"
    assert spec["params"]["app"]["threshold"] == 3
    assert spec["params"]["app"]["headers"] == [{"Authorization": "***"}]
    assert spec["params"]["assembler"]["connection_string"] == "***"
    assert spec["dataSource"]["params"]["url"] == "https://***@example.com/data.csv"
    assert spec["dataDestination"] == "https://example.com/out?sv=***&sig=***&se=***"
    assert job["error"] == "cannot read https://example.com/x?token=***&sig=***"
    assert job["result"] == {"secret": "***", "ok": True}
    assert store.chunks("j")[0]["error"] == "GET https://***@example.com/x failed"
    note = next(e for e in store.events(job_id="j") if e["type"] == "note")
    assert note["data"] == {"password": "***", "url": "s3://***@bucket/k"}


def leaky_app(chunk_path, results_dir, params):
    """Checks it got the real secret, then fails with it inside a URL."""
    assert params["password"] == "hunter2pw" and params["api_token"] == "tok-abc-123"
    raise RuntimeError(f"cannot fetch https://bob:{params['password']}@example.com/x")


def test_a_job_run_stores_no_secret(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    job = bn.Job(source=str(src), app=leaky_app, destination=str(tmp_path / "out"),
                 params={"app": {"password": "hunter2pw", "api_token": "tok-abc-123"}},
                 config={"maxTaskRetries": 1, "retryBackoff": 0})
    seen: list[dict] = []
    with pytest.raises(bn.JobFailed) as info:
        job.run(scheduler="sync", id="leaky", progress=seen.append)
    # Nor in what a notebook shows (and saves): the error, the result, the events displays get.
    assert "https://***@example.com/x" in info.value.result.error
    assert "hunter2pw" not in str(info.value) and "hunter2pw" not in repr(seen)
    assert any(e.get("state") == "RETRYING" for e in seen)
    stored = everything_stored(default_store().path)
    assert "hunter2pw" not in stored and "tok-abc-123" not in stored
    record = default_store().get_job("leaky")
    assert record["spec"]["params"]["app"] == {"password": "***", "api_token": "***"}
    (chunk,) = default_store().chunks("leaky")
    assert chunk["state"] == "FAILED" and chunk["attempts"] == 2
    assert "https://***@example.com/x" in chunk["error"]


# -- chunks: batches and progress ------------------------------------------------------


def test_chunks_are_planned_and_updated_in_batches(store):
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": i, "size": 100 + i, "covers": f"in.txt[{i}:{i + 1}]"} for i in range(1000)])
    chunks = store.chunks("j")
    assert len(chunks) == 1000 and {c["state"] for c in chunks} == {"PENDING"}
    assert (chunks[7]["size"], chunks[7]["covers"]) == (107, "in.txt[7:8]")
    assert store.get_job("j")["n_chunks"] == 1000
    before = store.last_seq()
    store.update_chunks("j", [{"index": i, "state": st.DONE, "attempts": 1 + i % 3, "duration": i / 100}
                              for i in range(1000)])
    new = store.events(after=before)
    assert [e["type"] for e in new] == ["chunks"], "one batch, one transaction, one event"
    assert [u["index"] for u in new[0]["data"]["updates"]] == list(range(1000))
    chunks = store.chunks("j")
    assert {c["state"] for c in chunks} == {"DONE"}
    assert (chunks[5]["attempts"], chunks[5]["duration"]) == (3, 0.05)


def test_chunk_update_keeps_attempts_and_duration_it_does_not_set(store):
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": 0}])
    store.update_chunks("j", [{"index": 0, "state": st.RETRYING, "attempts": 2, "error": "attempt 1: exit 3"}])
    store.update_chunks("j", [{"index": 0, "state": st.DONE, "duration": 1.5}])
    (c,) = store.chunks("j")
    assert (c["state"], c["attempts"], c["duration"], c["error"]) == ("DONE", 2, 1.5, None)


def test_planning_again_starts_the_chunk_records_afresh(store):
    """A new run's plan replaces the old one: fewer chunks, new sizes, every state PENDING
    (the engine then records the chunks it finds committed as DONE)."""
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": i, "size": 10, "covers": f"old {i}"} for i in range(4)])
    store.update_chunks("j", [{"index": 1, "state": st.DONE}, {"index": 3, "state": st.CHUNK_FAILED, "error": "x"}])
    store.set_chunks("j", [{"index": i, "size": 20, "covers": f"new {i}"} for i in range(2)])
    chunks = store.chunks("j")
    assert [(c["idx"], c["state"], c["size"], c["covers"]) for c in chunks] == [
        (0, "PENDING", 20, "new 0"), (1, "PENDING", 20, "new 1")]
    assert store.get_job("j")["progress"] == {"total": 2, "pending": 2, "running": 0, "retrying": 0, "done": 0,
                                              "failed": 0, "cancelled": 0, "resumed": 0}


def test_a_bad_batch_is_applied_whole_or_not_at_all(store):
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": 0}, {"index": 1}])
    before = store.last_seq()
    with pytest.raises(sqlite3.IntegrityError):
        store.update_chunks("j", [{"index": 0, "state": st.DONE}, {"index": 1, "state": None}])
    assert [c["state"] for c in store.chunks("j")] == ["PENDING", "PENDING"]
    assert store.events(after=before) == []
    store.update_chunks("j", [])  # nothing to do: no event either
    assert store.events(after=before) == []
    store.update_chunks("j", [{"index": 1, "state": st.DONE}])  # the store is still usable
    assert [c["state"] for c in store.chunks("j")] == ["PENDING", "DONE"]


def test_progress_counts_every_state(store):
    """Each chunk counts once, in the category of its state: the categories add up to the chunks."""
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": i} for i in range(20)])
    states = [st.DONE] * 5 + [st.CHUNK_FAILED] * 2 + [st.CHUNK_RUNNING, st.RETRYING, st.CHUNK_CANCELLED]
    store.update_chunks("j", [{"index": i, "state": s, "attempts": 1} for i, s in enumerate(states)])
    expected = {"total": 20, "pending": 10, "running": 1, "retrying": 1, "done": 5, "failed": 2, "cancelled": 1,
                "resumed": 0}
    assert sum(expected[c] for c in CATEGORIES) == expected["total"]
    assert store.progress("j").to_dict() == expected
    assert store.get_job("j")["progress"] == expected
    assert next(j for j in store.list_jobs() if j["id"] == "j")["progress"] == expected
    # the same chunk moves counted the way the runner counts them give the same
    runner_counts = Progress(total=20)
    for state in states:
        runner_counts.move(None, state)
    assert runner_counts == store.progress("j")
    assert store.progress("unknown") == Progress() and Progress().to_dict()["total"] == 0


def test_first_attempts_the_runner_sees_running_count_as_running(store):
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": i} for i in range(6)])
    store.set_state("j", st.RUNNING)
    store.update_chunks("j", [{"index": 0, "state": st.DONE, "attempts": 1},
                              {"index": 1, "state": st.RETRYING, "attempts": 1}])
    store.set_first_attempts_running("j", 3)
    p = store.progress("j")
    assert (p.pending, p.running, p.retrying, p.done) == (1, 3, 1, 1)
    assert store.get_job("j")["progress"] == p.to_dict() and "first_attempts_running" not in store.get_job("j")
    # never more than the pending chunks: the number the runner gave may be older than the chunks' states
    store.update_chunks("j", [{"index": i, "state": st.DONE, "attempts": 1} for i in (2, 3)])
    assert store.progress("j").to_dict() == {"total": 6, "pending": 0, "running": 2, "retrying": 1, "done": 3,
                                             "failed": 0, "cancelled": 0, "resumed": 0}
    # nothing runs once the job has ended, and a new plan starts from none
    store.set_state("j", st.FAILED, error="x")
    assert (store.progress("j").running, store.progress("j").pending) == (0, 2)
    store.set_first_attempts_running("j", 2)
    assert store.progress("j").running == 0
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": i} for i in range(6)])
    assert store.progress("j").to_dict()["pending"] == 6


def test_a_job_of_one_done_one_failed_and_two_cancelled_chunks_has_none_pending(store):
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": i} for i in range(4)])
    store.update_chunks("j", [{"index": 0, "state": st.DONE, "attempts": 1},
                              {"index": 1, "state": st.CHUNK_FAILED, "attempts": 3, "error": "boom"},
                              {"index": 2, "state": st.CHUNK_CANCELLED}, {"index": 3, "state": st.CHUNK_CANCELLED}])
    store.set_state("j", st.FAILED, error="1 of 4 chunk(s) failed")
    assert store.get_job("j")["progress"] == {"total": 4, "pending": 0, "running": 0, "retrying": 0, "done": 1,
                                              "failed": 1, "cancelled": 2, "resumed": 0}


def test_chunks_done_without_an_attempt_in_this_run_are_resumed(store):
    store.create_job("j", "x", {})
    store.set_chunks("j", [{"index": i} for i in range(3)])
    store.update_chunks("j", [{"index": 0, "state": st.DONE, "resumed": True},
                              {"index": 1, "state": st.DONE, "attempts": 2}])
    p = store.progress("j")
    assert (p.done, p.resumed, p.pending) == (2, 1, 1)


def test_a_store_of_an_earlier_version_is_brought_up_to_date(tmp_path):
    """A store written before jobs had ``first_attempts_running`` opens, reads and records as before."""
    path = str(tmp_path / "old.sqlite")
    conn = sqlite3.connect(path)
    conn.executescript(st.SCHEMA.replace(",\n    first_attempts_running INTEGER DEFAULT 0", ""))
    assert "first_attempts_running" not in {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    conn.execute("INSERT INTO jobs (id, name, state, n_chunks, created, updated) VALUES ('old', 'o', 'FAILED', 2, 1, 1)")
    conn.executemany("INSERT INTO chunks (job_id, idx, state, attempts) VALUES ('old', ?, ?, 1)",
                     [(0, "DONE"), (1, "CANCELLED")])
    conn.commit()
    conn.close()
    stores = [JobStore(path), JobStore(path)]  # the second finds the column there already
    assert stores[1].get_job("old")["progress"] == {"total": 2, "pending": 0, "running": 0, "retrying": 0,
                                                    "done": 1, "failed": 0, "cancelled": 1, "resumed": 0}
    stores[0].create_job("new", "n", {})
    stores[0].set_chunks("new", [{"index": 0}])
    stores[0].set_first_attempts_running("new", 1)
    assert stores[1].progress("new").running == 1


def test_a_job_run_records_every_chunk(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"{i}\n" for i in range(60)))
    job = bn.Job(source=str(src), partitioner="split-lines", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 1}})
    result = job.run(scheduler="sync", id="recorded")
    s = default_store()
    record = s.get_job("recorded")
    assert record["state"] == "COMPLETE" and record["n_chunks"] == 60
    assert record["progress"] == {"total": 60, "pending": 0, "running": 0, "retrying": 0, "done": 60,
                                  "failed": 0, "cancelled": 0, "resumed": 0}
    chunks = s.chunks("recorded")
    assert [c["idx"] for c in chunks] == list(range(60))
    assert all(c["attempts"] == 1 and c["duration"] is not None for c in chunks)
    assert chunks[12]["covers"] == "in.txt[26:29]" and chunks[12]["size"] == 3
    events = s.events(job_id="recorded")
    updates = [u for e in events if e["type"] == "chunks" for u in e["data"]["updates"]]
    assert sorted(u["index"] for u in updates if u["state"] == "DONE") == list(range(60))
    assert len([e for e in events if e["type"] == "chunks"]) <= 60
    assert [e["data"]["state"] for e in events if e["type"] == "state"][-1] == "COMPLETE"
    assert record["result"]["outputs"] == result.outputs


# -- which runs are the same job --------------------------------------------------------


def test_job_ids_made_together_are_distinct():
    # A thousand ids within a second or so: with a 16-bit random part a few would
    # collide; a collision makes the second job look like a resumed run of the first.
    ids = [new_job_id("burst") for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("burst-") for i in ids)


def test_a_completed_record_is_reused_only_by_the_same_job(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("from a\n")
    b.write_text("from b\n")

    def job(src, out):
        return bn.Job(source=str(src), app="identity", assembler="concat", destination=str(tmp_path / out))

    first = job(a, "out-a").run(scheduler="sync", id="same-id")
    again = job(a, "out-a").run(scheduler="sync", id="same-id")
    assert again.reused and again.outputs == first.outputs
    assert default_store().get_job("same-id")["runs"] == 1
    other = job(b, "out-b").run(scheduler="sync", id="same-id")
    assert not other.reused
    assert (tmp_path / "out-b" / "output.bin").read_text() == "from b\n"
    record = default_store().get_job("same-id")
    assert record["runs"] == 2 and record["result"]["destination"].endswith("/out-b")


# -- events and follow --------------------------------------------------------------------


def test_events_filter_by_job_and_sequence(store):
    store.create_job("a", "a", {})
    store.create_job("b", "b", {})
    store.add_event("a", "log", {"line": 1})
    store.add_event(None, "server", {"up": True})
    all_events = store.events()
    seqs = [e["seq"] for e in all_events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert [e["type"] for e in store.events(job_id="a")] == ["state", "log"]
    assert [e["data"] for e in store.events(after=seqs[1])] == [{"line": 1}, {"up": True}]
    assert len(store.events(limit=2)) == 2
    assert store.last_seq() == seqs[-1]
    assert all(isinstance(e["time"], float) for e in all_events)


def test_follow_yields_a_jobs_events_as_they_come_and_stops_at_its_end(store):
    store.create_job("j", "x", {})
    got: list[dict] = []
    reader = threading.Thread(target=lambda: got.extend(store.follow(job_id="j", poll=0.01)), daemon=True)
    reader.start()
    store.set_state("j", st.RUNNING)
    store.set_chunks("j", [{"index": 0}, {"index": 1}])
    for i in range(2):
        store.update_chunks("j", [{"index": i, "state": st.DONE}])
    store.add_event("other", "noise", {})
    store.set_state("j", st.COMPLETE)
    reader.join(60)
    assert not reader.is_alive(), "follow did not stop when the job ended"
    assert got == store.events(job_id="j")
    assert [e["type"] for e in got] == ["state", "state", "planned", "chunks", "chunks", "state"]


def test_follow_until_and_follow_after(store):
    store.create_job("j", "x", {})
    start = store.last_seq()
    store.add_event(None, "tick", {"n": 1})
    store.add_event(None, "tick", {"n": 2})
    got = list(store.follow(after=start, poll=0.01, until=lambda: True))
    assert [e["data"] for e in got] == [{"n": 1}, {"n": 2}]
    assert list(store.follow(job_id="no-such-job", poll=0.01)) == []


# -- several processes at once ------------------------------------------------------------

WRITER = textwrap.dedent("""
    import os, sys, time
    from bytenite_nb.store import JobStore, DONE, CHUNK_RUNNING, COMPLETE, RUNNING
    path, k, per, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s = JobStore(path)
    open(os.path.join(folder, f"ready-{k}"), "w").close()
    while not os.path.exists(os.path.join(folder, "go")):
        time.sleep(0.01)
    job = f"w{k}"
    s.create_job(job, job, {"writer": k})
    s.set_state(job, RUNNING)
    s.set_chunks(job, [{"index": i} for i in range(per)])
    for i in range(per):
        # One transaction per update on purpose: as many writes as possible.
        s.update_chunks(job, [{"index": i, "state": CHUNK_RUNNING}])
        s.update_chunks(job, [{"index": i, "state": DONE, "attempts": k + 1}])
        s.update_chunks("shared", [{"index": k * per + i, "state": DONE, "attempts": k + 1}])
        s.get_job(job)
    s.add_event(job, "writer-done", {"k": k})
    s.set_state(job, COMPLETE)
""")

READER = textwrap.dedent("""
    import os, sys, time
    from bytenite_nb.store import JobStore
    path, folder = sys.argv[1], sys.argv[2]
    s = JobStore(path)
    open(os.path.join(folder, "ready-reader"), "w").close()
    reads = 0
    while not os.path.exists(os.path.join(folder, "stop")):
        s.list_jobs(limit=100)
        s.progress("shared")
        s.events(after=max(0, s.last_seq() - 50))
        reads += 1
    print(reads)
""")


def test_several_processes_share_one_store(tmp_path):
    path = str(tmp_path / "jobs.sqlite")
    writers, per = 4, 60
    main = JobStore(path)
    main.create_job("shared", "shared", {})
    main.set_chunks("shared", [{"index": i} for i in range(writers * per)])
    start = main.last_seq()
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "reader.py").write_text(READER)
    folder = str(tmp_path)
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), path, str(k), str(per), folder],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(writers)]
    reader = subprocess.Popen([sys.executable, str(tmp_path / "reader.py"), path, folder],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    followed: list[dict] = []
    follower = None
    try:
        def ready():
            for p in procs + [reader]:
                if p.poll() is not None:  # died before it was ready: say why at once
                    raise AssertionError(f"{p.args} exited with {p.returncode}: {p.stderr.read()}")
            return all(os.path.exists(tmp_path / f"ready-{k}") for k in range(writers)) \
                and os.path.exists(tmp_path / "ready-reader")
        wait_until(ready, timeout=300, what="every process ready")
        # This process follows every event while the others write.
        follower = threading.Thread(target=lambda: followed.extend(main.follow(
            after=start, poll=0.01, until=lambda: all(p.poll() is not None for p in procs))), daemon=True)
        follower.start()
        (tmp_path / "go").touch()
        outcomes = [p.communicate(timeout=300) for p in procs]
    finally:
        (tmp_path / "stop").touch()
        reader_out, reader_err = reader.communicate(timeout=120)
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outcomes):
        assert p.returncode == 0, err
        assert "locked" not in err and err == ""
    assert reader.returncode == 0 and reader_err == "", reader_err
    assert int(reader_out) > 0
    follower.join(60)
    assert not follower.is_alive()

    # Nothing lost: every job, every chunk, every event.
    for k in range(writers):
        job = main.get_job(f"w{k}")
        assert job["state"] == "COMPLETE" and job["spec"] == {"writer": k}
        assert job["progress"]["done"] == per
        assert {c["attempts"] for c in main.chunks(f"w{k}")} == {k + 1}
        kinds = [e["type"] for e in main.events(job_id=f"w{k}")]
        assert kinds.count("chunks") == 2 * per and kinds.count("writer-done") == 1
        assert len(kinds) == 2 * per + 5  # NEW, RUNNING, planned, chunks..., writer-done, COMPLETE
    shared = main.chunks("shared")
    assert [c["state"] for c in shared] == ["DONE"] * (writers * per)
    assert [c["attempts"] for c in shared] == [i // per + 1 for i in range(writers * per)]
    assert main.progress("shared").done == writers * per
    all_after = main.events(after=start, limit=100000)
    assert len(all_after) == writers * (3 * per + 5)
    # follow saw exactly what was recorded, in order, once each.
    assert [e["seq"] for e in followed] == [e["seq"] for e in all_after]


def test_one_rule_for_secret_values_everywhere():
    from bytenite_nb.redact import MIN_SECRET_LENGTH, secret_values
    from bytenite_nb.server import launcher

    job = {"storageOptions": {"secret": "abcdef", "key": "x", "anon": True},
           "app": {"env": {"API_TOKEN": 987654321, "MODE": "fast-mode"}}}
    assert secret_values(job) == {"abcdef", "987654321"}  # short, boolean and non-secret values left alone
    assert len("abcdef") == MIN_SECRET_LENGTH
    assert not hasattr(launcher, "masker") or launcher.masker.__module__ == "bytenite_nb.redact"
    assert launcher.secret_values is secret_values
