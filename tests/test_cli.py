"""The bytenite-nb command, run as users run it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def cli(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "bytenite_nb.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=dict(os.environ))


@pytest.fixture
def job_file(tmp_path, text_file):
    (tmp_path / "app.py").write_text(textwrap.dedent("""\
        import os
        data = open(os.path.join(os.environ["TASK_DIR"], "data.bin"), "rb").read()
        open(os.path.join(os.environ["TASK_RESULTS_DIR"], "out.txt"), "wb").write(data.upper())
        """))
    path = tmp_path / "job.json"
    path.write_text(json.dumps({
        "name": "upper",
        "partitioner": "split-lines",
        "app": {"command": [sys.executable, "app.py"]},
        "assembler": "concat",
        "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "in.txt"}},
        "dataDestination": "out/",
        "params": {"partitioner": {"lines_per_chunk": 100}, "assembler": {"output_name": "upper.txt"}},
    }))
    return path


def test_run_validate_plan_and_jobs(job_file, tmp_path, text_file):
    done = cli("validate", job_file)
    assert done.returncode == 0, done.stderr
    assert "valid (split-lines -> app.py -> concat; 1 source file(s))" in done.stdout

    done = cli("plan", job_file)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("5 chunk(s)")
    assert "in.txt[0:" in done.stdout
    refs = json.loads(cli("plan", job_file, "--json").stdout)
    assert [r["index"] for r in refs] == [0, 1, 2, 3, 4]

    done = cli("run", job_file, "--id", "cli-run-1", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "cli-run-1 COMPLETE: 5 chunk(s)" in done.stdout
    assert (tmp_path / "out" / "upper.txt").read_text() == text_file.read_text().upper()
    # not a terminal: plain progress lines, not a bar
    assert "[cli-run-1] COMPLETE" in done.stderr and "\r" not in done.stderr

    again = cli("run", job_file, "--id", "cli-run-1", "--scheduler", "sync")
    assert again.returncode == 0 and "already COMPLETE" in again.stdout

    listing = cli("jobs")
    assert listing.returncode == 0 and "cli-run-1" in listing.stdout and "COMPLETE" in listing.stdout
    detail = cli("jobs", "cli-run-1")
    assert "chunks: 5/5 done\n" in detail.stdout
    assert "upper.txt" in detail.stdout
    record = json.loads(cli("jobs", "cli-run-1", "--json").stdout)
    assert record["state"] == "COMPLETE" and len(record["chunks"]) == 5 and record["chunkPage"]["total"] == 5


def test_run_json_result(job_file):
    done = cli("run", job_file, "--scheduler", "sync", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["state"] == "COMPLETE" and result["n_chunks"] == 5
    assert result["outputs"][0]["name"] == "upper.txt"


def test_invalid_job_exits_2_with_one_paragraph(tmp_path, job_file):
    data = json.loads(job_file.read_text())
    data["params"]["partitioner"]["lines_per_chunk"] = "ten"
    job_file.write_text(json.dumps(data))
    for command in ("validate", "run", "plan"):
        done = cli(command, job_file)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.startswith("error: invalid job")
        assert 'params.partitioner.lines_per_chunk: expected integer, got "ten"' in done.stderr
        assert "Traceback" not in done.stderr


def test_failed_job_exits_1(tmp_path, job_file):
    data = json.loads(job_file.read_text())
    data["app"] = {"command": ["sh", "-c", "echo disk full >&2; exit 4"]}
    data["config"] = {"maxTaskRetries": 0}
    job_file.write_text(json.dumps(data))
    done = cli("run", job_file, "--scheduler", "sync")
    assert done.returncode == 1
    assert done.stderr.count("error: ") == 1
    assert "exited with status 4" in done.stderr and "disk full" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_missing_job_file():
    done = cli("run", "/nonexistent/job.json")
    assert done.returncode == 2
    assert "cannot read job file" in done.stderr


def test_components_lists_params():
    done = cli("components")
    assert done.returncode == 0
    for name in ("split-lines", "replicate", "files", "passthrough", "concat", "zip", "identity"):
        assert f"  {name}" in done.stdout
    assert "- chunk_size (integer)" in done.stdout
    assert "- num_replicas (integer = 2)" in done.stdout
    assert "- on (string|array): The key column" in done.stdout  # merge-key's anyOf
    data = json.loads(cli("components", "assembler", "--json").stdout)
    assert {c["name"] for c in data["assembler"]} >= {"concat", "zip", "passthrough"}
    assert data["assembler"][0]["schema"]["type"] == "object"


def test_unknown_job_id():
    done = cli("jobs", "no-such-job")
    assert done.returncode == 1 and "no job 'no-such-job'" in done.stderr


def test_progress_bar_on_a_terminal(job_file, tmp_path):
    """On a terminal the run shows a live bar (tqdm), not plain lines."""
    import pty

    output = bytearray()

    def read(fd):
        data = os.read(fd, 65536)
        output.extend(data)
        return data

    argv = [sys.executable, "-m", "bytenite_nb.cli", "run", str(job_file), "--scheduler", "sync"]
    status = pty.spawn(argv, read)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "5/5" in text and "chunk" in text and "|" in text  # a tqdm bar: "100%|####| 5/5 [..., chunk/s]"
    assert "\r" in text  # redrawn in place
    assert "[" + "upper" not in text.split("COMPLETE:")[0].split("\n")[0]  # no plain progress lines
    assert (tmp_path / "out" / "upper.txt").exists()


def test_a_job_of_100k_chunks_is_shown_a_page_at_a_time(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bytenite_nb.cli import main as cli_main
    from bytenite_nb.store import JobStore

    monkeypatch.setenv("BYTENITE_NB_HOME", str(tmp_path))
    store = JobStore(str(tmp_path / "jobs.sqlite"))
    store.create_job("big", "big", {"name": "big"})
    store.set_chunks("big", [{"index": i, "size": 10, "covers": f"in.txt[{i * 10}:{i * 10 + 10}]"}
                             for i in range(100_000)])
    store.update_chunks("big", [{"index": i, "state": "DONE", "attempts": 1} for i in range(90_000)])
    store.update_chunks("big", [{"index": i, "state": "FAILED", "attempts": 3, "error": f"boom {i}"}
                                for i in range(90_000, 90_050)])
    shown = CliRunner().invoke(cli_main, ["jobs", "big"])
    assert shown.exit_code == 0, shown.output
    assert "chunks: 90000/100000 done, 50 failed" in shown.output, shown.output
    assert shown.output.count("FAILED after 3 attempt(s)") == 20
    assert "... and 30 more failed chunk(s)" in shown.output
    page = json.loads(CliRunner().invoke(cli_main, ["jobs", "big", "--json", "--offset", "99990",
                                                    "--limit", "5"]).output)
    assert [c["idx"] for c in page["chunks"]] == [99990, 99991, 99992, 99993, 99994]
    assert page["chunkPage"] == {"offset": 99990, "limit": 5, "total": 100_000} and page["failedTotal"] == 50
