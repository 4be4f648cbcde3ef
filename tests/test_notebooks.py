"""Every example notebook of notebooks/, executed with papermill on a real Dask
cluster, with assertions on what it produced (files and printed results)."""

from __future__ import annotations

import collections
import csv
import json
import os
import re
import struct
from pathlib import Path

import nbformat
import papermill
import pytest
from click.testing import CliRunner

from bytenite_nb import store as st
from bytenite_nb.cli import main

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXAMPLES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def execute(name: str, tmp_path, client, **parameters) -> nbformat.NotebookNode:
    """Run an example as CI does: papermill, in the notebooks folder, on the test cluster."""
    out = tmp_path / f"executed-{name}"
    parameters.setdefault("scheduler", client.scheduler.address)
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=parameters, cwd=str(NOTEBOOKS),
                               progress_bar=False, kernel_name="python3")
    return nbformat.read(out, as_version=4)


def printed(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def check_word_count(nb, work: Path):
    direct = collections.Counter()
    for path in sorted((work / "data").glob("*.txt")):
        direct.update(re.findall(r"[A-Za-z']+", path.read_text().lower()))
    totals = collections.Counter()
    for line in (work / "output" / "word_counts.tsv").read_text().splitlines():
        word, n = line.split("\t")
        totals[word] += int(n)
    assert totals == direct and sum(totals.values()) > 5000
    text = printed(nb)
    assert f"{sum(totals.values())} words, {len(totals)} distinct" in text
    assert re.search(r"\[word-count-[^\]]+\] COMPLETE +(\d+)/\1 done", text)  # progress lines, not a widget
    assert "JobBuilder: word-count:" in text
    assert "--- word_counts.tsv ---" in text  # the result's text preview


def check_csv_statistics(nb, work: Path):
    with open(work / "data" / "readings.csv") as f:
        rows = list(csv.DictReader(f))
    with open(work / "output" / "summary.csv") as f:
        summary = {r["column"]: r for r in csv.DictReader(f)}
    temperatures = [float(r["temperature"]) for r in rows]
    assert int(summary["temperature"]["rows"]) == len(rows) == 2000
    assert float(summary["temperature"]["mean"]) == pytest.approx(sum(temperatures) / len(temperatures), abs=1e-3)
    assert float(summary["humidity"]["max"]) == max(float(r["humidity"]) for r in rows)
    with open(work / "output" / "chunk_stats.csv") as f:
        per_chunk = list(csv.DictReader(f))
    assert [int(r["chunk"]) for r in per_chunk] == [0, 1, 2]
    assert sum(int(r["rows"]) for r in per_chunk) == len(rows)
    assert "3 chunks; 2000 readings; mean temperature" in printed(nb)


def check_python_function_app(nb, work: Path):
    images = sorted((work / "output").glob("chunk_*/julia.png"))
    assert len(images) == 6
    data = [p.read_bytes() for p in images]
    assert all(d.startswith(b"\x89PNG") and struct.unpack(">II", d[16:24]) == (96, 96) for d in data)
    assert len(set(data)) == 6  # six different sets
    assert "6 images, [(96, 96)] pixels" in printed(nb)


def check_notebook_as_app(nb, work: Path):
    direct = collections.Counter(line.split()[1] for line in (work / "server.log").read_text().splitlines())
    rows = [json.loads(line) for line in (work / "output" / "levels.jsonl").read_text().splitlines()]
    assert [r["chunk"] for r in rows] == [0, 1, 2, 3]
    for level in ("INFO", "WARNING", "ERROR"):
        assert sum(r[level] for r in rows) == direct[level]
    text = printed(nb)
    assert "4 chunks; levels: " in text and "4 executed notebooks kept" in text
    assert sorted(os.listdir(work / "output")) == ["_SUCCESS", "levels.jsonl"]  # no executed notebook in the output
    assert "Kernel is running over TCP" not in text  # the per-chunk kernels' own chatter stays in their logs


def check_papermill_job(nb, work: Path):
    source = (work / "sample.log").read_text().splitlines()
    matched = (work / "output" / "matches.log").read_text().splitlines()
    assert matched == [line for line in source if re.search("ERROR|WARNING", line)]
    assert f"{len(matched)} line(s) match 'ERROR|WARNING'" in printed(nb)


CHECKS = {
    "01_first_job_word_count.ipynb": ({}, check_word_count),
    "02_csv_statistics.ipynb": ({}, check_csv_statistics),
    "03_python_function_app.ipynb": ({}, check_python_function_app),
    "04_notebook_as_app.ipynb": ({}, check_notebook_as_app),
    "05_papermill_job.ipynb": (None, check_papermill_job),
}


def test_every_example_is_checked_and_ready_for_papermill():
    assert EXAMPLES == sorted(CHECKS)
    total = 0
    for path in [*NOTEBOOKS.glob("*.ipynb"), *NOTEBOOKS.glob("apps/*.ipynb")]:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: one cell tagged parameters"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name}: no outputs"
        total += path.stat().st_size
    assert total < 2**20


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_notebook(name, tmp_path, client):
    extra, check = CHECKS[name]
    work = tmp_path / "work"
    if extra is None:  # the papermill job notebook has its own parameters
        work.mkdir()
        source = work / "sample.log"
        source.write_text("".join(f"{i:05d} {['INFO', 'WARNING', 'ERROR', 'INFO'][i % 4]} event {i}\n"
                                  for i in range(900)))
        nb = execute(name, tmp_path, client, source=str(source), destination=str(work / "output"))
    else:
        nb = execute(name, tmp_path, client, work_dir=str(work), **extra)
    check(nb, work)


def test_papermill_job_notebook_through_the_cli(tmp_path, client):
    source = tmp_path / "app.log"
    source.write_text("".join(f"{i} {'ERROR' if i % 9 == 0 else 'INFO'} x\n" for i in range(400)))
    out = tmp_path / "runs" / "errors.ipynb"
    result = CliRunner().invoke(main, [
        "notebook", "run", str(NOTEBOOKS / "05_papermill_job.ipynb"), str(out),
        "-p", "source", str(source), "-p", "destination", str(tmp_path / "errors"), "-p", "pattern", "ERROR",
        "-p", "lines_per_chunk", "100", "-p", "scheduler", client.scheduler.address, "--id", "errors-report"])
    assert result.exit_code == 0, result.output
    matched = (tmp_path / "errors" / "matches.log").read_text().splitlines()
    assert matched == [f"{i} ERROR x" for i in range(0, 400, 9)]
    assert "45 line(s) match 'ERROR' in 4 chunk(s)" in printed(nbformat.read(out, as_version=4))
    store = st.default_store()
    run = store.get_job("errors-report")
    assert run["kind"] == "notebook" and run["state"] == st.COMPLETE
    assert run["spec"]["parameters"]["pattern"] == "ERROR"
    jobs = store.list_jobs(kind="job")
    assert [j["name"] for j in jobs] == ["grep-lines"] and jobs[0]["state"] == st.COMPLETE
