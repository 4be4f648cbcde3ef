"""The Jupyter server extension: every REST handler through a real Jupyter
server (pytest-jupyter's ``jp_fetch``), and real job processes.

pytest-jupyter's fixtures are imported into this module rather than loaded
as a plugin, so its autouse fixtures (an event loop per test, server
clean-up) apply to these tests only.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest
import tornado.routing
import tornado.web
from traitlets.config import Config

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403  (fixtures: jp_fetch, jp_serverapp, ...)

from bytenite_nb import Job, JobStore
from bytenite_nb.supervision import cancel_job
from bytenite_nb.exceptions import ByteniteNBError, JobConflict, JobFailed, JobNotFound, JobValidationError
from bytenite_nb.redact import SECRET_NAME_PATTERN
from bytenite_nb.server.handlers import ROUTES, error_body
from bytenite_nb.server import processes
from bytenite_nb.server.manager import JobManager
from bytenite_nb.server.processes import process_command, process_start, runs_cli_job

JOB_DEADLINE_SECONDS = 180  # a ceiling for a stuck job, not a performance assertion

UPPER_APP = """\
import os, pathlib, sys
chunk = os.environ["CHUNK_NUMBER"]
here = pathlib.Path(__file__).parent
runs = here / "runs"
runs.mkdir(exist_ok=True)
with open(runs / f"chunk-{chunk}", "a") as f:
    f.write("ran\\n")
if chunk == "1" and not (here / "fixed").exists():
    sys.exit("chunk 1 cannot be done until the file 'fixed' exists")
data = pathlib.Path(os.environ["TASK_DIR"], "data.bin").read_bytes()
pathlib.Path(os.environ["TASK_RESULTS_DIR"], "upper.txt").write_bytes(data.upper())
"""


@pytest.fixture
def jp_server_config():
    return Config({"ServerApp": {"jpserver_extensions": {"bytenite_nb.server": True}}})


@pytest.fixture
def api(jp_fetch, jp_asyncio_loop):
    """``api(method, "jobs/ID", body) -> (status, json)``, authenticated."""

    def call(method: str, path: str, body=None, **params):
        async def go():
            response = await jp_fetch(
                "bytenite-nb", *path.split("/"), method=method, params=params or None, raise_error=False,
                body=(body if isinstance(body, str) else json.dumps(body)) if method != "GET" else None,
            )
            return response.code, json.loads(response.body) if response.body else None

        return jp_asyncio_loop.run_until_complete(go())

    return call


@pytest.fixture
def job_folder(jp_root_dir) -> Path:
    """``jobs/`` in the server root: an input file, an app, and a job file using both."""
    folder = Path(jp_root_dir) / "jobs"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "in.txt").write_text("".join(f"line {i} of the input\n" for i in range(300)))
    (folder / "upper.py").write_text(UPPER_APP)
    return folder


def upper_job(**changes) -> dict:
    job = {
        "name": "upper",
        "partitioner": "split-lines",
        "app": {"command": [sys.executable, "upper.py"]},
        "assembler": "concat",
        "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "data/in.txt"}},
        "dataDestination": "out/",
        "params": {"partitioner": {"chunk_size": 2048}, "app": {}, "assembler": {"output_name": "upper.txt"}},
        "config": {"maxTaskRetries": 0, "retryBackoff": 0},
    }
    job.update(changes)
    return job


@pytest.fixture
def api_at_once(jp_fetch, jp_asyncio_loop):
    """``api_at_once([(method, path, body), ...]) -> [(status, json), ...]``: the
    requests sent together, each answered on its own server thread."""

    def call(requests):
        async def one(method, path, body):
            response = await jp_fetch("bytenite-nb", *path.split("/"), method=method, raise_error=False,
                                      body=json.dumps(body) if body is not None else "{}")
            return response.code, json.loads(response.body) if response.body else None

        async def go():
            return await asyncio.gather(*(one(*request) for request in requests))

        return jp_asyncio_loop.run_until_complete(go())

    return call


def wait_for_job(api, job_id: str, states=("COMPLETE", "FAILED", "CANCELLED")) -> dict:
    """Poll the job's detail until it reaches one of ``states``."""
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while True:
        status, job = api("GET", f"jobs/{job_id}")
        assert status == 200, job
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']}; its output:\n{job.get('log')}")
        time.sleep(0.2)


def wait_until(predicate, what: str, sleep=time.sleep) -> None:
    """Poll ``predicate``, calling ``sleep(seconds)`` in between (the server's loop runs only in
    its sleep: pass ``server_sleep``)."""
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        sleep(0.1)


@pytest.fixture
def server_sleep(jp_asyncio_loop):
    """``server_sleep(seconds)``: wait while the test server's event loop runs (and its reaper with it)."""
    return lambda seconds: jp_asyncio_loop.run_until_complete(asyncio.sleep(seconds))


def wait_for_exit(pid: int) -> None:
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while process_start(pid) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"job process {pid} is still running")
        time.sleep(0.1)


# -- components, validate, plan ------------------------------------------------------------


def test_components_lists_every_kind_with_its_params_schema(api):
    status, body = api("GET", "components")
    assert status == 200
    partitioners = {c["name"]: c for c in body["partitioner"]}
    assert partitioners["split-lines"]["schema"]["properties"]["chunk_size"]["type"] == "integer"
    assert partitioners["split-lines"]["doc"].startswith("Split text files")
    assert {"identity", "noop"} <= {c["name"] for c in body["app"]}
    assert "concat" in {c["name"] for c in body["assembler"]}
    assert "command" in body["runtimes"]
    assert "maxTaskRetries" in body["config"]["properties"]
    assert {"file", "s3", "bypass"} <= set(body["descriptors"])
    # The browser leaves secrets out of the code it makes by this very rule.
    assert body["secretNamePattern"] == SECRET_NAME_PATTERN
    rule = re.compile(body["secretNamePattern"], re.IGNORECASE)
    assert rule.search("aws_secret_access_key") and rule.search("key") and not rule.search("endpoint_url")


BUILTIN_RUNTIMES = ("command", "folder", "image", "notebook", "python")
#: what the editor's Jest tests build their forms from: the schemas this server serves
SCHEMAS_FIXTURE = Path(__file__).parent.parent / "labextension" / "test" / "fixtures" / "component-schemas.json"


def test_components_serves_the_runtime_and_descriptor_schemas(api):
    from bytenite_nb.apps import runtimes
    from bytenite_nb.engine_folders.folder import SPEC_SCHEMA as ENGINE_FOLDER_SCHEMA
    from bytenite_nb.storage import DESCRIPTORS, descriptor_schema

    status, body = api("GET", "components")
    assert status == 200
    schemas = body["runtimeSchemas"]
    assert set(BUILTIN_RUNTIMES) <= set(schemas) and sorted(schemas) == body["runtimes"]
    for key in BUILTIN_RUNTIMES:
        assert schemas[key] == json.loads(json.dumps(runtimes()[key].SPEC_SCHEMA)), key
        assert schemas[key]["additionalProperties"] is False
    # what the editor could not set before: a container app's image, command and network; a notebook app
    assert {"image", "command", "network", "device_requirements"} <= set(schemas["image"]["properties"])
    assert {"notebook", "kernel"} <= set(schemas["notebook"]["properties"])
    assert sorted(body["descriptorSchemas"]) == sorted(DESCRIPTORS) == body["descriptors"]
    for name in DESCRIPTORS:
        assert body["descriptorSchemas"][name] == json.loads(json.dumps(descriptor_schema(name)))
    assert "url" not in body["destinationDescriptors"] and "bypass" not in body["destinationDescriptors"]
    assert body["engineFolderSchema"] == json.loads(json.dumps(ENGINE_FOLDER_SCHEMA))
    # the editor's tests build forms from exactly these
    served = {"runtimes": list(BUILTIN_RUNTIMES), "runtimeSchemas": {k: schemas[k] for k in BUILTIN_RUNTIMES},
              "descriptors": body["descriptors"], "descriptorSchemas": body["descriptorSchemas"],
              "destinationDescriptors": body["destinationDescriptors"],
              # a built-in whose docstring has reST in it, as served (the sidebar's tests show it)
              "identity": next(c for c in body["app"] if c["name"] == "identity")}
    if os.environ.get("BYTENITE_NB_WRITE_FIXTURES"):
        SCHEMAS_FIXTURE.parent.mkdir(exist_ok=True)
        SCHEMAS_FIXTURE.write_text(json.dumps(served, indent=1, sort_keys=True) + "\n")
    assert json.loads(SCHEMAS_FIXTURE.read_text()) == served, (
        f"{SCHEMAS_FIXTURE} is out of date: run this test with BYTENITE_NB_WRITE_FIXTURES=1")


def test_components_docs_and_descriptions_are_plain_text(api):
    status, body = api("GET", "components")
    assert status == 200
    texts = []

    def collect(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "title", "doc", "summary") and isinstance(value, str):
                    texts.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(body)
    assert len(texts) > 100
    assert not [t for t in texts if "``" in t or re.search(r":[a-z]+:`", t)]
    docs = {c["name"]: c["doc"] for c in body["partitioner"]}
    assert "glob such as *.csv" in docs["files"]  # ``*.csv`` in the docstring


def test_validate_names_an_unknown_key_of_the_app(api, job_folder):
    status, body = api("POST", "validate", {"job": upper_job(app={"command": ["python3", "upper.py"], "cwdd": "."}),
                                            "path": "jobs/upper.bnjob.json"})
    assert status == 400
    assert {"field": "app.cwdd", "message": 'unknown field (did you mean "cwd"?)'} in body["errors"]


def test_validate_resolves_relative_paths_against_the_job_files_folder(api, job_folder):
    status, body = api("POST", "validate", {"job": upper_job(), "path": "jobs/upper.bnjob.json"})
    assert status == 200, body
    assert body["valid"] is True
    assert body["source"] == "file://" + str(job_folder / "data" / "in.txt")
    assert body["destination"].rstrip("/") == "file://" + str(job_folder / "out")
    assert (body["partitioner"], body["app"], body["assembler"]) == ("split-lines", "upper.py", "concat")


def test_validate_answers_with_the_librarys_errors_each_naming_its_field(api, job_folder):
    bad = upper_job(params={"partitioner": {"chunk_size": "64k"}}, app=None)
    bad["surprise"] = 1
    with pytest.raises(JobValidationError) as expected:
        Job.from_dict(bad, base_dir=str(job_folder), source_name="jobs/bad.bnjob.json").resolve()
    status, body = api("POST", "validate", {"job": bad, "path": "jobs/bad.bnjob.json"})
    assert status == 400
    assert body["error"] == "JobValidationError"
    assert body["message"] == str(expected.value)
    assert body["errors"] == [{"field": e.field, "message": e.message} for e in expected.value.errors]
    assert "surprise" in [e["field"] for e in body["errors"]]


def test_validate_names_every_missing_field(api, job_folder):
    status, body = api("POST", "validate", {"job": {"name": "empty"}, "path": "jobs/x.bnjob.json"})
    assert status == 400
    fields = {e["field"] for e in body["errors"]}
    assert {"dataSource", "dataDestination", "app"} <= fields


@pytest.mark.parametrize("body, field", [
    ({"path": "jobs/x.bnjob.json"}, "job"),
    ({"job": upper_job(), "path": "../outside.bnjob.json"}, "path"),
    ({"job": upper_job(), "path": 7}, "path"),
    ("[1, 2]", ""),
    ("{not json", ""),
])
def test_bad_requests_get_a_400_naming_the_field(api, job_folder, body, field):
    status, answer = api("POST", "validate", body)
    assert status == 400
    assert answer["errors"][0]["field"] == field
    assert answer["message"]


def test_plan_previews_the_chunks_the_library_plans(api, job_folder):
    expected = Job.from_dict(upper_job(), base_dir=str(job_folder)).plan(scheduler="sync")
    status, body = api("POST", "plan", {"job": upper_job(), "path": "jobs/upper.bnjob.json", "limit": 2})
    assert status == 200, body
    assert body["count"] == len(expected) > 2
    assert body["totalSize"] == sum(r.size for r in expected)
    assert body["truncated"] is True
    assert [c["covers"] for c in body["chunks"]] == [r.describe() for r in expected[:2]]
    # what the first chunk holds, as its app will see it
    assert body["sample"] == expected.sample and body["sample"]["kind"] == "text"
    first = (job_folder / "data" / "in.txt").read_text().splitlines()[0]
    assert body["sample"]["chunk"] == 0 and body["sample"]["lines"][0] == first


SPLITTER_ENGINE = """\
import json, os
n = json.loads(os.environ["PARTITIONER_PARAMS"])["lines"]
lines = open(os.path.join(os.environ["SOURCE_DIR"], "in.txt"), "rb").readlines()
for i in range(0, len(lines), n):
    with open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i // n}.bin"), "wb") as f:
        f.writelines(lines[i:i + n])
"""


def test_a_plan_preview_by_an_engine_folder_leaves_nothing_behind(api, job_folder, tmp_path, monkeypatch):
    import tempfile

    from bytenite_nb.engine_folders import partitioner as engine_partitioner
    from tests.container_images import make_folder

    make_folder(job_folder / "engines", "splitter", {"type": "partitioner", "entrypoint": "split.py",
                                                      "platform": "local"}, {"split.py": SPLITTER_ENGINE})
    temp = tmp_path / "server-temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where the engine's chunk copies go
    job = upper_job(partitioner="engines/splitter", dataSource="data/", params={"partitioner": {"lines": 100}})
    for _ in range(3):
        status, body = api("POST", "plan", {"job": job, "path": "jobs/split.bnjob.json"})
        assert status == 200, body
        assert body["count"] == 3 and body["totalSize"] == (job_folder / "data" / "in.txt").stat().st_size
        assert [c["size"] for c in body["chunks"]] == [2090, 2200, 2200]
    assert list(temp.iterdir()) == []
    assert not [p for p in engine_partitioner._previews if p.startswith(str(temp))]


def test_plan_of_an_invalid_job_is_a_400(api, job_folder):
    status, body = api("POST", "plan", {"job": upper_job(partitioner="split-line"), "path": "jobs/x.bnjob.json"})
    assert status == 400
    assert body["errors"][0]["field"] == "partitioner"
    assert "split-lines" in body["errors"][0]["message"]  # the library's suggestion


def test_plan_limit_must_be_a_positive_number(api, job_folder):
    status, body = api("POST", "plan", {"job": upper_job(), "path": "jobs/x.bnjob.json", "limit": 0})
    assert status == 400 and body["errors"][0]["field"] == "limit"


@pytest.mark.parametrize("page, field", [({"offset": -1}, "offset"), ({"offset": "10"}, "offset"),
                                         ({"limit": 2.5}, "limit"), ({"offset": True}, "offset")])
def test_plan_page_must_be_whole_numbers(api, job_folder, page, field):
    status, body = api("POST", "plan", {"job": upper_job(), "path": "jobs/x.bnjob.json", **page})
    assert status == 400 and body["errors"][0]["field"] == field, body


def test_a_plan_of_100k_chunks_comes_a_page_at_a_time(api, job_folder):
    """No answer holds the whole plan: a page from ``offset``, at most PLAN_PAGE_MAX chunks."""
    from bytenite_nb.server.manager import PLAN_PAGE_MAX

    job = upper_job(partitioner="replicate", dataSource={"dataSourceDescriptor": "bypass"},
                    params={"partitioner": {"num_replicas": 100_000}})
    status, body = api("POST", "plan", {"job": job, "path": "jobs/x.bnjob.json", "offset": 99_990, "limit": 5})
    assert status == 200, body
    assert body["count"] == 100_000 and body["offset"] == 99_990 and body["truncated"] is True
    assert [c["index"] for c in body["chunks"]] == [99_990, 99_991, 99_992, 99_993, 99_994]
    status, body = api("POST", "plan", {"job": job, "path": "jobs/x.bnjob.json", "limit": 100_000})
    assert status == 200 and len(body["chunks"]) == PLAN_PAGE_MAX and body["chunks"][0]["index"] == 0
    status, body = api("POST", "plan", {"job": job, "path": "jobs/x.bnjob.json", "offset": 100_000})
    assert status == 200 and body["chunks"] == [] and body["count"] == 100_000


# -- plans held for their later pages ----------------------------------------------------------


@pytest.fixture
def counted_partitioner():
    """A registered partitioner ``test-counted``: one chunk per byte of the first
    ``chunks`` bytes of the source; the list it returns holds how often it planned."""
    from bytenite_nb import registry
    from bytenite_nb.partitioners import ChunkRef

    calls: list[dict] = []

    @registry.partitioner("test-counted", schema={"type": "object", "properties": {"chunks": {"type": "integer"}}})
    def counted(source, params):
        calls.append(dict(params))
        first = source.files[0]
        return [ChunkRef(index=i, url=first.url, start=i, end=i + 1, size=1) for i in range(params["chunks"])]

    yield calls
    registry.partitioners.unregister("test-counted")


def counted_job(chunks: int) -> dict:
    return upper_job(partitioner="test-counted", params={"partitioner": {"chunks": chunks}, "app": {},
                                                        "assembler": {"output_name": "upper.txt"}})


def plan_page(manager: JobManager, chunks: int, offset: int, path: str = "jobs/x.bnjob.json", limit: int = 50) -> dict:
    return manager.plan(counted_job(chunks), path, offset=offset, limit=limit)


def test_a_later_page_of_a_plan_is_cut_from_the_plan_made_for_the_first(api, api_at_once, job_folder,
                                                                          counted_partitioner):
    request = {"job": counted_job(2500), "path": "jobs/x.bnjob.json", "limit": 50}
    status, first = api("POST", "plan", request)
    assert status == 200 and len(counted_partitioner) == 1
    assert first["count"] == 2500 and first["totalSize"] == 2500 and first["truncated"] is True
    status, later = api("POST", "plan", {**request, "offset": 1990})
    assert status == 200, later
    assert len(counted_partitioner) == 1  # not planned again
    assert [c["index"] for c in later["chunks"]] == list(range(1990, 2040))  # across two packed blocks
    assert later["chunks"][0]["covers"].endswith("/jobs/data/in.txt[1990:1991]")
    assert (later["count"], later["totalSize"], later["offset"]) == (2500, 2500, 1990)
    assert later["sample"] == first["sample"] and later["sample"]["kind"] == "text"
    # Pages asked at once, each on a server thread: all cut from the same plan.
    answers = api_at_once([("POST", "plan", {**request, "offset": o}) for o in (50, 100, 2450, 2500)])
    assert [status for status, _ in answers] == [200] * 4 and len(counted_partitioner) == 1
    assert [[c["index"] for c in body["chunks"]][:1] for _, body in answers] == [[50], [100], [2450], []]
    assert len(answers[2][1]["chunks"]) == 50
    # Plan pressed again: the source may have changed, so it plans afresh.
    status, again = api("POST", "plan", request)
    assert status == 200 and len(counted_partitioner) == 2 and again["chunks"][0]["index"] == 0


def test_pages_of_different_jobs_never_share_a_plan(jp_root_dir, job_folder, counted_partitioner):
    manager = JobManager(str(jp_root_dir))
    assert plan_page(manager, 300, 0)["count"] == 300
    # Another job (other params): its later page plans it, rather than cutting the first job's plan.
    other = plan_page(manager, 200, 150)
    assert other["count"] == 200 and [c["index"] for c in other["chunks"]] == list(range(150, 200))
    assert len(counted_partitioner) == 2
    # The same job in another folder resolves its files there: planned again.
    (job_folder / "sub" / "data").mkdir(parents=True)
    (job_folder / "sub" / "data" / "in.txt").write_text("x" * 400)
    elsewhere = plan_page(manager, 300, 100, path="jobs/sub/x.bnjob.json")
    assert len(counted_partitioner) == 3 and elsewhere["chunks"][0]["covers"].endswith("/jobs/sub/data/in.txt[100:101]")
    # Each is held now: their later pages plan nothing.
    assert plan_page(manager, 300, 250)["chunks"][0]["url"].endswith("/jobs/data/in.txt")
    assert plan_page(manager, 200, 50)["count"] == 200
    assert len(counted_partitioner) == 3
    # A page of a job whose request is not valid is refused before anything is looked up.
    with pytest.raises(JobValidationError):
        manager.plan({**counted_job(300), "partitioner": "test-counte"}, "jobs/x.bnjob.json", offset=50)


def test_the_plans_held_are_few_and_bounded_in_bytes(jp_root_dir, job_folder, counted_partitioner):
    from bytenite_nb.server.plan_cache import PlanCache

    manager = JobManager(str(jp_root_dir), plans=PlanCache(entries=2))
    for chunks in (100, 200, 300):
        plan_page(manager, chunks, 0)
    assert len(manager.plans) == 2
    plan_page(manager, 300, 50)
    plan_page(manager, 200, 50)
    assert len(counted_partitioner) == 3  # the two newest are held
    plan_page(manager, 100, 50)
    assert len(counted_partitioner) == 4 and len(manager.plans) == 2  # the oldest was let go
    # 100,000 chunks: held packed, well under a MiB (the objects themselves take tens of MiB).
    plan_page(manager, 100_000, 0)
    assert len(manager.plans) == 2 and 100_000 * 2 < manager.plans.nbytes < 2**20  # a few bytes a chunk
    # A byte budget smaller than a plan: it is not held, and its later pages plan again.
    small = JobManager(str(jp_root_dir), plans=PlanCache(max_bytes=1000))
    plan_page(small, 100_000, 0)
    assert len(small.plans) == 0
    assert plan_page(small, 100_000, 99_990)["chunks"][-1]["index"] == 99_999
    assert len(counted_partitioner) == 7


def test_a_plan_held_too_long_is_made_again(jp_root_dir, job_folder, counted_partitioner):
    from bytenite_nb.server.plan_cache import PLAN_HELD_SECONDS, PlanCache

    now = [1000.0]
    manager = JobManager(str(jp_root_dir), plans=PlanCache(clock=lambda: now[0]))
    plan_page(manager, 300, 0)
    now[0] += PLAN_HELD_SECONDS - 1
    plan_page(manager, 300, 100)
    assert len(counted_partitioner) == 1  # a later page does not keep it longer
    now[0] += 1
    assert plan_page(manager, 300, 200)["chunks"][0]["index"] == 200
    assert len(counted_partitioner) == 2 and len(manager.plans) == 1  # held again, from now
    now[0] += PLAN_HELD_SECONDS - 1
    plan_page(manager, 300, 250)
    assert len(counted_partitioner) == 2


# -- jobs ------------------------------------------------------------------------------------


def test_a_submitted_job_runs_in_its_own_process_to_complete(api, job_folder, client, bnb_home):
    (job_folder / "fixed").write_text("")
    scheduler = client.scheduler.address
    status, body = api("POST", "jobs", {"job": upper_job(), "path": "jobs/upper.bnjob.json",
                                        "scheduler": scheduler, "id": "upper-1"})
    assert status == 201, body
    assert body["id"] == "upper-1" and body["startedFrom"] == "jupyterlab"
    pid = json.loads((bnb_home / "jupyter-jobs" / "upper-1" / "launch.json").read_text())["pid"]
    # Detached: a session of its own, so closing the page or the server's terminal leaves it running.
    assert os.getsid(pid) == pid != os.getsid(0)

    job = wait_for_job(api, "upper-1")
    assert job["state"] == "COMPLETE", job["log"]
    assert (job_folder / "out" / "upper.txt").read_text() == (job_folder / "data" / "in.txt").read_text().upper()
    assert job["destinationPath"].rstrip("/") == "jobs/out"
    assert [o["path"] for o in job["outputs"]] == ["jobs/out/upper.txt"]
    assert job["progress"]["done"] == job["progress"]["total"] == len(job["chunks"]) > 1
    assert all(c["state"] == "DONE" and c["attempts"] >= 1 for c in job["chunks"])
    assert job["attention"] == [] and job["chunkPage"] == {"offset": 0, "limit": 100, "total": len(job["chunks"])}
    assert job["cluster"]["scheduler"] == scheduler
    assert job["scheduler"] == scheduler and job["jobFile"] == "jobs/upper.bnjob.json"

    status, listing = api("GET", "jobs")
    assert status == 200
    listed = {j["id"]: j for j in listing["jobs"]}
    assert listed["upper-1"]["state"] == "COMPLETE"
    assert listed["upper-1"]["progress"]["done"] == job["progress"]["total"]
    # the same store the CLI and notebooks read
    assert JobStore(str(bnb_home / "jobs.sqlite")).get_job("upper-1")["state"] == "COMPLETE"

    status, body = api("POST", "jobs/upper-1/cancel")
    assert status == 409 and "nothing to cancel" in body["message"]
    status, body = api("POST", "jobs/upper-1/rerun")
    assert status == 409 and "only a FAILED or CANCELLED job" in body["message"]


def test_a_jobs_detail_has_its_counts_its_failing_chunks_and_a_page_of_the_rest(api, bnb_home):
    store = JobStore(str(bnb_home / "jobs.sqlite"))
    store.create_job("big", "big", {"name": "big"})
    store.set_chunks("big", [{"index": i, "size": 10, "covers": f"rows {i}"} for i in range(2500)])
    store.set_state("big", "RUNNING")
    store.update_chunks("big", [{"index": i, "state": "DONE", "attempts": 1, "duration": 0.1} for i in range(2000)])
    store.update_chunks("big", [{"index": 7, "state": "FAILED", "attempts": 3, "error": "boom at row 7"},
                                {"index": 2100, "state": "RUNNING", "attempts": 1},
                                {"index": 2200, "state": "RETRYING", "attempts": 2, "error": "flaky"}])
    for i in range(1200):  # a long history before the job process says where it runs
        store.add_event("big", "log", {"line": i})
    store.add_event("big", "cluster", {"kind": "scheduler", "scheduler": "tcp://127.0.0.1:8786", "dashboard": None})
    store.add_event("big", "log", {"line": "after"})

    status, job = api("GET", "jobs/big")
    assert status == 200, job
    assert job["progress"] == {"total": 2500, "pending": 498, "running": 1, "retrying": 1, "done": 1999,
                               "failed": 1, "cancelled": 0, "resumed": 0}
    assert [(c["index"], c["state"], c["error"]) for c in job["attention"]] == [
        (7, "FAILED", "boom at row 7"), (2100, "RUNNING", None), (2200, "RETRYING", "flaky")]
    assert job["attentionTotal"] == 3
    assert job["chunkPage"] == {"offset": 0, "limit": 100, "total": 2497}
    assert [c["index"] for c in job["chunks"]] == [*range(7), *range(8, 101)]
    assert job["cluster"] == {"kind": "scheduler", "scheduler": "tcp://127.0.0.1:8786", "dashboard": None}

    status, page = api("GET", "jobs/big", offset="2450", limit="1000")
    assert status == 200
    assert page["chunkPage"] == {"offset": 2450, "limit": 1000, "total": 2497}
    assert [c["index"] for c in page["chunks"]] == list(range(2453, 2500))
    assert {c["state"] for c in page["chunks"]} == {"PENDING"}
    assert len(json.dumps(page)) < 50_000  # a page, not the job's 2500 chunks
    status, page = api("GET", "jobs/big", offset="5000")
    assert status == 200 and page["chunks"] == [] and page["chunkPage"]["total"] == 2497
    for params, field in (({"offset": "-1"}, "offset"), ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
                          ({"limit": "ten"}, "limit")):
        status, body = api("GET", "jobs/big", **params)
        assert status == 400 and body["errors"][0]["field"] == field, (params, body)


def test_submit_refuses_an_invalid_job_before_starting_anything(api, job_folder, bnb_home):
    status, body = api("POST", "jobs", {"job": upper_job(dataSource="data/missing.txt"), "path": "jobs/x.bnjob.json"})
    assert status == 400 and body["errors"][0]["field"] == "dataSource"
    assert not (bnb_home / "jupyter-jobs").exists()
    status, body = api("POST", "jobs", {"job": upper_job(), "path": "jobs/x.bnjob.json", "workers": 0})
    assert status == 400 and body["errors"][0]["field"] == "workers"
    status, body = api("POST", "jobs", {"job": upper_job(), "path": "jobs/x.bnjob.json", "id": "no spaces"})
    assert status == 400 and body["errors"][0]["field"] == "id"


def test_the_saved_job_leaves_secrets_out(api, job_folder, bnb_home, client):
    (job_folder / "fixed").write_text("")
    job = upper_job(storageOptions={"secret": "s3cr3t-value", "anon": True})
    status, body = api("POST", "jobs", {"job": job, "path": "jobs/x.bnjob.json", "id": "secretive",
                                        "scheduler": client.scheduler.address})
    assert status == 201, body
    wait_for_job(api, "secretive")
    for path in (bnb_home / "jupyter-jobs" / "secretive").iterdir():
        assert "s3cr3t-value" not in path.read_text(), path
    status, detail = api("GET", "jobs/secretive")
    assert "s3cr3t-value" not in json.dumps(detail)


TOKEN_APP = """\
import os, pathlib, sys
if os.environ.get("API_TOKEN") != os.environ["EXPECTED_TOKEN_REVERSED"][::-1]:
    sys.exit("the app did not get its API_TOKEN")
data = pathlib.Path(os.environ["TASK_DIR"], "data.bin").read_bytes()
pathlib.Path(os.environ["TASK_RESULTS_DIR"], "upper.txt").write_bytes(data.upper())
"""


def files_holding(folder: Path, secrets: list[str]) -> list[str]:
    """Every file under ``folder`` (SQLite's WAL included) holding one of ``secrets``, as bytes."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(folder)}: {s}" for s in secrets if s.encode() in data]
    return found


@pytest.mark.slow
def test_a_job_with_credentials_runs_and_leaves_no_secret_on_disk(api, job_folder, s3, s3_server, bnb_home,
                                                                  monkeypatch):
    fs, bucket = s3
    data = "".join(f"row {i} of the object\n" for i in range(400)).encode()
    fs.pipe_file(f"{bucket}/in/data.txt", data)
    key, secret, token = "bnbkeyid-5e1f0c", "bnbsecret-a93d7e41b2", "bnbtoken-77c0ffee"
    # The job process gets no credentials from its environment: only the job's
    # storageOptions can open the bucket.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(job_folder / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(job_folder / "no-config"))
    import botocore.exceptions
    import s3fs

    with pytest.raises(botocore.exceptions.NoCredentialsError):
        s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": s3_server}).cat_file(
            f"{bucket}/in/data.txt")
    monkeypatch.setenv("EXPECTED_TOKEN_REVERSED", token[::-1])  # the app checks its token without holding it
    (job_folder / "token_upper.py").write_text(TOKEN_APP)
    job = upper_job(
        name="s3-upper",
        app={"command": [sys.executable, "token_upper.py"], "env": {"API_TOKEN": token}},
        dataSource=f"s3://{bucket}/in/data.txt",
        dataDestination=f"s3://{bucket}/out/",
        storageOptions={"key": key, "secret": secret, "client_kwargs": {"endpoint_url": s3_server}},
    )
    # A local cluster of the job process's own: its workers have no credentials either.
    status, body = api("POST", "jobs", {"job": job, "path": "jobs/s3.bnjob.json", "id": "with-credentials",
                                        "workers": 1})
    assert status == 201, body
    done = wait_for_job(api, "with-credentials")
    assert done["state"] == "COMPLETE", (done["error"], done["log"])
    fs.invalidate_cache()
    assert fs.cat_file(f"{bucket}/out/upper.txt") == data.upper()
    wait_for_exit(done["pid"])  # its last words are in output.log

    saved = json.loads((bnb_home / "jupyter-jobs" / "with-credentials" / "job.json").read_text())
    assert saved["storageOptions"] == {"client_kwargs": {"endpoint_url": s3_server}}
    assert saved["app"]["env"] == {"API_TOKEN": "***"}
    assert files_holding(bnb_home, [key, secret, token]) == []
    assert not [p for p in (bnb_home / "jupyter-jobs").rglob("*") if p.is_file()
                and p.name not in ("job.json", "launch.json", "output.log")]
    status, detail = api("GET", "jobs/with-credentials")
    assert not [s for s in (key, secret, token) if s in json.dumps(detail)]


def test_a_rerun_after_a_server_restart_never_runs_without_the_jobs_credentials(api, job_folder, client,
                                                                              jp_root_dir):
    job = upper_job(storageOptions={"token": "tok-in-memory-only", "anon": True})
    status, body = api("POST", "jobs", {"job": job, "path": "jobs/upper.bnjob.json", "id": "kept-secret",
                                        "scheduler": client.scheduler.address})
    assert status == 201, body
    assert wait_for_job(api, "kept-secret")["state"] == "FAILED"  # chunk 1, until the file 'fixed' exists
    (job_folder / "fixed").write_text("")
    # A new server knows the job from its records only, which hold no credentials.
    with pytest.raises(JobConflict, match="set its id to kept-secret and press Run"):
        JobManager(str(jp_root_dir)).rerun_failed("kept-secret")
    # The server that started it still has the complete job.
    status, body = api("POST", "jobs/kept-secret/rerun")
    assert status == 202, body
    assert wait_for_job(api, "kept-secret")["state"] == "COMPLETE"


OUTPUT_WITH_SECRETS = """\
import subprocess, sys
from bytenite_nb.redact import masker
from bytenite_nb.server.launcher import mask_output
mask_output(masker({"s3cr3t-v4lue"}))
print("printed s3cr3t-v4lue and https://user:pass-word@host/x", flush=True)
subprocess.run(["sh", "-c", "echo from a child s3cr3t-v4lue >&2"])
print("last line", flush=True)
"""


def test_the_job_process_output_is_masked_before_it_reaches_the_log(tmp_path):
    log = tmp_path / "output.log"
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-c", OUTPUT_WITH_SECRETS], stdout=out, stderr=subprocess.STDOUT,
                       check=True, timeout=120)
    assert log.read_text().splitlines() == [
        "printed *** and https://***@host/x", "from a child ***", "last line"]


def runs_started(bnb_home: Path, job_id: str) -> int:
    """How many job processes the server started for ``job_id`` (one line each in its output)."""
    return (bnb_home / "jupyter-jobs" / job_id / "output.log").read_text().count(f" of {job_id} ---")


def test_submits_of_one_id_at_once_start_one_job_process(api, api_at_once, job_folder, client, bnb_home):
    (job_folder / "fixed").write_text("")
    slow = upper_job(app={"command": [sys.executable, "-c", "import time; time.sleep(600)"]})
    request = {"job": slow, "path": "jobs/slow.bnjob.json", "id": "clicked-thrice",
               "scheduler": client.scheduler.address}
    answers = api_at_once([("POST", "jobs", request)] * 3)
    assert sorted(status for status, _ in answers) == [201, 409, 409], answers
    refused = [body for status, body in answers if status == 409]
    assert all(b["error"] == "JobConflict" and "clicked-thrice is already running" in b["message"] for b in refused)
    assert runs_started(bnb_home, "clicked-thrice") == 1
    job = wait_for_job(api, "clicked-thrice", states=("RUNNING",))
    status, body = api("POST", "jobs", request)  # later on, too
    assert status == 409 and body["error"] == "JobConflict"
    assert api("POST", "jobs/clicked-thrice/cancel")[0] == 202
    assert wait_for_job(api, "clicked-thrice")["state"] == "CANCELLED"
    wait_for_exit(job["pid"])
    assert runs_started(bnb_home, "clicked-thrice") == 1


def test_run_and_rerun_at_once_start_one_job_process(api, api_at_once, job_folder, client, bnb_home):
    request = {"job": upper_job(), "path": "jobs/upper.bnjob.json", "id": "run-and-rerun",
               "scheduler": client.scheduler.address}
    assert api("POST", "jobs", request)[0] == 201
    assert wait_for_job(api, "run-and-rerun")["state"] == "FAILED"  # chunk 1, until the file 'fixed' exists
    (job_folder / "fixed").write_text("")
    answers = api_at_once([("POST", "jobs/run-and-rerun/rerun", None), ("POST", "jobs", request)])
    assert sorted(status for status, _ in answers) in ([201, 409], [202, 409]), answers
    assert runs_started(bnb_home, "run-and-rerun") == 2
    assert wait_for_job(api, "run-and-rerun")["state"] == "COMPLETE"


def test_rerun_runs_only_the_chunks_that_failed(api, job_folder, client):
    status, body = api("POST", "jobs", {"job": upper_job(), "path": "jobs/upper.bnjob.json", "id": "flaky",
                                        "scheduler": client.scheduler.address})
    assert status == 201, body
    job = wait_for_job(api, "flaky")
    assert job["state"] == "FAILED", job["log"]
    failed = job["attention"]
    assert [(c["index"], c["state"]) for c in failed] == [(1, "FAILED")] and job["attentionTotal"] == 1
    assert "chunk 1 cannot be done until the file 'fixed' exists" in failed[0]["error"]
    assert failed[0]["attempts"] == 1
    assert job["canRerun"] is True
    assert not (job_folder / "out" / "upper.txt").exists()
    chunks = job["progress"]["total"]
    assert job["chunkPage"]["total"] == len(job["chunks"]) == chunks - 1
    ran_before = {i: (job_folder / "runs" / f"chunk-{i}").read_text().count("ran") for i in range(chunks)}

    (job_folder / "fixed").write_text("")
    status, body = api("POST", "jobs/flaky/rerun")
    assert status == 202, body
    job = wait_for_job(api, "flaky")
    assert job["state"] == "COMPLETE", job["log"]
    assert job["runs"] == 2
    ran_after = {i: (job_folder / "runs" / f"chunk-{i}").read_text().count("ran") for i in range(chunks)}
    assert ran_after[1] == ran_before[1] + 1
    assert all(ran_after[i] == ran_before[i] for i in range(chunks) if i != 1)
    assert (job_folder / "out" / "upper.txt").read_text() == (job_folder / "data" / "in.txt").read_text().upper()


def test_a_job_complete_without_some_chunks_can_rerun_them_from_the_sidebar(api, job_folder, client):
    partial = upper_job(config={"maxTaskRetries": 0, "retryBackoff": 0, "minSuccessRatio": 0.5})
    status, body = api("POST", "jobs", {"job": partial, "path": "jobs/upper.bnjob.json", "id": "partial",
                                        "scheduler": client.scheduler.address})
    assert status == 201, body
    job = wait_for_job(api, "partial")
    assert job["state"] == "COMPLETE", job["log"]
    assert job["failedChunks"] == 1 and job["canRerun"] is True
    text = (job_folder / "data" / "in.txt").read_text()
    assert (job_folder / "out" / "upper.txt").read_text() != text.upper()  # chunk 1 is missing
    (job_folder / "fixed").write_text("")
    status, body = api("POST", "jobs/partial/rerun")
    assert status == 202, body
    job = wait_for_job(api, "partial")
    assert job["state"] == "COMPLETE" and job["failedChunks"] == 0 and job["canRerun"] is False, job["log"]
    assert job["runs"] == 2
    assert (job_folder / "out" / "upper.txt").read_text() == text.upper()


def test_cancel_stops_the_job_process_and_writes_nothing(api, job_folder, client):
    (job_folder / "fixed").write_text("")
    slow = upper_job(app={"command": [sys.executable, "-c", "import time; time.sleep(600)"]})
    status, body = api("POST", "jobs", {"job": slow, "path": "jobs/slow.bnjob.json", "id": "slow",
                                        "scheduler": client.scheduler.address})
    assert status == 201, body
    job = wait_for_job(api, "slow", states=("RUNNING",))
    status, cluster = api("GET", "cluster", address=client.scheduler.address)
    assert status == 200
    assert [(r["id"], r["scheduler"], r["dashboard"]) for r in cluster["running"]] == [
        ("slow", client.scheduler.address, client.dashboard_link)]
    status, body = api("POST", "jobs/slow/cancel")
    assert status == 202, body
    job = wait_for_job(api, "slow")
    assert job["state"] == "CANCELLED"
    assert "cancelled" in job["error"]
    wait_for_exit(job["pid"])
    assert not (job_folder / "out" / "_SUCCESS").exists()
    assert job["canRerun"] is True


SECOND_ATTEMPT_SLEEPS = """\
import os, pathlib, sys, time
mark = pathlib.Path(os.environ["MARKS"], "tried-" + os.environ["CHUNK_NUMBER"])
if not mark.exists():
    mark.write_text("")
    sys.exit("the first attempt fails")
time.sleep(600)
"""


def test_a_killed_job_process_is_recorded_failed_by_the_reaper_with_no_chunk_running(api, job_folder, client,
                                                                                      bnb_home, server_sleep):
    # A second attempt reports its start: those chunks are RUNNING in the store when the process is killed.
    (job_folder / "second_sleeps.py").write_text(SECOND_ATTEMPT_SLEEPS)
    (job_folder / "marks").mkdir()
    job = upper_job(app={"command": [sys.executable, "second_sleeps.py"], "env": {"MARKS": str(job_folder / "marks")}},
                    config={"maxTaskRetries": 1, "retryBackoff": 0})
    status, body = api("POST", "jobs", {"job": job, "path": "jobs/slow.bnjob.json", "id": "doomed",
                                        "scheduler": client.scheduler.address})
    assert status == 201, body
    store = JobStore(str(bnb_home / "jobs.sqlite"))
    wait_until(lambda: store.count_chunks("doomed", states=["RUNNING"]) > 0, "a second attempt to run", server_sleep)
    pid = json.loads((bnb_home / "jupyter-jobs" / "doomed" / "launch.json").read_text())["pid"]
    try:
        os.kill(pid, signal.SIGKILL)
        # Only the server's reaper writes now: nobody asks for the job meanwhile.
        wait_until(lambda: store.get_job("doomed")["state"] != "RUNNING", "the reaper to record the end",
                   server_sleep)
        record = store.get_job("doomed")
        assert record["state"] == "FAILED"
        assert f"the job process (pid {pid}) ended (killed by SIGKILL) without recording the end of the job" \
            in record["error"]
        chunks = store.chunks("doomed")
        assert {c["state"] for c in chunks} == {"CANCELLED"}, chunks
        assert all(c["error"] == f"cancelled: the job process (pid {pid}) ended"
                   for c in chunks if c["attempts"] == 2)
        assert record["progress"]["cancelled"] == record["progress"]["total"] == len(chunks) > 1
        status, answer = api("GET", "jobs/doomed")
        assert status == 200 and answer["state"] == "FAILED" and answer["attention"] == []
        assert answer["progress"] == record["progress"] and answer["canRerun"] is True
    finally:
        # Nobody cancelled its apps: stop those still sleeping on the workers of the shared cluster.
        client.run(cancel_job, "doomed")


def test_server_errors_are_library_errors_with_their_status():
    # Raised by the manager, caught by "except ByteniteNBError" like every other library error.
    assert issubclass(JobNotFound, ByteniteNBError) and issubclass(JobConflict, ByteniteNBError)
    assert error_body(JobNotFound("no job 'x'")) == (404, {"error": "JobNotFound", "message": "no job 'x'"})
    assert error_body(JobConflict("job x is RUNNING")) == (409, {"error": "JobConflict", "message": "job x is RUNNING"})


def test_unknown_jobs_are_404_with_a_message(api):
    for method, path in (("GET", "jobs/nope"), ("POST", "jobs/nope/cancel"), ("POST", "jobs/nope/rerun")):
        status, body = api(method, path)
        assert status == 404, (method, path)
        assert body["error"] == "JobNotFound" and "no job 'nope'" in body["message"]


def test_jobs_started_elsewhere_are_listed_but_not_rerun_from_here(api, job_folder, client):
    with pytest.raises(JobFailed):  # chunk 1 fails until the file 'fixed' exists
        Job.from_dict(upper_job(), base_dir=str(job_folder)).run(client=client, id="from-a-notebook")
    status, listing = api("GET", "jobs", limit="5")
    assert status == 200
    mine = [j for j in listing["jobs"] if j["id"] == "from-a-notebook"]
    assert mine and mine[0]["state"] == "FAILED" and mine[0]["startedFrom"] == "elsewhere"
    status, body = api("POST", "jobs/from-a-notebook/rerun")
    assert status == 409 and "bytenite-nb run JOB_FILE --id from-a-notebook" in body["message"]
    status, body = api("GET", "jobs", limit="0")
    assert status == 400 and body["errors"][0]["field"] == "limit"


def test_cluster_says_where_jobs_run(api, client):
    status, body = api("GET", "cluster")
    assert status == 200
    assert body["kind"] == "local" and body["running"] == []
    status, body = api("GET", "cluster", address=client.scheduler.address)
    assert status == 200
    assert body["kind"] == "scheduler" and body["address"] == client.scheduler.address
    assert body["dashboard"] == client.dashboard_link
    assert body["source"] == "setting"
    with dask.config.set({"scheduler-address": client.scheduler.address}):
        status, body = api("GET", "cluster")
    assert (body["kind"], body["address"], body["source"]) == ("scheduler", client.scheduler.address, "dask config")
    assert body["description"] == f"Dask scheduler {client.scheduler.address} (Dask config scheduler-address)."


def test_cluster_says_in_words_what_a_local_cluster_runs_on(api):
    from bytenite_nb.server.cluster_info import cluster_target

    with dask.config.set({"bytenite-nb.local-cluster.workers": 3}):
        status, body = api("GET", "cluster")
        own_process = cluster_target(runs_own_process=True)["description"]
        workers = cluster_target(runs_own_process=False)["description"]
    assert status == 200 and body["kind"] == "local"
    # Command, folder and container apps: threads in the job's process; Python and notebook apps: worker processes.
    assert "command, folder and container apps run on 3 threads in that process" in body["description"]
    assert "Python and notebook apps on 3 worker processes of one thread each" in body["description"]
    assert own_process == "A local Dask cluster in the job's own process: 3 threads, each waiting on the app's processes."
    assert workers == "A local Dask cluster started by the job's process: 3 worker processes of one thread each."
    with dask.config.set({"bytenite-nb.cluster": "sync"}):
        status, body = api("GET", "cluster")
    assert body["kind"] == "local" and "one chunk at a time" in body["description"]


#: what the sidebar's Jest tests render: the cluster answers this server gives
CLUSTER_FIXTURE = Path(__file__).parent.parent / "labextension" / "test" / "fixtures" / "cluster.json"
FIXTURE_SCHEDULER, FIXTURE_DASHBOARD = "tcp://127.0.0.1:8786", "http://127.0.0.1:8787/status"


def test_the_cluster_answers_the_sidebar_is_tested_with_are_the_servers(api, client):
    cases = [("a local cluster", {}),
             ("a local cluster, with a Dask Gateway in Dask config", {"gateway.address": "http://gateway.example:8000"}),
             ("the synchronous scheduler", {"bytenite-nb.cluster": "sync"}),
             ("a scheduler of Dask config", {"scheduler-address": client.scheduler.address})]
    answers = []
    for name, settings in cases:
        with dask.config.set({"scheduler-address": None, "gateway.address": None, "bytenite-nb.cluster": None,
                              "bytenite-nb.local-cluster.workers": 3, **settings}):
            status, body = api("GET", "cluster")
        assert status == 200, body
        # The session cluster's address and dashboard vary from run to run: the fixture names fixed ones.
        text = json.dumps(body).replace(client.scheduler.address, FIXTURE_SCHEDULER)
        answers.append({"name": name, "answer": json.loads(text.replace(client.dashboard_link, FIXTURE_DASHBOARD))})
    served = {"about": "GET /bytenite-nb/cluster as the server answers it (tests/test_server.py keeps this file "
                       "up to date); test/cluster.spec.ts checks that the sidebar shows the server's words.",
              "answers": answers}
    if os.environ.get("BYTENITE_NB_WRITE_FIXTURES"):
        CLUSTER_FIXTURE.write_text(json.dumps(served, indent=1, sort_keys=True) + "\n")
    assert json.loads(CLUSTER_FIXTURE.read_text()) == served, (
        f"{CLUSTER_FIXTURE} is out of date: run this test with BYTENITE_NB_WRITE_FIXTURES=1")


@pytest.mark.parametrize("settings", [
    {},
    {"gateway.address": "http://127.0.0.1:9/gateway"},
    {"gateway.address": "http://127.0.0.1:9/gateway", "scheduler-address": "SESSION"},
    {"scheduler-address": "SESSION"},
])
def test_cluster_reports_the_cluster_get_client_uses(api, client, monkeypatch, settings):
    # What the section says is what bytenite_nb.cluster resolves, never a kind it does not implement.
    from bytenite_nb import cluster as resolver

    monkeypatch.setattr(resolver, "local_client", lambda workers=None: "a local cluster")
    values = {k: (client.scheduler.address if v == "SESSION" else v) for k, v in settings.items()}
    with dask.config.set({"scheduler-address": None, "gateway.address": None, **values}):
        status, body = api("GET", "cluster")
        used = resolver.get_client()
    assert status == 200, body
    if body["kind"] == "local":
        assert used == "a local cluster"
    else:
        assert body["kind"] == "scheduler" and used.scheduler.address == body["address"] == client.scheduler.address
        used.close()
    assert body["kind"] in ("local", "scheduler")
    assert ("note" in body) == (body["kind"] == "local" and "gateway.address" in settings)
    if "note" in body:
        assert "http://127.0.0.1:9/gateway" in body["note"] and "set the default cluster to gateway" in body["note"]


def test_a_job_runs_where_the_cluster_section_says(api, job_folder, client):
    # The job process does not share the server's Dask config: it is told the address.
    (job_folder / "fixed").write_text("")
    with dask.config.set({"scheduler-address": client.scheduler.address}):
        status, cluster = api("GET", "cluster")
        status, body = api("POST", "jobs", {"job": upper_job(), "path": "jobs/upper.bnjob.json", "id": "configured"})
    assert status == 201, body
    job = wait_for_job(api, "configured")
    assert job["state"] == "COMPLETE", job["log"]
    assert cluster["address"] == job["scheduler"] == job["cluster"]["scheduler"] == client.scheduler.address
    assert job["runsOn"] == cluster["description"]  # what the sidebar said before Run


# -- which process runs a job -------------------------------------------------------------


@pytest.mark.parametrize("command, runs", [
    (["/usr/bin/python3", "/venv/bin/bytenite-nb", "run", "job.json", "--id", "j1"], True),
    (["/venv/bin/bytenite-nb", "run", "job.json"], True),
    (["python", "-m", "bytenite_nb.cli", "run", "job.json", "--workers", "2"], True),
    (["python", "/venv/bin/bytenite-nb", "validate", "job.json", "--id", "j1"], False),
    (["python", "-m", "bytenite_nb.server.launcher", "/home/u/.bnb/jupyter-jobs/j1"], False),
    (["/usr/bin/python3", "-m", "jupyterlab", "--port", "8888"], False),
    ([], False),
])
def test_a_cli_run_is_told_by_its_command_line(command, runs):
    assert runs_cli_job(command) is runs


def test_a_process_command_line_is_read():
    assert "pytest" in " ".join(process_command(os.getpid()))
    assert process_command(2 ** 22 + 1) == []


def test_a_process_start_tells_a_process_from_a_later_one_with_the_same_pid():
    here = process_start(os.getpid())
    assert here == process_start(os.getpid()) and here.time <= time.time()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_start(child.pid) is None  # ended and reaped
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_start(other.pid).token != here.token
        assert here.time - 1 <= process_start(other.pid).time <= time.time() + 1
    finally:
        other.kill()
        other.wait()


def test_without_proc_the_start_comes_from_psutil(monkeypatch):
    monkeypatch.setattr(processes, "_has_proc", lambda: False)
    here = process_start(os.getpid())
    assert here.token.startswith("psutil:") and here == process_start(os.getpid())
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(lambda: process_start(zombie.pid) is None, "the child to end")
    assert process_start(zombie.pid, zombie_ok=True) is not None  # not reaped yet: still its pid
    zombie.wait()
    assert process_start(zombie.pid, zombie_ok=True) is None
    assert "pytest" in " ".join(process_command(os.getpid()))


def write_launch(bnb_home: Path, job_id: str, pid: int, start_token: str | None, *, started: float) -> dict:
    """The launch record a server leaves for a job process ``pid``."""
    launch = {"id": job_id, "name": job_id, "path": None, "baseDir": str(bnb_home), "scheduler": None,
              "runsOn": "here", "workers": None, "submitted": started, "started": started, "runs": 1,
              "host": processes.HOST, "pid": pid, "startToken": start_token, "secretsWithheld": False}
    folder = bnb_home / "jupyter-jobs" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "launch.json").write_text(json.dumps(launch))
    (folder / "output.log").write_text(f"--- run 1 of {job_id} ---\nworking on chunk 2\n")
    return launch


def record_running_job(store: JobStore, job_id: str) -> None:
    """A job mid-run: chunk 0 done, 1 failed, 2 running its second attempt, 3 waiting to retry, 4 pending."""
    store.create_job(job_id, job_id, {"name": job_id})
    store.set_chunks(job_id, [{"index": i} for i in range(5)])
    store.set_state(job_id, "RUNNING")
    store.update_chunks(job_id, [{"index": 0, "state": "DONE", "attempts": 1},
                                 {"index": 1, "state": "FAILED", "attempts": 2, "error": "boom"},
                                 {"index": 2, "state": "RUNNING", "attempts": 2},
                                 {"index": 3, "state": "RETRYING", "attempts": 1, "error": "flaky"}])
    store.set_first_attempts_running(job_id, 1)


@pytest.fixture
def sleeper():
    """A live process that is no job process."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


def test_reading_a_job_writes_nothing_and_the_reaper_records_a_lost_run(tmp_path, bnb_home, sleeper):
    store = JobStore(str(bnb_home / "jobs.sqlite"))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_start(gone.pid, zombie_ok=True).token
    gone.wait()
    write_launch(bnb_home, "lost", gone.pid, token, started=time.time())
    record_running_job(store, "lost")
    # A live process, but not the one started for the job: its pid was given to another since.
    write_launch(bnb_home, "pid-reused", sleeper.pid, "another-boot:1", started=time.time())
    record_running_job(store, "pid-reused")
    # The job process of this one still runs.
    write_launch(bnb_home, "alive", sleeper.pid, process_start(sleeper.pid).token, started=time.time())
    record_running_job(store, "alive")

    manager = JobManager(str(tmp_path))
    seq, updated = store.last_seq(), store.get_job("lost")["updated"]
    assert manager.job_summary("lost")["state"] == "RUNNING"
    assert manager.job_detail("lost")["attentionTotal"] == 3
    assert {j["id"] for j in manager.list_jobs()} == {"lost", "pid-reused", "alive"}
    assert (store.last_seq(), store.get_job("lost")["updated"]) == (seq, updated)  # reading wrote nothing

    assert sorted(manager.supervise()) == ["lost", "pid-reused"]
    for job_id, pid in (("lost", gone.pid), ("pid-reused", sleeper.pid)):
        record = store.get_job(job_id)
        assert record["state"] == "FAILED"
        assert record["error"].startswith(f"the job process (pid {pid}) ended without recording the end of the job; "
                                          "the chunks it had not finished are recorded CANCELLED")
        assert record["error"].endswith("its output ends with:\n--- run 1 of %s ---\nworking on chunk 2" % job_id)
        assert [(c["state"], c["error"]) for c in store.chunks(job_id)] == [
            ("DONE", None), ("FAILED", "boom"), ("CANCELLED", f"cancelled: the job process (pid {pid}) ended"),
            ("CANCELLED", f"cancelled: the job process (pid {pid}) ended"), ("CANCELLED", None)]
        assert record["progress"] == {"total": 5, "pending": 0, "running": 0, "retrying": 0, "done": 1,
                                      "failed": 1, "cancelled": 3, "resumed": 0}
        assert manager.job_summary(job_id)["canRerun"] is True
    assert store.get_job("alive")["state"] == "RUNNING"
    assert manager.processes.find("alive") == sleeper.pid and manager.processes.find("lost") is None
    seq = store.last_seq()
    assert manager.supervise() == []  # recorded once
    assert store.last_seq() == seq


def test_a_rerun_whose_process_died_before_recording_its_start_is_recorded_failed(tmp_path, bnb_home):
    store = JobStore(str(bnb_home / "jobs.sqlite"))
    store.create_job("again", "again", {"name": "again"})
    store.set_chunks("again", [{"index": i} for i in range(2)])
    store.update_chunks("again", [{"index": 0, "state": "DONE", "attempts": 1}, {"index": 1, "state": "PENDING"}])
    store.set_state("again", "FAILED", error="chunk 1 failed")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_start(gone.pid, zombie_ok=True).token
    gone.wait()
    write_launch(bnb_home, "again", gone.pid, token, started=store.get_job("again")["finished"] + 0.001)
    manager = JobManager(str(tmp_path))
    # The new run, as long as nothing says it ended: starting.
    assert (manager.job_summary("again")["state"], manager.job_summary("again")["error"]) == ("NEW", None)
    assert manager.supervise() == ["again"]
    summary = manager.job_summary("again")
    assert summary["state"] == "FAILED" and f"pid {gone.pid}" in summary["error"]
    assert [c["state"] for c in store.chunks("again")] == ["DONE", "CANCELLED"]


FAKE_CLI = """\
import sys, time
from bytenite_nb.store import default_store
default_store().create_job(sys.argv[sys.argv.index("--id") + 1], "from-the-cli", None, state="RUNNING")
print("recorded", flush=True)
time.sleep(600)
"""


def start_recording_process(tmp_path: Path, name: str, job_id: str, bnb_home: Path) -> subprocess.Popen:
    """A process whose script is called ``name`` that records ``job_id`` as running, then sleeps."""
    script = tmp_path / name
    script.write_text(FAKE_CLI)
    process = subprocess.Popen([sys.executable, str(script), "run", "job.json", "--id", job_id],
                               stdout=subprocess.PIPE, env={**os.environ, "BYTENITE_NB_HOME": str(bnb_home)})
    assert process.stdout.readline() == b"recorded\n"
    return process


def test_a_cli_run_is_found_and_cancelled_and_nothing_else_is(api, tmp_path, bnb_home):
    import sqlite3

    store = JobStore(str(bnb_home / "jobs.sqlite"))
    cli = start_recording_process(tmp_path, "bytenite-nb", "cli-run", bnb_home)
    kernel = start_recording_process(tmp_path, "kernel.py", "in-a-kernel", bnb_home)
    try:
        manager = JobManager(str(tmp_path))
        assert manager.processes.find("cli-run") == cli.pid
        assert manager.processes.find("in-a-kernel") is None  # never signal a process that is no CLI run
        status, body = api("POST", "jobs/in-a-kernel/cancel")
        assert status == 409 and "cancel it where it was started" in body["message"]
        # A record older than the process with its pid: that pid was given to the process since.
        with sqlite3.connect(str(bnb_home / "jobs.sqlite")) as db:
            db.execute("UPDATE jobs SET started=?, updated=? WHERE id='cli-run'", (time.time() - 3600,) * 2)
        assert manager.processes.find("cli-run") is None
        with sqlite3.connect(str(bnb_home / "jobs.sqlite")) as db:
            db.execute("UPDATE jobs SET started=NULL, updated=? WHERE id='cli-run'", (time.time(),))
        status, body = api("POST", "jobs/cli-run/cancel")
        assert status == 202 and body["cancelling"] is True and body["startedFrom"] == "elsewhere"
        assert cli.wait(60) == -signal.SIGINT
        assert store.get_job("cli-run")["state"] == "RUNNING"  # a CLI run records its own end; this one could not
    finally:
        for process in (cli, kernel):
            process.kill()
            process.wait()


# -- authentication -----------------------------------------------------------------------


def _rules(router):
    for rule in getattr(router, "rules", []):
        if isinstance(rule.target, tornado.routing.Router):
            yield from _rules(rule.target)
        else:
            yield rule


def _own_methods(handler: type) -> list[str]:
    return [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
            if getattr(handler, m.lower()) is not getattr(tornado.web.RequestHandler, m.lower())]


def test_every_route_rejects_unauthenticated_requests(jp_serverapp, http_server_client, jp_auth_header,
                                                      jp_asyncio_loop):
    app = jp_serverapp.web_app
    routes = [(rule.matcher.regex.pattern, rule.target) for rule in _rules(app.default_router)
              if "bytenite-nb" in getattr(getattr(rule.matcher, "regex", None), "pattern", "")]
    assert {handler for _, handler in routes} == {handler for _, handler in ROUTES}
    checked = 0
    for pattern, handler in routes:
        path = pattern.replace(r"(?P<job_id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})", "some-job").replace("/?$", "")
        path = path.replace("$", "")
        methods = _own_methods(handler)
        assert methods, handler
        for method in methods:
            body = "{}" if method != "GET" else None
            for headers in ({}, {"Authorization": "token not-the-token"}):
                response = jp_asyncio_loop.run_until_complete(
                    http_server_client.fetch(path, method=method, body=body, headers=headers, raise_error=False))
                assert response.code == 403, (method, path, headers, response.code)
            # With the token the same request gets past authentication.
            response = jp_asyncio_loop.run_until_complete(
                http_server_client.fetch(path, method=method, body=body, headers=jp_auth_header, raise_error=False))
            assert response.code != 403, (method, path)
            checked += 1
    assert checked >= len(ROUTES)


def test_cookie_sessions_need_the_xsrf_token_on_every_route(jp_serverapp, http_server_client, jp_asyncio_loop,
                                                            jp_base_url):
    """A browser session (a login cookie) is refused on every route without the
    XSRF token a cross-site page cannot read, and accepted with it."""
    import urllib.parse

    fetch = lambda path, **kw: jp_asyncio_loop.run_until_complete(  # noqa: E731
        http_server_client.fetch(path, raise_error=False, follow_redirects=False, **kw))
    login_url = jp_base_url.rstrip("/") + "/login"
    login = fetch(login_url)
    xsrf = next(c.split(";")[0].split("=", 1)[1] for c in login.headers.get_list("Set-Cookie")
                if c.startswith("_xsrf="))
    body = urllib.parse.urlencode({"_xsrf": xsrf, "password": jp_serverapp.identity_provider.token})
    logged_in = fetch(login_url, method="POST", body=body, headers={"Cookie": f"_xsrf={xsrf}"})
    assert logged_in.code == 302, logged_in.code
    session = "; ".join(c.split(";")[0] for c in logged_in.headers.get_list("Set-Cookie")) + f"; _xsrf={xsrf}"
    components = jp_base_url.rstrip("/") + "/bytenite-nb/components"
    assert fetch(components, headers={"Cookie": session}).code == 200  # reads need no token
    routes = [(rule.matcher.regex.pattern, rule.target) for rule in _rules(jp_serverapp.web_app.default_router)
              if "bytenite-nb" in getattr(getattr(rule.matcher, "regex", None), "pattern", "")]
    checked = 0
    for pattern, handler in routes:
        path = pattern.replace(r"(?P<job_id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})", "some-job")
        path = path.replace("/?$", "").replace("$", "")
        for method in _own_methods(handler):
            if method == "GET":
                continue
            refused = fetch(path, method=method, body="{}", headers={"Cookie": session})
            assert refused.code == 403, (method, path, refused.code)
            allowed = fetch(path, method=method, body="{}", headers={"Cookie": session, "X-XSRFToken": xsrf})
            assert allowed.code != 403, (method, path)
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize("job_id", ["..", "..%2F..%2Fetc", "a%2F..%2Fb", "%2e%2e", "a/../b", ".hidden", "-x"])
def test_a_job_id_that_tries_to_escape_is_refused(http_server_client, jp_auth_header, jp_base_url, jp_asyncio_loop,
                                                 job_id):
    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("POST", "/rerun")):
        response = jp_asyncio_loop.run_until_complete(http_server_client.fetch(
            f"{jp_base_url.rstrip('/')}/bytenite-nb/jobs/{job_id}{suffix}", method=method, raise_error=False,
            body="{}" if method == "POST" else None, headers=jp_auth_header))
        assert response.code in (400, 404), (method, job_id, response.code)
