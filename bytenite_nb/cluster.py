"""Which Dask cluster a job runs on.

Resolution order: an explicit client or scheduler address; the current
default client (``distributed.Client()`` made in a notebook); the
``scheduler-address`` Dask config; otherwise a local cluster of worker
processes, made once per Python process (and per number of workers asked
for) and reused by every job. A cluster that cannot be reached raises
:class:`~bytenite_nb.exceptions.ClusterUnavailable` naming its address.

>>> # client = get_client()                 # local cluster
>>> # client = get_client("tcp://10.0.0.5:8786")
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

import dask

from .exceptions import ClusterUnavailable

_lock = threading.Lock()
_clients: dict[str, object] = {}
_local: dict[int, tuple] = {}  # workers -> (cluster, client); never closed under a running job


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
                try:
                    client = Client(address, set_as_default=False, timeout=dask.config.get(
                        "distributed.comm.timeouts.connect", "30s"))
                except (OSError, TimeoutError) as exc:
                    raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
                _clients[address] = client
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
    """The client of this process's local cluster of ``workers`` worker processes
    (one thread each), made on first use.

    >>> # client = local_client(2); client.dashboard_link
    """
    from distributed import Client, LocalCluster

    n = workers or default_workers()
    with _lock:
        if n in _local:
            cluster, client = _local[n]
            if client.status == "running":
                return client
            # Its scheduler went away: nothing can run on it any more.
            _close(cluster, client)
        try:
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR,
                                   resources=worker_resources(n))
        except Exception as exc:
            raise ClusterUnavailable(f"cannot start a local Dask cluster of {n} worker(s): {exc}") from exc
        client = Client(cluster, set_as_default=False)
        _local[n] = (cluster, client)
        return client


def _close(cluster, client) -> None:
    try:
        client.close()
        cluster.close()
    except Exception:
        pass


@atexit.register
def close_local() -> None:
    """Shut this process's local clusters down (at exit, or to free their processes early)."""
    with _lock:
        clusters = list(_local.values())
        _local.clear()
    for cluster, client in clusters:
        _close(cluster, client)
