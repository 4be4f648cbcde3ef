"""A job submitted through the server keeps running when the server goes away.

A real ``jupyter server`` process on loopback, stopped the way a terminal
stops it (SIGINT to its whole process group, as Ctrl-C does), while its job
waits on a gate file; the job then finishes on its own and records COMPLETE
in the job store.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from bytenite_nb import JobStore
from tests.conftest import free_port, wait_for_port

DEADLINE_SECONDS = 180  # a ceiling for a stuck job, not a performance assertion

GATED_APP = """\
import os, pathlib, shutil, time
gate = pathlib.Path(os.environ["GATE"])
for _ in range(3000):  # at most 5 minutes
    if gate.exists():
        break
    time.sleep(0.1)
shutil.copy(pathlib.Path(os.environ["TASK_DIR"], "data.bin"), pathlib.Path(os.environ["TASK_RESULTS_DIR"], "out.txt"))
"""


def wait_until(predicate, what: str):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_job_keeps_running_after_the_server_is_stopped(tmp_path, bnb_home):
    root = tmp_path / "root"
    root.mkdir()
    (root / "in.txt").write_text("".join(f"row {i}\n" for i in range(100)))
    (root / "gated.py").write_text(GATED_APP)
    gate = tmp_path / "gate"
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env={**os.environ, "JUPYTER_TOKEN": token, "BYTENITE_NB_HOME": str(bnb_home)},
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=60, proc=server)
        job = {
            "name": "gated",
            "partitioner": "split-lines",
            "app": {"command": [sys.executable, "gated.py"], "env": {"GATE": str(gate)}},
            "assembler": "concat",
            "dataSource": "in.txt",
            "dataDestination": "out/",
            "params": {"partitioner": {"chunk_size": 256}, "assembler": {"output_name": "out.txt"}},
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/bytenite-nb/jobs", method="POST",
            data=json.dumps({"job": job, "path": "gated.bnjob.json", "id": "gated", "workers": 1}).encode(),
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 201
            answer = json.loads(response.read())
        # A command app: its local cluster is threads of the job's process (bytenite_nb.cluster), as the server says.
        assert answer["runsOn"] == "A local Dask cluster in the job's own process: 1 thread, waiting on the app's processes."

        store = JobStore(str(bnb_home / "jobs.sqlite"))
        wait_until(lambda: (store.get_job("gated") or {}).get("state") == "RUNNING", "the job to run")

        # Ctrl-C at the server's terminal: SIGINT to its process group.
        os.killpg(server.pid, signal.SIGINT)
        server.wait(60)
        assert (store.get_job("gated") or {})["state"] == "RUNNING"

        gate.write_text("open")
        wait_until(lambda: store.get_job("gated")["state"] in ("COMPLETE", "FAILED", "CANCELLED"), "the job to end")
        assert store.get_job("gated")["state"] == "COMPLETE", store.get_job("gated")["error"]
        assert (root / "out" / "out.txt").read_text() == (root / "in.txt").read_text()
    finally:
        gate.write_text("open")  # never leave a job waiting
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        log.close()
