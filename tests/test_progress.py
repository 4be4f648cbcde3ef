"""One progress model: the chunk states, :class:`Progress` and its moves, and a
real job whose chunks end done, failed, retried-then-done and cancelled, counted
the same by the handle, the events, the job store, the REST answer, the widget
state and the CLI, with the categories adding up to the chunk count on every event."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import bytenite_nb as bn
from bytenite_nb import store as st
from bytenite_nb.exceptions import ProgressError
from bytenite_nb.states import CATEGORIES, FINAL_CHUNK_STATES, ChunkState, JobState, Progress

FIXTURE = Path(__file__).resolve().parent.parent / "labextension" / "test" / "fixtures" / "progress.json"


def category_sum(counts) -> int:
    counts = counts if isinstance(counts, dict) else counts.to_dict()
    return sum(counts[c] for c in CATEGORIES)


# -- states ----------------------------------------------------------------------------


def test_states_are_the_strings_the_store_has_always_recorded(tmp_path):
    assert [s.value for s in JobState] == ["NEW", "PARTITIONING", "RUNNING", "ASSEMBLING", "COMPLETE", "FAILED",
                                           "CANCELLED"]
    assert [s.value for s in ChunkState] == ["PENDING", "RUNNING", "RETRYING", "DONE", "FAILED", "CANCELLED"]
    assert CATEGORIES == ("pending", "running", "retrying", "done", "failed", "cancelled")
    assert {s for s in JobState if s.final} == {"COMPLETE", "FAILED", "CANCELLED"}
    assert set(FINAL_CHUNK_STATES) == {"DONE", "FAILED", "CANCELLED"} and "DONE" in FINAL_CHUNK_STATES
    # they print, format, serialise and store as the plain strings
    assert (str(JobState.COMPLETE), f"{ChunkState.DONE:<6}|", repr(ChunkState.DONE)) == ("COMPLETE", "DONE  |", "'DONE'")
    assert json.dumps({"state": JobState.FAILED}) == '{"state": "FAILED"}'
    conn = sqlite3.connect(str(tmp_path / "s.sqlite"))
    conn.execute("CREATE TABLE t (state TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", (ChunkState.RETRYING,))
    assert conn.execute("SELECT state, typeof(state) FROM t").fetchone() == ("RETRYING", "text")
    # the store's names are the same states
    assert (st.NEW, st.CHUNK_FAILED, st.RETRYING) == (JobState.NEW, ChunkState.FAILED, ChunkState.RETRYING)
    assert not hasattr(st, "JOB_STATES")
    # the public names
    from bytenite_nb import engine
    from bytenite_nb.engine import runner

    assert bn.Progress is Progress and engine.Progress is Progress and runner.Progress is Progress


# -- building a Progress --------------------------------------------------------------


def test_pending_is_what_the_other_categories_leave():
    p = Progress(total=10, running=2, retrying=1, done=3, failed=1, cancelled=1)
    assert p.pending == 2 and category_sum(p) == 10 and p.finished == 5 and p.fraction == 0.5
    assert Progress().to_dict() == dict.fromkeys(["total", *CATEGORIES, "resumed"], 0)
    assert Progress().fraction == 0.0


@pytest.mark.parametrize("counts, named", [
    ({"total": 3, "done": 2, "failed": 2}, "pending: expected a number of chunks, at least 0, got -1"),
    ({"total": 4, "pending": 1, "done": 1}, "the categories count 2 chunks"),
    ({"total": 2, "done": -1, "pending": 3}, "done: expected a number of chunks, at least 0, got -1"),
    ({"total": 2, "done": True}, "done: expected a number of chunks"),
    ({"total": 2, "done": 1.0}, "done: expected a number of chunks"),
    ({"total": "2"}, "total: expected a number of chunks"),
    ({"total": 2, "done": 1, "resumed": 2}, "resumed: 2 resumed chunks, but only 1 done"),
    ({"total": 2, "running": 1, "first_attempts_running": 2}, "first_attempts_running: 2, but only 1 running"),
])
def test_counts_that_cannot_be_are_refused_naming_the_count(counts, named):
    with pytest.raises(ProgressError) as e:
        Progress(**counts)
    assert named in str(e.value)


def test_from_counts_of_chunk_states():
    p = Progress.from_counts({"DONE": 5, "FAILED": 2, "RUNNING": 1, "RETRYING": 1, "CANCELLED": 1, "PENDING": 10})
    assert p.to_dict() == {"total": 20, "pending": 10, "running": 1, "retrying": 1, "done": 5, "failed": 2,
                           "cancelled": 1, "resumed": 0}
    # planned chunks without a state yet are pending; first attempts running come out of pending, never more
    p = Progress.from_counts({"DONE": 1}, total=4, resumed=1, first_attempts_running=9)
    assert (p.pending, p.running, p.first_attempts_running, p.resumed) == (0, 3, 3, 1)
    with pytest.raises(ProgressError, match="total: 3 chunks, but 4 chunks have a state"):
        Progress.from_counts({"DONE": 4}, total=3)
    with pytest.raises(ProgressError, match="unknown chunk state 'FINISHED'"):
        Progress.from_counts({"FINISHED": 1})
    with pytest.raises(ProgressError, match="resumed: 2 resumed chunks, but only 1 done"):
        Progress.from_counts({"DONE": 1}, resumed=2)


def test_to_dict_and_from_dict_go_round():
    p = Progress(total=40, pending=24, running=3, retrying=1, done=12, resumed=5)
    assert Progress.from_dict(p.to_dict()) == p
    assert Progress.from_dict({"type": "progress", **p.to_dict()}) == p  # an event
    copy = p.copy()
    p.move("RETRYING", "RUNNING")
    assert (copy.retrying, p.retrying) == (1, 0)


def test_the_text_of_every_display():
    assert Progress(total=4, done=1, failed=1, cancelled=2).summary() == "1/4 done, 1 failed, 2 cancelled"
    assert Progress(total=10, running=2, retrying=1, done=3, resumed=2).summary() == \
        "3/10 done (2 resumed), 1 retrying, 2 running, 4 pending"


def test_the_extension_fixture_is_what_the_library_sends_and_says():
    """labextension/test/fixtures/progress.json is what the extension's tests render."""
    cases = json.loads(FIXTURE.read_text())["cases"]
    assert cases
    for case in cases:
        p = Progress.from_dict(case["progress"])
        assert p.to_dict() == case["progress"], case["name"]
        assert p.summary() == case["summary"], case["name"]


# -- moves -----------------------------------------------------------------------------


def test_a_chunk_moves_through_retries_to_its_end():
    p = Progress(total=3)
    assert p.move(None, "RETRYING") and (p.pending, p.retrying) == (2, 1)
    assert p.move("RETRYING", "RUNNING") and (p.retrying, p.running) == (0, 1)
    assert p.move("RUNNING", "RETRYING") and (p.running, p.retrying) == (0, 1)
    assert p.move("RETRYING", "RUNNING") and p.move("RUNNING", "DONE")
    assert p.to_dict() == {"total": 3, "pending": 2, "running": 0, "retrying": 0, "done": 1, "failed": 0,
                           "cancelled": 0, "resumed": 0}
    assert p.apply(None, {"index": 1, "state": "DONE", "resumed": True}) and (p.done, p.resumed) == (2, 1)
    assert p.move("PENDING", "CANCELLED") and p.finished == 3 and p.pending == 0
    assert p.move("RUNNING", "RUNNING") is True  # no change, still news of a live chunk
    assert category_sum(p) == 3


def test_late_news_of_an_ended_chunk_changes_nothing():
    p = Progress(total=2)
    p.move(None, "DONE")
    before = p.copy()
    for late in ("RUNNING", "RETRYING", "FAILED", "DONE", "CANCELLED", "PENDING"):
        assert p.move("DONE", late) is False
    assert p.move("CANCELLED", "RUNNING") is False and p.move("FAILED", "DONE") is False
    assert p == before


@pytest.mark.parametrize("previous, new, message", [
    ("RUNNING", "PENDING", "a chunk cannot go back from RUNNING to PENDING"),
    ("RETRYING", "DONE", "no RETRYING chunk to become DONE"),
    ("RUNNING", "FAILED", "no RUNNING chunk to become FAILED"),
    (None, "BOGUS", "unknown chunk state 'BOGUS'"),
    ("BOGUS", "DONE", "unknown chunk state 'BOGUS'"),
])
def test_a_move_that_cannot_be_is_refused_and_changes_nothing(previous, new, message):
    p = Progress(total=2)
    p.move(None, "DONE")
    before = p.copy()
    with pytest.raises(ProgressError, match=message):
        p.move(previous, new)
    assert p == before


def test_more_chunks_than_planned_is_refused():
    p = Progress(total=1)
    p.move(None, "DONE")
    with pytest.raises(ProgressError, match="no PENDING chunk left to become DONE"):
        p.move(None, "DONE")
    assert p.done == 1 and category_sum(p) == 1


def test_first_attempts_running_come_out_of_pending():
    p = Progress(total=6)
    p.move(None, "RETRYING")  # a retry waits on its worker thread: one task, not a first attempt
    p.set_running_tasks(4)
    assert (p.pending, p.running, p.retrying, p.first_attempts_running) == (2, 3, 1, 3)
    # a first attempt that ends was one of those running
    p.move(None, "DONE")
    assert (p.pending, p.running, p.done, p.first_attempts_running) == (2, 2, 1, 2)
    # a second attempt reports its start: the retry is running, the first attempts as before
    p.move("RETRYING", "RUNNING")
    p.set_running_tasks(3)
    assert (p.pending, p.running, p.retrying, p.first_attempts_running) == (2, 3, 0, 2)
    # never more than the pending chunks, never below none
    p.set_running_tasks(50)
    assert (p.pending, p.running, p.first_attempts_running) == (0, 5, 4)
    p.set_running_tasks(0)
    assert (p.pending, p.running, p.first_attempts_running) == (4, 1, 0)
    assert category_sum(p) == 6


def test_any_sequence_of_moves_agrees_with_the_chunks_states():
    """Random runs of many chunks: after every move the counts are those of the chunks'
    states (as a store would count them), and add up to the total."""
    rng = random.Random(9)
    for _ in range(200):
        n = rng.randint(1, 12)
        states: dict[int, str | None] = dict.fromkeys(range(n))
        p = Progress(total=n)
        for _ in range(rng.randint(0, 40)):
            index = rng.randrange(n)
            old = states[index]
            new = rng.choice(["RUNNING", "RETRYING", "DONE", "FAILED", "CANCELLED"])
            moved = p.move(old, new, resumed=rng.random() < 0.2)
            assert moved == (old not in FINAL_CHUNK_STATES)
            if moved:
                states[index] = new
            if rng.random() < 0.3:
                p.set_running_tasks(rng.randint(0, n))
            assert category_sum(p) == n
            counts = {}
            for s in states.values():
                counts[s or "PENDING"] = counts.get(s or "PENDING", 0) + 1
            recorded = Progress.from_counts(counts, n, resumed=p.resumed,
                                            first_attempts_running=p.first_attempts_running)
            assert recorded == p


def test_a_display_following_the_events_counts_as_the_runner_does():
    """The widget's state takes the runner's events one by one (chunk moves, progress
    beats with first attempts running) and keeps the very counts the runner keeps."""
    from bytenite_nb.widgets.progress import ProgressState

    rng = random.Random(4)
    runner = Progress(total=8)
    display = ProgressState()
    display.apply({"type": "planned", "chunks": 8})
    states: dict[int, str | None] = dict.fromkeys(range(8))
    for _ in range(60):
        if rng.random() < 0.3:
            runner.set_running_tasks(rng.randint(0, 8))
            display.apply(runner.to_event())
        else:
            index = rng.randrange(8)
            new = rng.choice(["RUNNING", "RETRYING", "DONE", "FAILED", "CANCELLED"])
            if runner.move(states[index], new):
                states[index] = new
                display.apply({"type": "chunk", "index": index, "state": new})
        assert display.progress == runner


# -- a real job ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def roomy_client():
    """A LocalCluster with a thread for every chunk of the jobs below, so that no
    chunk waits for another to end: the order chunks end in is the apps' own."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=6, processes=True, dashboard_address=":0")
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def app_command(folder: Path, body: str) -> list[str]:
    path = folder / "app.py"
    path.write_text(textwrap.dedent("""\
        import os, sys, time
        n = int(os.environ["CHUNK_NUMBER"])
        results = os.environ["TASK_RESULTS_DIR"]
        def done():
            open(os.path.join(results, "r.txt"), "w").write(f"chunk {n}\\n")
            sys.exit(0)
        """) + textwrap.dedent(body))
    return [sys.executable, str(path)]


def job_of(tmp_path: Path, chunks: int, command: list[str], **config) -> bn.Job:
    source = tmp_path / "in.txt"
    source.write_text("".join(f"line {i}\n" for i in range(chunks)))
    return bn.Job(source=str(source), partitioner="split-lines", app={"command": command}, assembler="concat",
                  destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 1}},
                  config={"taskTimeout": 300, **config})


class Watcher:
    """Every event of a job, each with the handle's counts at that moment, checked as it comes."""

    def __init__(self, total: int):
        self.total = total
        self.events: list[dict] = []
        self.snapshots: list[Progress] = []
        self.problems: list[str] = []
        self.handle = None
        self.lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        snapshot = self.handle.progress if self.handle is not None else None
        with self.lock:
            self.events.append(event)
            if snapshot is not None:
                self.snapshots.append(snapshot)
                if snapshot.total not in (0, self.total) or category_sum(snapshot) != snapshot.total:
                    self.problems.append(f"handle after {event}: {snapshot}")
            if event["type"] == "progress":
                if event["total"] != self.total or category_sum(event) != self.total \
                        or min(event[c] for c in CATEGORIES) < 0:
                    self.problems.append(f"progress event {event}")

    def progress_events(self) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["type"] == "progress"]


def rest_answer(tmp_path: Path, job_id: str) -> dict:
    from bytenite_nb.server.manager import JobManager

    return JobManager(str(tmp_path)).job_summary(job_id)


def widget_state_from(events: list[dict]):
    from bytenite_nb.widgets.progress import ProgressState

    state = ProgressState()
    for i, event in enumerate(events):
        state.apply(event, now=float(i))
    return state


def wait_for(predicate, what: str, timeout: float = 240.0) -> None:
    """The ceiling only ends a broken run; it is no speed check."""
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"never saw {what}")
        time.sleep(0.05)


def test_every_event_of_a_real_job_counts_every_chunk_once(roomy_client, tmp_path):
    """Chunks 0 and 2 are done at once, chunk 1 fails its first attempt and is done on
    its second, chunk 3 fails both of its attempts, chunks 4 and 5 run until the job
    is cancelled."""
    flaky_mark = tmp_path / "chunk-1-tried"
    command = app_command(tmp_path, f"""\
        if n in (0, 2):
            done()
        if n == 1:
            if os.path.exists({str(flaky_mark)!r}):
                done()
            open({str(flaky_mark)!r}, "w").close()
            sys.exit("chunk 1 fails its first attempt")
        if n == 3:
            sys.exit("chunk 3 fails every attempt")
        time.sleep(600)
        """)
    job = job_of(tmp_path, 6, command, maxTaskRetries=1, retryBackoff=1.0)
    watcher = Watcher(total=6)
    handle = job.submit(client=roomy_client)
    watcher.handle = handle
    handle.subscribe(watcher)

    def chunk_states():
        return {i: c["state"] for i, c in handle.chunk_states.items()}

    wait_for(lambda: {i: s for i, s in chunk_states().items() if i < 4} == {0: "DONE", 1: "DONE", 2: "DONE", 3: "FAILED"}
             and any(e["running"] >= 2 for e in watcher.progress_events()[-3:]),
             "chunks 0-2 done, chunk 3 failed, and chunks 4 and 5 running")
    handle.cancel()
    result = handle.result(raise_on_error=False)
    assert result.state == st.CANCELLED

    assert watcher.problems == []
    final = {"total": 6, "pending": 0, "running": 0, "retrying": 0, "done": 3, "failed": 1, "cancelled": 2,
             "resumed": 0}
    assert handle.progress.to_dict() == final
    chunks = {c["index"]: c for c in result.chunks}
    assert {i: c["state"] for i, c in chunks.items()} == {0: "DONE", 1: "DONE", 2: "DONE", 3: "FAILED",
                                                         4: "CANCELLED", 5: "CANCELLED"}
    assert (chunks[1]["attempts"], chunks[3]["attempts"]) == (2, 2)

    events = list(watcher.events)
    # the retry was seen, counted as retrying while it waited, and chunk 1 was counted once in the end
    chunk_1 = [(e["state"], s) for e, s in zip(events, watcher.snapshots) if e["type"] == "chunk" and e["index"] == 1]
    assert chunk_1[0][0] == "RETRYING" and chunk_1[0][1].retrying >= 1 and chunk_1[-1][0] == "DONE"
    # every progress event adds up (checked as they came), some showed chunks running, the last is the end
    progress = watcher.progress_events()
    assert len(progress) >= 3 and max(e["running"] for e in progress) >= 2
    assert {k: progress[-1][k] for k in final} == final and events[-1]["type"] == "progress"

    # the store, the REST answer, the widget's state and the CLI's line say the same
    record = st.default_store().get_job(handle.job_id)
    assert record["state"] == "CANCELLED" and record["progress"] == final
    assert st.default_store().progress(handle.job_id) == handle.progress
    assert rest_answer(tmp_path, handle.job_id)["progress"] == final
    state = widget_state_from(events)
    assert state.progress.to_dict() == final and state.state == "CANCELLED"
    from bytenite_nb.progress import _line

    assert "3/6 done, 1 failed, 2 cancelled," in _line(handle)


def test_one_done_one_failed_two_cancelled_is_none_pending_everywhere(roomy_client, tmp_path):
    """The job of issue 9: chunk 0 done, chunk 1 failed (after chunk 0 was seen done),
    chunks 2 and 3 cancelled by failFast. No chunk is pending, wherever it is shown."""
    go = tmp_path / "chunk-0-was-seen-done"
    command = app_command(tmp_path, f"""\
        if n == 0:
            done()
        if n == 1:
            while not os.path.exists({str(go)!r}):
                time.sleep(0.05)
            sys.exit("chunk 1 fails")
        time.sleep(600)
        """)
    job = job_of(tmp_path, 4, command, maxTaskRetries=0, failFast=True)
    watcher = Watcher(total=4)

    def on_event(event):
        watcher(event)
        if event["type"] == "chunk" and event["index"] == 0 and event["state"] == "DONE":
            go.touch()

    handle = job.submit(client=roomy_client)
    watcher.handle = handle
    handle.subscribe(on_event)
    with pytest.raises(bn.JobFailed) as e:
        handle.result()
    assert "1 of 4 chunk(s) failed" in str(e.value)
    assert watcher.problems == []

    expected = json.loads(FIXTURE.read_text())["cases"][0]
    assert expected["name"] == "a job of 1 done, 1 failed and 2 cancelled chunks"
    assert handle.progress.pending == 0
    assert handle.progress.to_dict() == expected["progress"]
    assert st.default_store().get_job(handle.job_id)["progress"] == expected["progress"]
    assert rest_answer(tmp_path, handle.job_id)["progress"] == expected["progress"]
    assert widget_state_from(watcher.events).progress.to_dict() == expected["progress"]
    assert handle.progress.summary() == expected["summary"]


def test_a_resumed_run_counts_its_resumed_chunks_alike_everywhere(tmp_path):
    fixed = tmp_path / "fixed"
    command = app_command(tmp_path, f"""\
        if n == 2 and not os.path.exists({str(fixed)!r}):
            sys.exit("chunk 2 cannot be done until the file 'fixed' exists")
        done()
        """)
    job = job_of(tmp_path, 4, command, maxTaskRetries=0)
    with pytest.raises(bn.JobFailed):
        job.run(scheduler="sync", id="resumed-run")
    fixed.touch()
    watcher = Watcher(total=4)
    handle = job.submit(scheduler="sync", id="resumed-run")
    watcher.handle = handle
    handle.subscribe(watcher)
    handle.result()
    final = {"total": 4, "pending": 0, "running": 0, "retrying": 0, "done": 4, "failed": 0, "cancelled": 0,
             "resumed": 3}
    assert handle.progress.to_dict() == final and handle.result().resumed_chunks == 3
    assert st.default_store().get_job("resumed-run")["progress"] == final
    assert rest_answer(tmp_path, "resumed-run")["progress"] == final
    assert handle.progress.summary() == "4/4 done (3 resumed)"
    assert watcher.problems == []
