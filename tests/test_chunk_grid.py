"""The chunk grid: a job's chunk states and workers as compact arrays from the
job store, through the server's REST routes, for a real 10,000-chunk job
(one of whose chunks fails after a retry), and one chunk's attempts and error."""

from __future__ import annotations

import json
import os

import pytest
from traitlets.config import Config

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403  (fixtures: jp_fetch, jp_serverapp, ...)

import bytenite_nb as bn
from bytenite_nb.chunk_grid import GRID_PAGE_MAX, STATE_LETTERS, chunk_detail, grid_page
from bytenite_nb.exceptions import ChunkNotFound
from bytenite_nb.store import JobStore
from tests.test_server import api  # noqa: F401 (the authenticated REST fixture)

CHUNKS = 10_000
BAD_CHUNK = 4242
JOB_ID = "grid-10k"


def fails_on_its_line(chunk_path: str, results_dir: str, params: dict) -> None:
    """A no-op app but for the one chunk whose line is BAD_CHUNK."""
    with open(chunk_path) as f:
        line = f.read().strip()
    if line == str(BAD_CHUNK):
        raise ValueError(f"line {line} is not welcome")
    with open(os.path.join(results_dir, "out.txt"), "w") as f:
        f.write(line + "\n")


def run_grid_job(folder, home, job_id: str = JOB_ID) -> None:
    """Run a real job of 10,000 one-line chunks in this process (synchronously) with
    its records in ``home``; chunk BAD_CHUNK fails after a retry, so the job fails."""
    (folder / "in.txt").write_text("".join(f"{i}\n" for i in range(CHUNKS)))
    before = os.environ.get("BYTENITE_NB_HOME")
    os.environ["BYTENITE_NB_HOME"] = str(home)
    try:
        job = bn.Job(source=str(folder / "in.txt"), partitioner="split-lines", app=fails_on_its_line,
                     assembler="concat", destination=str(folder / "out"), id=job_id,
                     params={"partitioner": {"lines_per_chunk": 1}},
                     config={"maxTaskRetries": 1, "retryBackoff": 0})
        with pytest.raises(bn.JobFailed):
            job.run(cluster="sync")
    finally:
        if before is None:
            os.environ.pop("BYTENITE_NB_HOME", None)
        else:
            os.environ["BYTENITE_NB_HOME"] = before


@pytest.fixture(scope="module")
def grid_home(tmp_path_factory):
    """A job store holding a real job of 10,000 one-line chunks (:func:`run_grid_job`)."""
    folder = tmp_path_factory.mktemp("grid")
    run_grid_job(folder, folder / "home")
    return folder / "home"


@pytest.fixture
def in_grid_home(grid_home, monkeypatch):
    monkeypatch.setenv("BYTENITE_NB_HOME", str(grid_home))
    return grid_home


@pytest.fixture
def jp_server_config():
    return Config({"ServerApp": {"jpserver_extensions": {"bytenite_nb.server": True}}})


def test_the_grid_of_a_10000_chunk_job_is_one_letter_per_chunk(api, in_grid_home):  # noqa: F811
    status, page = api("GET", f"jobs/{JOB_ID}/chunks")
    assert status == 200, page
    assert page["total"] == CHUNKS and page["offset"] == 0 and page["first"] == 0
    states = page["states"]
    assert len(states) == CHUNKS
    assert states[BAD_CHUNK] == STATE_LETTERS["FAILED"]
    assert states.count(STATE_LETTERS["DONE"]) == CHUNKS - 1
    # The legend reads every letter back.
    assert {page["legend"][letter] for letter in set(states)} == {"DONE", "FAILED"}
    # Synchronous chunks ran on no Dask worker: none is claimed.
    assert page["workers"] == [-1] * CHUNKS and page["workerNames"] == []


def test_the_grid_comes_in_pages(api, in_grid_home):  # noqa: F811
    status, page = api("GET", f"jobs/{JOB_ID}/chunks", offset="4000", limit="500")
    assert status == 200, page
    assert page["first"] == 4000 and len(page["states"]) == 500 and len(page["workers"]) == 500
    assert page["states"][BAD_CHUNK - 4000] == "F"
    status, page = api("GET", f"jobs/{JOB_ID}/chunks", offset=str(CHUNKS))
    assert status == 200 and page["states"] == "" and page["first"] is None and page["total"] == CHUNKS


@pytest.mark.parametrize("params, field", [({"offset": "-1"}, "offset"), ({"limit": "0"}, "limit"),
                                           ({"limit": str(GRID_PAGE_MAX + 1)}, "limit"),
                                           ({"offset": "many"}, "offset")])
def test_a_bad_grid_page_is_a_400_naming_the_argument(api, in_grid_home, params, field):  # noqa: F811
    status, body = api("GET", f"jobs/{JOB_ID}/chunks", **params)
    assert status == 400 and body["errors"][0]["field"] == field, body


def test_a_click_opens_the_chunks_attempts_and_error(api, in_grid_home):  # noqa: F811
    status, chunk = api("GET", f"jobs/{JOB_ID}/chunk", index=str(BAD_CHUNK))
    assert status == 200, chunk
    assert chunk["index"] == BAD_CHUNK and chunk["state"] == "FAILED" and chunk["attempts"] == 2
    assert f"line {BAD_CHUNK} is not welcome" in chunk["error"]
    states = [h["state"] for h in chunk["history"]]
    assert states == ["RETRYING", "RUNNING", "FAILED"], chunk["history"]
    assert [h["attempt"] for h in chunk["history"]] == [1, 2, 2]
    assert "attempt 1" in chunk["history"][0]["error"] and "not welcome" in chunk["history"][0]["error"]
    status, fine = api("GET", f"jobs/{JOB_ID}/chunk", index="7")
    assert status == 200 and fine["state"] == "DONE" and fine["error"] is None and fine["covers"]
    assert [h["state"] for h in fine["history"]] == ["DONE"]


def test_a_chunk_that_does_not_exist_is_named(api, in_grid_home):  # noqa: F811
    status, body = api("GET", f"jobs/{JOB_ID}/chunk", index=str(CHUNKS))
    assert status == 404 and f"no chunk {CHUNKS}" in body["message"] and f"{CHUNKS} chunks" in body["message"]
    status, body = api("GET", f"jobs/{JOB_ID}/chunk")
    assert status == 400 and body["errors"][0]["field"] == "index"
    status, body = api("GET", "jobs/no-such-job/chunks")
    assert status == 404 and "no-such-job" in body["message"]


def test_the_worker_of_each_chunk_is_read_back_compactly(tmp_path):
    store = JobStore(str(tmp_path / "jobs.sqlite"))
    store.create_job("j", "demo", None)
    store.set_chunks("j", [{"index": i} for i in range(5)])
    store.update_chunks("j", [{"index": 0, "state": "DONE", "worker": "tcp://10.0.0.1:1"},
                              {"index": 2, "state": "RETRYING", "attempts": 1, "error": "x",
                               "worker": "tcp://10.0.0.2:1"},
                              {"index": 3, "state": "DONE", "worker": "tcp://10.0.0.1:1"}])
    # A later update without a worker keeps the one known.
    store.update_chunks("j", [{"index": 2, "state": "FAILED", "attempts": 2, "error": "y"}])
    page = grid_page(store, "j")
    assert page["states"] == "DPFDP"
    assert page["workers"] == [0, -1, 1, 0, -1] and page["workerNames"] == ["tcp://10.0.0.1:1", "tcp://10.0.0.2:1"]
    detail = chunk_detail(store, "j", 2)
    assert detail["worker"] == "tcp://10.0.0.2:1" and detail["error"] == "y"
    assert [(h["state"], h["worker"]) for h in detail["history"]] == [("RETRYING", "tcp://10.0.0.2:1"),
                                                                       ("FAILED", None)]
    with pytest.raises(ChunkNotFound, match="no chunk 9"):
        chunk_detail(store, "j", 9)


def test_a_job_on_a_cluster_records_which_worker_ran_each_chunk(tmp_path, client):
    (tmp_path / "in.txt").write_text("".join(f"{i}\n" for i in range(20)))
    job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 1}})
    result = job.run(client=client)
    page = grid_page(bn.JobStore(), result.job_id)
    assert page["states"] == "D" * 20
    assert -1 not in page["workers"]
    assert set(page["workerNames"]) <= set(client.scheduler_info()["workers"]), page["workerNames"]


def test_the_widgets_model_holds_compact_arrays_of_10000_chunks(in_grid_home):
    from bytenite_nb.widgets.chunk_grid import ChunkGridWidget

    store = JobStore()
    rows = store.chunk_states(JOB_ID)
    grid = ChunkGridWidget(on_select=lambda i: chunk_detail(store, JOB_ID, i))
    grid.show_page([s for _, s, _ in rows], [w for _, _, w in rows])
    assert len(grid.states) == CHUNKS and grid.states[BAD_CHUNK] == "F" and grid.states.count("D") == CHUNKS - 1
    assert grid.workers == [-1] * CHUNKS and grid.worker_names == []
    # What the browser is sent: the arrays and a few settings, no chunk records, no plan.
    state = grid.get_state()
    assert set(state) >= {"states", "workers", "worker_names", "selected", "detail"}
    assert len(json.dumps({k: v for k, v in state.items() if k != "_esm"})) < 60_000
    grid.selected = BAD_CHUNK  # what a click on the cell does
    assert grid.detail["state"] == "FAILED" and grid.detail["attempts"] == 2
    assert [h["state"] for h in grid.detail["history"]] == ["RETRYING", "RUNNING", "FAILED"]
