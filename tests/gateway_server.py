"""A real dask-gateway-server on loopback, for the tests and benchmarks/gateway.py.

Its ``local`` backend runs each cluster as processes of this machine
(``dask scheduler`` and ``dask worker``: distributed 2026.6 removed
``dask-scheduler`` and ``dask-worker``); a ``SimpleAuthenticator`` lets anyone
in under any user name with :data:`PASSWORD`. It offers three cluster options:
``worker_cores`` (1 or 2), ``idle_timeout`` (seconds) and ``team``, which sets
``BNB_TEAM`` in the workers' environment (so a test sees an option arrive).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

PASSWORD = "gateway-test-password"

OPTIONS = """
from dask_gateway_server.options import Float, Integer, Options, String


def _options(options, user):
    return {"worker_cores": options.worker_cores, "idle_timeout": options.idle_timeout,
            "environment": {"BNB_TEAM": options.team}}


c.Backend.cluster_options = Options(
    Integer("worker_cores", default=1, min=1, max=2, label="Worker cores"),
    Float("idle_timeout", default=0, min=0, label="Idle timeout (s)"),
    String("team", default="none", label="Team"),
    handler=_options,
)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(folder: str, api: int, proxy: int, max_workers: int) -> str:
    command = os.path.join(os.path.dirname(sys.executable), "dask")
    if not os.path.exists(command):
        command = "dask"
    return textwrap.dedent(f"""
        c.Gateway.address = "127.0.0.1:{api}"
        c.Proxy.address = "127.0.0.1:{proxy}"
        c.Gateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
        c.Gateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
        c.SimpleAuthenticator.password = {PASSWORD!r}
        c.ClusterConfig.scheduler_cmd = [{command!r}, "scheduler"]
        c.ClusterConfig.worker_cmd = [{command!r}, "worker"]
        c.ClusterConfig.worker_memory = "1 G"
        c.ClusterConfig.scheduler_memory = "1 G"
        c.ClusterConfig.cluster_max_workers = {max_workers}
        c.ClusterConfig.adaptive_period = 0.5
        c.UnsafeLocalBackend.clusters_directory = {os.path.join(folder, "clusters")!r}
    """) + OPTIONS


@contextlib.contextmanager
def running_gateway(folder: str, *, max_workers: int = 2, timeout: float = 60):
    """Run a Gateway with its config, log and clusters in ``folder``; yield its
    address (``http://127.0.0.1:PORT``). Its clusters' processes import the
    bytenite_nb and tests packages of this checkout."""
    import bytenite_nb

    api, proxy = _free_port(), _free_port()
    config = os.path.join(folder, "gateway_config.py")
    with open(config, "w", encoding="utf-8") as f:
        f.write(_config(folder, api, proxy, max_workers))
    root = os.path.dirname(os.path.dirname(os.path.abspath(bytenite_nb.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    address = f"http://127.0.0.1:{proxy}"
    with open(os.path.join(folder, "gateway.log"), "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dask_gateway_server", "-f", config], cwd=folder,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            _wait_healthy(address, proc, timeout)
            yield address
        finally:
            proc.send_signal(signal.SIGINT)  # the server stops its clusters on its way out
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _wait_healthy(address: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask-gateway-server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{address}/api/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the Dask Gateway at {address} is not healthy after {timeout}s")
