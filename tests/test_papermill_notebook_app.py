"""A notebook as the app: papermill per chunk on real Dask workers, executed
notebooks kept with the job's records, the failing cell named, no secrets in
executed notebooks, notebooks on S3, timeouts."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

import bytenite_nb as bn
from bytenite_nb import store as st
from bytenite_nb.apps.notebook import NotebookApp, executed_notebooks

SECRET = "tok-7f3a9c-do-not-write"


def app_notebook(body: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("chunk_path = ''\nresults_dir = ''\nparams = {}\nchunk_number = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Line stats of one chunk"), params,
                *[nbformat.v4.new_code_cell(src) for src in body]]
    return nb


STATS = [
    "import json, os\nlines = open(chunk_path).read().splitlines()",
    "if chunk_number == params.get('fail_on'):\n    raise ValueError(f'chunk {chunk_number} is refused')",
    # the secret comes from the environment, as the runtime contract gives it
    "token = json.loads(os.environ['APP_PARAMS']).get('api_token', '')\n"
    "stats = {'chunk': chunk_number, 'lines': len(lines), 'longest': max(map(len, lines)),\n"
    "         'scale': params.get('scale'), 'token_length': len(token)}\n"
    "open(os.path.join(results_dir, 'stats.jsonl'), 'w').write(json.dumps(stats) + '\\n')\n"
    "print('wrote', stats)",
]


def text_source(tmp_path, n=30):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"{'x' * (i % 7 + 1)}\n" for i in range(n)))
    return path


def notebook_job(tmp_path, app_spec, **params):
    return bn.Job(source=str(text_source(tmp_path)), partitioner="split-lines", app=app_spec, assembler="concat",
                  destination=str(tmp_path / "out"),
                  params={"partitioner": {"lines_per_chunk": 10}, "app": params,
                          "assembler": {"output_name": "stats.jsonl"}})


def test_notebook_app_runs_every_chunk_and_keeps_executed_notebooks(client, tmp_path, bnb_home):
    nbformat.write(app_notebook(STATS), tmp_path / "stats.ipynb")
    job = notebook_job(tmp_path, {"notebook": "stats.ipynb"}, scale=2, api_token=SECRET).copy(base_dir=str(tmp_path))
    result = job.run(client=client)
    rows = [json.loads(line) for line in (tmp_path / "out" / "stats.jsonl").read_text().splitlines()]
    assert [r["chunk"] for r in rows] == [0, 1, 2]
    assert [r["lines"] for r in rows] == [10, 10, 10]
    assert all(r["scale"] == 2 and r["token_length"] == len(SECRET) for r in rows)
    # executed notebooks are with the job's records, not in the output
    assert sorted(os.listdir(tmp_path / "out")) == ["_SUCCESS", "stats.jsonl"]
    kept = executed_notebooks(result.job_id)
    assert [os.path.basename(u) for u in kept] == ["chunk_0000.ipynb", "chunk_0001.ipynb", "chunk_0002.ipynb"]
    assert all(u.startswith("file://" + str(bnb_home / "records" / result.job_id)) for u in kept)
    executed = nbformat.read(kept[1].removeprefix("file://"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])][0]
    assert "chunk_number = 1" in injected.source and 'params = {"scale": 2}' in injected.source
    assert "wrote {'chunk': 1" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    # the secret param reached the notebook, but no record, notebook or output holds it
    for folder in (bnb_home, tmp_path / "out"):
        for root, _, files in os.walk(folder):
            for name in files:
                assert SECRET.encode() not in open(os.path.join(root, name), "rb").read(), name


def test_failed_chunk_names_the_failing_cell(client, tmp_path):
    nbformat.write(app_notebook(STATS), tmp_path / "stats.ipynb")
    job = notebook_job(tmp_path, {"notebook": str(tmp_path / "stats.ipynb")}, fail_on=1).copy(
        config={"maxTaskRetries": 0})
    handle = job.submit(client=client)
    with pytest.raises(bn.JobFailed) as failed:
        handle.result()
    message = str(failed.value)
    assert ("notebook stats failed at cell 4 (\"if chunk_number == params.get('fail_on'):\"): "
            "ValueError: chunk 1 is refused") in message
    assert "chunk_0001.ipynb" in message
    chunk = st.default_store().chunks(handle.job_id, states=[st.CHUNK_FAILED])[0]
    assert chunk["idx"] == 1 and "failed at cell 4" in chunk["error"]
    assert "ValueError: chunk 1 is refused" in chunk["error"].split("--- stderr (tail) ---")[1]
    assert not (tmp_path / "out" / "stats.jsonl").exists()


def test_notebook_on_s3(client, tmp_path, s3):
    fs, bucket = s3
    fs.pipe(f"{bucket}/apps/stats.ipynb", nbformat.writes(app_notebook(STATS)).encode())
    job = notebook_job(tmp_path, {"notebook": f"s3://{bucket}/apps/stats.ipynb"})
    job.run(client=client)
    rows = (tmp_path / "out" / "stats.jsonl").read_text().splitlines()
    assert len(rows) == 3


def test_task_timeout_stops_the_kernel(client, tmp_path):
    nbformat.write(app_notebook(["import time\ntime.sleep(600)"]), tmp_path / "slow.ipynb")
    job = notebook_job(tmp_path, {"notebook": str(tmp_path / "slow.ipynb")}).copy(
        config={"taskTimeout": 5, "maxTaskRetries": 0}, params={"partitioner": {"lines_per_chunk": 30}})
    with pytest.raises(bn.JobFailed) as failed:
        job.run(client=client)
    assert "notebook slow timed out after 5s (taskTimeout)" in str(failed.value)


def test_bad_notebook_specs_are_named(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{not a notebook")
    for spec, expected in (({"notebook": "missing.ipynb"}, "app.notebook: no such notebook"),
                           ({"notebook": "broken.ipynb"}, "is not a notebook"),
                           ({"notebook": ""}, "app.notebook: must not be empty"),
                           ({"notebook": 3}, "app.notebook: expected a path or URL of a .ipynb file, got 3"),
                           ({"notebook": "a.ipynb", "kernal": "x"},
                            'app.kernal: unknown field (did you mean "kernel"?)'),
                           ({"notebook": "broken.ipynb", "kernel": 3}, "app.kernel: expected a kernel name")):
        job = bn.Job(source="in.txt", app=spec, destination="out/", base_dir=str(tmp_path))
        with pytest.raises(bn.JobValidationError) as err:
            job.validate(check_storage=False)
        assert expected in str(err.value)


def test_spec_round_trip_and_fingerprint(tmp_path):
    nbformat.write(app_notebook(STATS), tmp_path / "a.ipynb")
    spec = {"notebook": "a.ipynb", "kernel": "python3", "schema": {"type": "object"}, "cwd": "."}
    app = NotebookApp.from_spec(spec, base_dir=str(tmp_path))
    assert app.to_spec() == spec and app.name == "a" and app.url == str(tmp_path / "a.ipynb")
    before = app.fingerprint()
    nbformat.write(app_notebook(STATS[:1]), tmp_path / "a.ipynb")
    assert app.fingerprint() != before  # an edited notebook never reuses staged chunks
