"""Shared fixtures: real services on loopback, a real Dask cluster.

- ``client``: a LocalCluster of two worker processes, for the whole session;
- ``s3``: moto's S3 server in its own process on a free loopback port; the
  endpoint and dummy credentials are in the environment before any worker
  starts, so workers reach it exactly as they would reach AWS;
- every test gets its own ``BYTENITE_NB_HOME`` (job store, staging).

A test that needs a system part (podman, chromium, ffmpeg...) calls
``require("podman")``: it skips with the reason on a machine without it, and
fails instead when ``BYTENITE_NB_REQUIRE_SYSTEM=1`` (set by ``.ci/run``). A part
that is not a tool on the PATH (a Python package...) goes through
``missing(reason)``, which does the same.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import NoReturn

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


def missing(reason: str) -> NoReturn:
    """Skip the test because a part it needs is missing (``reason`` names it);
    fail instead when ``BYTENITE_NB_REQUIRE_SYSTEM=1`` (CI), where every part
    must be there.

    >>> # try: import playwright
    >>> # except ImportError: missing("the playwright Python package is not installed")
    """
    if REQUIRE_SYSTEM:
        pytest.fail(f"{reason} (BYTENITE_NB_REQUIRE_SYSTEM=1: system parts are required here)")
    pytest.skip(reason)


def require(tool: str, reason: str | None = None) -> str:
    """The path of a system tool, or skip (fail in CI) naming what is missing."""
    path = shutil.which(tool)
    if path:
        return path
    missing(reason or f"{tool} is not installed on this machine")


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


# -- Google Cloud Storage and Azure Blob emulators ------------------------------------
#
# As for S3, the endpoints are in the environment before anything imports gcsfs
# or adlfs and before any worker starts, so every process of the session talks
# to the emulators, never to a cloud:
# - gcp-storage-emulator: gcsfs reads STORAGE_EMULATOR_HOST; fsspec's
#   FSSPEC_GS_TOKEN=anon makes every gs:// filesystem anonymous (no credential
#   lookup, no metadata-server probe); GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false
#   turns off gcsfs's bucket-type probe over gRPC, which the emulator never answers.
# - azurite: adlfs reads AZURE_STORAGE_CONNECTION_STRING (the emulator's
#   well-known development account). A second account, whose key is in no
#   environment, serves tests that pass credentials in a job's storage options.

_GCS_PORT = free_port()
os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{_GCS_PORT}"
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
os.environ["FSSPEC_GS_TOKEN"] = "anon"
os.environ["NO_GCE_CHECK"] = "true"
if "fsspec" in sys.modules:  # imported already: its config read the environment before this
    sys.modules["fsspec"].config.conf.setdefault("gs", {})["token"] = "anon"

import base64  # noqa: E402 (used by the emulator fixtures below)

_AZURITE_PORT = free_port()


class Azurite:
    """azurite's address and accounts: the well-known development account, which
    the environment names, and a second account whose key only this object holds."""

    url = f"http://127.0.0.1:{_AZURITE_PORT}"
    account = "devstoreaccount1"
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    other_account = "bnbother"
    other_key = base64.b64encode(os.urandom(64)).decode()

    @classmethod
    def connection_string(cls, account: str | None = None, key: str | None = None) -> str:
        account = account or cls.account
        return (f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key or cls.key};"
                f"BlobEndpoint={cls.url}/{account};")


os.environ["AZURE_STORAGE_CONNECTION_STRING"] = Azurite.connection_string()
for _name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
              "AZURE_STORAGE_CLIENT_ID", "AZURE_STORAGE_CLIENT_SECRET", "AZURE_STORAGE_TENANT_ID"):
    os.environ.pop(_name, None)

#: where scripts/setup.d/35-azurite.sh installs azurite
NODE_TOOLS_BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "build", "node_tools", "node_modules", ".bin")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator on loopback, in its own process, keeping objects in memory."""
    import importlib.util

    if importlib.util.find_spec("gcp_storage_emulator") is None:
        missing("gcp-storage-emulator is not installed (pip install -e '.[test]')")
    log = open(os.path.join(_SESSION_TMP, "gcs-emulator.log"), "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
         "--port", str(_GCS_PORT), "--in-memory"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(_GCS_PORT, proc=proc)
        yield os.environ["STORAGE_EMULATOR_HOST"]
    finally:
        _stop(proc)
        log.close()


@pytest.fixture
def gcs(gcs_server):
    """A gcsfs filesystem on the emulator, with a fresh bucket; yields ``(fs, bucket)``."""
    import uuid

    import gcsfs

    fs = gcsfs.GCSFileSystem(token="anon")
    bucket = f"test-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    yield fs, bucket
    try:
        fs.rm(bucket, recursive=True)
    except Exception:
        pass


@pytest.fixture(scope="session")
def azurite_server():
    """azurite's Blob service on loopback, in its own process, keeping blobs in memory;
    yields :class:`Azurite`, whose two accounts it knows.

    Tests take the accounts from the fixture, not by importing this module: a
    function that a test module defines runs on the workers, which import that
    module, and this one would then run again there with other ports."""
    exe = shutil.which("azurite-blob", path=NODE_TOOLS_BIN) or require(
        "azurite-blob", "azurite is not installed (scripts/setup.d/35-azurite.sh installs it with npm)")
    workdir = os.path.join(_SESSION_TMP, "azurite")
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, AZURITE_ACCOUNTS=f"{Azurite.account}:{Azurite.key};"
                                            f"{Azurite.other_account}:{Azurite.other_key}")
    log = open(os.path.join(_SESSION_TMP, "azurite.log"), "wb")
    proc = subprocess.Popen(
        [exe, "--blobHost", "127.0.0.1", "--blobPort", str(_AZURITE_PORT), "--inMemoryPersistence",
         "--skipApiVersionCheck", "--disableTelemetry", "--silent"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(_AZURITE_PORT, proc=proc)
        yield Azurite
    finally:
        _stop(proc)
        log.close()


@pytest.fixture
def azure(azurite_server):
    """An adlfs filesystem on azurite's development account, with a fresh container;
    yields ``(fs, container)``."""
    import uuid

    import adlfs

    fs = adlfs.AzureBlobFileSystem(connection_string=azurite_server.connection_string())
    container = f"test-{uuid.uuid4().hex[:10]}"
    fs.mkdir(container)
    yield fs, container
    try:
        fs.rm(container, recursive=True)
    except Exception:
        pass
