"""A local cluster that outlives the command that started it: ``bytenite-nb cluster start``.

Every ``bytenite-nb run`` otherwise starts a local cluster of worker
processes and stops it at the end, which costs a couple of seconds a run. A
background cluster is started once and then found by every later CLI run,
notebook and Jupyter job process that uses the same ``BYTENITE_NB_HOME``,
through its record ``<home>/cluster/cluster.json`` (step 7 of
:func:`bytenite_nb.cluster.resolve`). It runs until ``bytenite-nb cluster
stop``, or until it has had no work for ``bytenite-nb.local-cluster.idle-timeout``
(``1h`` by default), like the clusters dask-labextension keeps for a JupyterLab.

Its scheduler and dashboard listen on loopback only, and it speaks TLS with a
certificate and key made for it at start: they are kept in the record, which
only its owner can read, so no other user of the machine can run code on it.
Its workers keep the environment of the shell that started it (credentials,
``PATH``): start it again after changing those.

>>> running() is None or "address" in running()
True
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from . import config
from .exceptions import ClusterUnavailable

RECORD_NAME = "cluster.json"
LOG_NAME = "cluster.log"
START_SECONDS = 120
STOP_SECONDS = 30


def folder() -> str:
    """Where the background cluster of this ``BYTENITE_NB_HOME`` keeps its record and log."""
    return os.path.join(config.home(), "cluster")


def record_path() -> str:
    return os.path.join(folder(), RECORD_NAME)


def log_path() -> str:
    return os.path.join(folder(), LOG_NAME)


def read_record() -> dict | None:
    """The record of the background cluster (address, dashboard, pid, workers...), if any."""
    try:
        with open(record_path(), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("address") and record.get("pid") else None


def running() -> dict | None:
    """The record of the background cluster if its process is alive; a stale record is removed."""
    record = read_record()
    if record is None:
        return None
    if _alive(int(record["pid"])):
        return record
    _remove_record(record["pid"])
    return None


def security_for(address: str | None):
    """The ``distributed.Security`` that reaches the background cluster at ``address``;
    None for any other address (Dask config's own security applies)."""
    record = read_record()
    if not address or record is None or record.get("address") != address or not record.get("tls"):
        return None
    from distributed.security import Security

    tls = record["tls"]
    return Security(require_encryption=True, tls_ca_file=tls["ca"], tls_client_cert=tls["cert"],
                    tls_client_key=tls["key"])


def start(workers: int | None = None, idle_timeout: str | None = None, *, timeout: float = START_SECONDS) -> dict:
    """Start the background cluster (unless one runs: then return its record) and
    wait until it takes work. Returns its record; ``record["started_now"]`` says
    whether this call started it.

    From the command line: ``bytenite-nb cluster start --workers 2``; from Python::

        record = start(workers=2)
        record["address"]         # tls://127.0.0.1:PORT, which later runs find by themselves
    """
    existing = running()
    if existing is not None:
        return {**existing, "started_now": False}
    from .machine import default_workers

    n = workers or config.local_workers() or default_workers()
    os.makedirs(folder(), mode=0o700, exist_ok=True)
    argv = [sys.executable, "-m", "bytenite_nb.background_cluster", "--workers", str(n)]
    if idle_timeout:
        argv += ["--idle-timeout", idle_timeout]
    env = dict(os.environ, BYTENITE_NB_HOME=config.home())
    with open(log_path(), "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_record()
        if record is not None and record.get("pid") == proc.pid:
            return {**record, "started_now": True}
        if proc.poll() is not None:
            raise ClusterUnavailable(f"the background cluster did not start (exit status {proc.returncode}); "
                                     f"its log, {log_path()}, ends with:\n{_tail(log_path())}")
        time.sleep(0.05)
    _kill_group(proc.pid)
    raise ClusterUnavailable(f"the background cluster did not start within {timeout:g}s; "
                             f"its log, {log_path()}, ends with:\n{_tail(log_path())}")


def stop(timeout: float = STOP_SECONDS) -> dict | None:
    """Stop the background cluster and its workers; return its record, or None if none ran."""
    record = running()
    if record is None:
        return None
    pid = int(record["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        _kill_group(pid)
    _remove_record(pid)
    return record


def serve(workers: int, idle_timeout: str | None) -> None:
    """Run the cluster in this process until SIGTERM, or until idle for ``idle_timeout``."""
    from distributed import LocalCluster
    from distributed.core import Status
    from distributed.security import Security

    from .machine import worker_resources

    from dask.utils import parse_timedelta

    security = Security.temporary()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING, security=security,
                           resources=worker_resources(workers))
    # Counted from now: a short timeout given at start would close the scheduler while workers still start.
    cluster.scheduler.idle_since = None
    cluster.scheduler.idle_timeout = parse_timedelta(idle_timeout) if idle_timeout else None
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        _write_record({
            "address": cluster.scheduler_address, "dashboard": cluster.dashboard_link, "pid": os.getpid(),
            "workers": workers, "started": time.time(), "idle_timeout": idle_timeout,
            "tls": {"ca": security.tls_ca_file, "cert": security.tls_client_cert, "key": security.tls_client_key},
        })
        print(f"background cluster at {cluster.scheduler_address} ({workers} workers), "
              f"dashboard {cluster.dashboard_link}", flush=True)
        idle = False
        while not stopping.wait(0.5):
            if cluster.scheduler.status in (Status.closing, Status.closed, Status.failed):
                print("the scheduler closed (idle timeout): stopping", flush=True)
                idle = True
                break
    finally:
        _remove_record(os.getpid())
        try:
            # Once the scheduler has closed, a graceful close only waits for it in vain:
            # the worker processes are simply ended.
            if not idle:
                cluster.close(timeout=STOP_SECONDS)
        except Exception as exc:
            print(f"closing the cluster: {type(exc).__name__}: {exc}", flush=True)
        finally:
            _end_children()


def _end_children() -> None:
    """Stop worker processes a close left behind."""
    import multiprocessing

    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(5)
        if child.is_alive():
            child.kill()


def _write_record(record: dict) -> None:
    # The record holds the cluster's TLS key: readable by its owner only, and never half-written.
    tmp = record_path() + f".{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f)
    os.replace(tmp, record_path())


def _remove_record(pid) -> None:
    """Remove the record if it still is that of process ``pid`` (another may have replaced it)."""
    record = read_record()
    if record is not None and record.get("pid") == pid:
        try:
            os.unlink(record_path())
        except FileNotFoundError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (an exited child not yet reaped) is gone for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: str, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bytenite_nb.background_cluster",
                                     description="Run bytenite-nb's background cluster (see bytenite-nb cluster start).")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--idle-timeout")
    args = parser.parse_args(argv)
    serve(args.workers, args.idle_timeout)


if __name__ == "__main__":
    main()
