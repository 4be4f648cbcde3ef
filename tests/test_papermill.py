"""papermill on every fsspec URL (the papermill.io entry points), and
``bytenite-nb notebook run`` (papermill runs recorded in the job store)."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import fsspec
import nbformat
import papermill
import pytest
from click.testing import CliRunner

from bytenite_nb import store as st
from bytenite_nb.cli import main
from bytenite_nb.notebook_run import parse_value, run_notebook
from bytenite_nb.papermill_io import handler, register


def job_notebook() -> nbformat.NotebookNode:
    """A small job notebook: a parameters cell, a print, a check that can fail."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("n = 2\nword = 'ab'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A job notebook"), params,
                nbformat.v4.new_code_cell("print('result:', word * n)"),
                nbformat.v4.new_code_cell("assert n < 10, f'n is {n}, too many'")]
    return nb


def printed(nb_text: str) -> str:
    nb = nbformat.reads(nb_text, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_handler_is_registered_through_papermill_entry_points():
    from papermill.iorw import papermill_io

    names = {ep.name for ep in entry_points(group="papermill.io")}
    assert {"s3://", "gs://", "az://", "abfs://", "memory://", "file://"} <= names
    for url in ("s3://b/x.ipynb", "gs://b/x.ipynb", "az://c/x.ipynb", "abfs://c/x.ipynb", "memory://x.ipynb"):
        assert papermill_io.get_handler(url) is handler
    # papermill keeps its own handlers for plain paths and web links
    assert papermill_io.get_handler("nb.ipynb") is not handler
    assert papermill_io.get_handler("https://example.org/nb.ipynb") is not handler
    assert "zip://" in register()  # any other scheme fsspec knows, at run time


def test_papermill_reads_and_writes_memory_urls():
    fs = fsspec.filesystem("memory")
    fs.pipe("/pm/in.ipynb", nbformat.writes(job_notebook()).encode())
    papermill.execute_notebook("memory://pm/in.ipynb", "memory://pm/out/run.ipynb", parameters={"n": 3},
                               progress_bar=False)
    assert "result: ababab" in printed(fs.cat("/pm/out/run.ipynb").decode())
    assert handler.listdir("memory://pm/out") == ["memory:///pm/out/run.ipynb"]


def test_papermill_on_s3_with_credentials_from_the_environment(s3):
    fs, bucket = s3
    fs.pipe(f"{bucket}/notebooks/in.ipynb", nbformat.writes(job_notebook()).encode())
    papermill.execute_notebook(f"s3://{bucket}/notebooks/in.ipynb", f"s3://{bucket}/runs/out.ipynb",
                               parameters={"word": "xy"}, progress_bar=False)
    assert "result: xyxy" in printed(fs.cat(f"{bucket}/runs/out.ipynb").decode())


def test_parse_value_reads_like_papermill():
    assert [parse_value(v) for v in ("True", "False", "None", "12", "-1.5", "1e3", "text", "0x10")] == [
        True, False, None, 12, -1.5, 1000.0, "text", "0x10"]


def test_cli_runs_the_notebook_and_records_the_run(tmp_path):
    nb_path = tmp_path / "job.ipynb"
    nbformat.write(job_notebook(), nb_path)
    out = tmp_path / "runs" / "out.ipynb"
    result = CliRunner().invoke(main, ["notebook", "run", str(nb_path), str(out), "-p", "n", "3", "-r", "word", "7",
                                       "--id", "wc-run-1"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wc-run-1 COMPLETE in ")
    assert "result: 777" in printed(out.read_text())  # -r kept "7" as text
    record = st.default_store().get_job("wc-run-1")
    assert record["kind"] == "notebook" and record["state"] == st.COMPLETE
    assert record["spec"]["parameters"] == {"n": 3, "word": "7"}
    assert record["spec"]["cwd"] == str(tmp_path)  # runs beside the notebook, as in JupyterLab
    assert record["result"]["output"] == str(out)
    listed = CliRunner().invoke(main, ["jobs"])
    assert "wc-run-1" in listed.output and "COMPLETE" in listed.output


def test_cli_parameters_from_yaml_and_file(tmp_path):
    nb_path = tmp_path / "job.ipynb"
    nbformat.write(job_notebook(), nb_path)
    (tmp_path / "p.yaml").write_text("n: 4\nword: z\n")
    result = CliRunner().invoke(main, ["notebook", "run", str(nb_path), "memory://cli/out.ipynb",
                                       "-f", str(tmp_path / "p.yaml"), "-y", "{word: q}", "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)
    assert run["parameters"] == {"n": 4, "word": "q"} and run["state"] == "COMPLETE"
    assert "result: qqqq" in printed(fsspec.filesystem("memory").cat("/cli/out.ipynb").decode())
    bad = CliRunner().invoke(main, ["notebook", "run", str(nb_path), "memory://cli/x.ipynb", "-y", "[1, 2]"])
    assert bad.exit_code == 2 and "--yaml: expected a mapping" in bad.output


def test_cli_failing_cell_is_named_and_recorded(tmp_path):
    nb_path = tmp_path / "job.ipynb"
    nbformat.write(job_notebook(), nb_path)
    out = tmp_path / "out.ipynb"
    result = CliRunner().invoke(main, ["notebook", "run", str(nb_path), str(out), "-p", "n", "12",
                                       "--id", "too-many"])
    assert result.exit_code == 1
    assert "cell 4 (\"assert n < 10, f'n is {n}, too many'\") raised AssertionError: n is 12, too many" in result.output
    record = st.default_store().get_job("too-many")
    assert record["state"] == st.FAILED and "cell 4" in record["error"]
    assert "AssertionError" in out.read_text()  # the executed notebook keeps the traceback


def test_cli_refuses_secret_parameters_and_missing_things(tmp_path):
    nb_path = tmp_path / "job.ipynb"
    nbformat.write(job_notebook(), nb_path)
    secret = CliRunner().invoke(main, ["notebook", "run", str(nb_path), str(tmp_path / "o.ipynb"),
                                       "-p", "api_token", "hunter2"])
    assert secret.exit_code == 2 and "parameters.api_token: looks like a secret" in secret.output
    assert "hunter2" not in secret.output
    assert st.default_store().list_jobs() == []  # nothing ran, nothing recorded
    assert not (tmp_path / "o.ipynb").exists()
    missing = CliRunner().invoke(main, ["notebook", "run", str(tmp_path / "nope.ipynb"), "o.ipynb"])
    assert missing.exit_code == 2 and "notebook: no such notebook" in missing.output
    kernel = CliRunner().invoke(main, ["notebook", "run", str(nb_path), str(tmp_path / "o.ipynb"),
                                       "-k", "no-such-kernel"])
    assert kernel.exit_code == 2 and "kernel: no kernel named 'no-such-kernel'" in kernel.output
    assert st.default_store().list_jobs(kind="notebook")[0]["state"] == st.FAILED


def test_run_notebook_to_s3(s3, tmp_path):
    fs, bucket = s3
    nb_path = tmp_path / "job.ipynb"
    nbformat.write(job_notebook(), nb_path)
    run = run_notebook(str(nb_path), f"s3://{bucket}/runs/a.ipynb", {"n": 1, "word": "s3!"})
    assert run.ok and run.to_dict()["output"] == f"s3://{bucket}/runs/a.ipynb"
    assert "result: s3!" in printed(fs.cat(f"{bucket}/runs/a.ipynb").decode())


@pytest.mark.parametrize("bad_id", ["has space", "../up"])
def test_bad_run_id_is_refused(tmp_path, bad_id):
    nb_path = tmp_path / "job.ipynb"
    nbformat.write(job_notebook(), nb_path)
    result = CliRunner().invoke(main, ["notebook", "run", str(nb_path), "o.ipynb", "--id", bad_id])
    assert result.exit_code == 2 and "id: expected letters" in result.output
