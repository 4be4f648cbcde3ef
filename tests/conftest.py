"""Shared fixtures: real services on loopback, a real Dask cluster.

- ``client``: a LocalCluster of two worker processes, for the whole session;
- ``s3``: moto's S3 server in its own process on a free loopback port; the
  endpoint and dummy credentials are in the environment before any worker
  starts, so workers reach it exactly as they would reach AWS;
- every test gets its own ``BYTENITE_NB_HOME`` (job store, staging).

A test that needs a system part (podman, chromium, ffmpeg...) calls
``require("podman")``: it skips with the reason on a machine without it, and
fails instead when ``BYTENITE_NB_REQUIRE_SYSTEM=1`` (set by ``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

# Before anything imports botocore or starts a worker: every process of the
# session talks to the local S3 server with dummy credentials.
_SESSION_TMP = tempfile.mkdtemp(prefix="bytenite-nb-tests-")
os.environ.setdefault("BYTENITE_NB_HOME", os.path.join(_SESSION_TMP, "home"))
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_MOTO_PORT = free_port()
os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{_MOTO_PORT}"
os.environ["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{_MOTO_PORT}"

REQUIRE_SYSTEM = os.environ.get("BYTENITE_NB_REQUIRE_SYSTEM") == "1"


def require(tool: str, reason: str | None = None) -> str:
    """The path of a system tool, or skip (fail in CI) naming what is missing."""
    path = shutil.which(tool)
    if path:
        return path
    message = reason or f"{tool} is not installed on this machine"
    if REQUIRE_SYSTEM:
        pytest.fail(f"{message} (BYTENITE_NB_REQUIRE_SYSTEM=1: system parts are required here)")
    pytest.skip(message)


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(autouse=True)
def bnb_home(tmp_path, monkeypatch):
    """A fresh BYTENITE_NB_HOME (job store, staging) for every test."""
    home = tmp_path / "bnb-home"
    monkeypatch.setenv("BYTENITE_NB_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def client():
    """A real LocalCluster: two worker processes, one thread each."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback, in its own process."""
    log = open(os.path.join(_SESSION_TMP, "moto.log"), "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(_MOTO_PORT)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(_MOTO_PORT, proc=proc)
        yield os.environ["AWS_ENDPOINT_URL"]
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def s3(s3_server):
    """An s3fs filesystem on the moto server, with a fresh bucket; yields ``(fs, bucket)``."""
    import uuid

    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server})
    bucket = f"test-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    yield fs, bucket
    try:
        fs.rm(bucket, recursive=True)
    except Exception:
        pass


@pytest.fixture
def text_file(tmp_path):
    """A small text file of numbered lines."""
    path = tmp_path / "in.txt"
    path.write_text("".join(f"line {i} of the input\n" for i in range(500)))
    return path
