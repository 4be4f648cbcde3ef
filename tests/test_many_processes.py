"""32 jobs started at once from 32 processes on one $BYTENITE_NB_HOME - the
CLI, notebooks run by papermill and the Jupyter server's job launcher - all
complete; no process meets "database is locked"; `bytenite-nb jobs` lists
each job once with its true state, and each output is right."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat

CLI_JOBS, NOTEBOOK_JOBS, LAUNCHER_JOBS = 22, 4, 6


def job_dict(k: int) -> dict:
    return {"name": f"many-{k}", "partitioner": "split-lines", "app": "identity", "assembler": "concat",
            "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "in.txt"}},
            "dataDestination": f"out/{k}/",
            "params": {"partitioner": {"lines_per_chunk": 5}, "assembler": {"output_name": "all.txt"}}}


def notebook(k: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "import bytenite_nb as bn\n"
        f"job = bn.Job.from_dict({job_dict(k)!r})\n"
        f"print(job.run(scheduler='sync', id='many-{k}').state)")]
    return nb


def test_thirty_two_jobs_from_thirty_two_processes_share_one_store(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "BYTENITE_NB_HOME": str(home), "PYTHONPATH": os.getcwd()}
    (tmp_path / "in.txt").write_text("".join(f"line {i}\n" for i in range(40)))
    procs: list[tuple[str, subprocess.Popen]] = []
    total = CLI_JOBS + NOTEBOOK_JOBS + LAUNCHER_JOBS
    for k in range(total):
        path = tmp_path / f"job-{k}.json"
        path.write_text(json.dumps(job_dict(k)))
        if k < CLI_JOBS:
            cmd = [sys.executable, "-m", "bytenite_nb.cli", "run", str(path), "--id", f"many-{k}",
                   "--scheduler", "sync"]
            stdin = None
        elif k < CLI_JOBS + NOTEBOOK_JOBS:
            nbformat.write(notebook(k), tmp_path / f"nb-{k}.ipynb")
            cmd = [sys.executable, "-m", "papermill", "--cwd", str(tmp_path), str(tmp_path / f"nb-{k}.ipynb"),
                   str(tmp_path / f"nb-{k}.out.ipynb")]
            stdin = None
        else:  # what the Jupyter server starts for a job submitted in JupyterLab
            launch_dir = home / "jupyter-jobs" / f"many-{k}"
            launch_dir.mkdir(parents=True)
            cmd = [sys.executable, "-m", "bytenite_nb.server.launcher", str(launch_dir)]
            stdin = json.dumps({"launch": {"id": f"many-{k}", "name": f"many-{k}", "baseDir": str(tmp_path),
                                           "scheduler": "sync"}, "job": job_dict(k)})
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.PIPE if stdin else None,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if stdin:
            proc.stdin.write(stdin)
            proc.stdin.close()
            proc.stdin = None  # sent whole: communicate() has nothing more to write
        procs.append((" ".join(cmd[2:4]), proc))
    outcomes = [(what, proc, *proc.communicate(timeout=600)) for what, proc in procs]
    for what, proc, out, err in outcomes:
        assert proc.returncode == 0, (what, out[-2000:], err[-4000:])
        assert "locked" not in out + err, (what, err[-4000:])

    listed = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "jobs", "--json", "--limit", "100"],
                            env=env, capture_output=True, text=True, check=True)
    jobs = json.loads(listed.stdout)
    ids = [j["id"] for j in jobs]
    assert sorted(ids) == sorted(f"many-{k}" for k in range(total))  # each once
    assert {j["state"] for j in jobs} == {"COMPLETE"}
    assert all(j["progress"]["done"] == j["progress"]["total"] == 8 for j in jobs)
    for k in range(total):
        assert (tmp_path / "out" / str(k) / "all.txt").read_text() == (tmp_path / "in.txt").read_text()
