"""config.minSuccessRatio: a job whose failed chunks stay within the budget
completes without them (listed in _SUCCESS with their errors; the assembler
never sees them); over the budget it fails as before. A rerun of the failed
chunks runs only those and publishes the whole output."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

import bytenite_nb as bn
from bytenite_nb.cli import main
from bytenite_nb.store import JobStore

FLAKY = "flaky-marker"


def fails_on_marked_lines(chunk_path, results_dir, params):
    """Uppercase the chunk; fail for a line holding 'bad' while the marker file exists."""
    text = open(chunk_path).read()
    if "bad" in text and os.path.exists(params["marker"]):
        raise RuntimeError(f"cannot handle {text.strip()!r}")
    return text.upper()


def make_job(tmp_path, ratio, fail_fast=False):
    (tmp_path / "in.txt").write_text("a\nbad 1\nc\nd\nbad 2\nf\ng\nh\ni\nj\n")
    (tmp_path / FLAKY).write_text("")
    return bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app=fails_on_marked_lines,
                  assembler="concat", destination=str(tmp_path / "out"),
                  params={"partitioner": {"lines_per_chunk": 1}, "app": {"marker": str(tmp_path / FLAKY)},
                          "assembler": {"output_name": "all.txt"}},
                  config={"minSuccessRatio": ratio, "maxTaskRetries": 0, "failFast": fail_fast})


def test_within_the_budget_the_job_completes_without_the_failed_chunks(tmp_path, client, monkeypatch):
    monkeypatch.setenv("BYTENITE_NB_HOME", str(tmp_path / "home"))
    job = make_job(tmp_path, 0.8)
    result = job.run(client=client, id="partial-1")
    assert result.state == "COMPLETE"
    assert (tmp_path / "out" / "all.txt").read_text() == "A\nC\nD\nF\nG\nH\nI\nJ\n"
    success = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert [(c["index"], c["covers"].endswith("in.txt[2:8]")) for c in success["failedChunks"]] == \
        [(1, True), (4, False)]
    assert "cannot handle 'bad 1'" in success["failedChunks"][0]["error"]
    assert success["minSuccessRatio"] == 0.8
    assert any("2 of 10 chunk(s) failed, within minSuccessRatio 0.8" in w for w in result.warnings)

    # The same id again: complete, nothing runs (the partial output stands until asked) ...
    again = job.run(client=client, id="partial-1")
    assert again.reused and (tmp_path / "out" / "all.txt").read_text().count("\n") == 8
    # ... until the failed chunks are rerun: only those two run, and the output is whole.
    os.remove(tmp_path / FLAKY)
    rerun = job.run(client=client, id="partial-1", rerun_failed=True)
    assert rerun.state == "COMPLETE" and rerun.resumed_chunks == 8
    assert (tmp_path / "out" / "all.txt").read_text() == "A\nBAD 1\nC\nD\nBAD 2\nF\nG\nH\nI\nJ\n"
    success = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert "failedChunks" not in success and success["chunkCount"] == 10


def test_over_the_budget_the_job_fails_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BYTENITE_NB_HOME", str(tmp_path / "home"))
    for ratio, fail_fast in ((0.9, False), (0.85, True)):
        with pytest.raises(bn.JobFailed, match="2 of 10 chunk"):
            make_job(tmp_path, ratio, fail_fast).run(scheduler="sync", force=True)
        assert not (tmp_path / "out").exists()


def test_fail_fast_waits_for_the_budget_to_be_spent(tmp_path, monkeypatch):
    monkeypatch.setenv("BYTENITE_NB_HOME", str(tmp_path / "home"))
    result = make_job(tmp_path, 0.8, fail_fast=True).run(scheduler="sync")
    assert result.state == "COMPLETE" and (tmp_path / "out" / "all.txt").read_text().count("\n") == 8


def test_rerun_from_the_cli_and_its_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("BYTENITE_NB_HOME", str(tmp_path / "home"))
    make_job(tmp_path, 0.5).run(scheduler="sync", id="partial-cli")
    os.remove(tmp_path / FLAKY)
    runner = CliRunner()
    out = runner.invoke(main, ["rerun", "partial-cli", "--failed", "--scheduler", "sync"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "out" / "all.txt").read_text().count("\n") == 10
    assert "COMPLETE" in out.output
    out = runner.invoke(main, ["rerun", "no-such-job", "--failed"])
    assert out.exit_code == 2 and "no job 'no-such-job'" in out.output
    out = runner.invoke(main, ["rerun", "partial-cli"])
    assert out.exit_code == 2 and "--failed" in out.output
    with pytest.raises(bn.JobValidationError, match="id: no earlier run of job never-ran"):
        make_job(tmp_path, 0.5).run(scheduler="sync", id="never-ran", rerun_failed=True)


def test_min_success_ratio_is_checked(tmp_path):
    for bad in (0, 1.5, "half"):
        with pytest.raises(bn.JobValidationError, match="config.minSuccessRatio"):
            make_job(tmp_path, bad).validate()
