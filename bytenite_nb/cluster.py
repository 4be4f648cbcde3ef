"""Which Dask cluster a job runs on.

Resolution order: an explicit client or scheduler address; the current
default client (``distributed.Client()`` made in a notebook); the
``scheduler-address`` Dask config; otherwise a local cluster of worker
processes, made once per Python process and reused by every job.

>>> # client = get_client()                 # local cluster
>>> # client = get_client("tcp://10.0.0.5:8786")
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

import dask

_lock = threading.Lock()
_clients: dict[str, object] = {}
_local = None  # (cluster, client)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def get_client(address=None, *, workers: int | None = None):
    """A ``distributed.Client`` to run jobs on."""
    from distributed import Client

    if isinstance(address, Client):
        return address
    if address:
        with _lock:
            client = _clients.get(address)
            if client is None or client.status in ("closed", "closing"):
                client = _clients[address] = Client(address, set_as_default=False)
            return client
    if workers is None:
        try:
            from distributed import default_client

            return default_client()
        except ValueError:
            pass
        configured = dask.config.get("scheduler-address", None)
        if configured:
            return get_client(configured)
    return local_client(workers)


def worker_resources(n_workers: int) -> dict[str, float]:
    """The Dask resources each of ``n_workers`` local workers declares: its share
    of the machine's cores (at least one) and memory, in bytes. An app's
    ``device_requirements`` are matched against these.

    >>> sorted(worker_resources(2))
    ['cpu', 'memory']
    """
    from distributed.system import MEMORY_LIMIT

    return {"cpu": max(1.0, (os.cpu_count() or 1) / n_workers), "memory": float(MEMORY_LIMIT // n_workers)}


def local_client(workers: int | None = None):
    """The client of this process's local cluster (worker processes, one thread each)."""
    global _local
    from distributed import Client, LocalCluster

    n = workers or default_workers()
    with _lock:
        if _local is not None:
            cluster, client = _local
            if client.status == "running" and len(cluster.workers) == n:
                return client
            client.close()
            cluster.close()
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR,
                               resources=worker_resources(n))
        client = Client(cluster, set_as_default=False)
        _local = (cluster, client)
        return client


@atexit.register
def close_local() -> None:
    """Shut the local cluster down (at exit, or to free its processes early)."""
    global _local
    with _lock:
        if _local is not None:
            cluster, client = _local
            _local = None
            try:
                client.close()
                cluster.close()
            except Exception:
                pass
