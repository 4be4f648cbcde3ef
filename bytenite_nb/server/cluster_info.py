"""Which cluster a job submitted from JupyterLab runs on, said in words the
sidebar shows as they are, and its scheduler's dashboard.

Where is decided by :func:`bytenite_nb.cluster.resolve`, the one resolution
order of the library, asked here as the job process will ask it (that
process has no default client: the server passes it the address it found).
"""

from __future__ import annotations

import threading
import time

from ..redact import redact_text

DASHBOARD_CACHE_SECONDS = 60
#: the answer's ``source`` for the steps of the order that have a short name
_SOURCES = {"scheduler=": "setting", "Dask config scheduler-address": "dask config"}
#: the same steps as a reader says them
_SOURCE_WORDS = {"scheduler=": "the default cluster of the ByteNite settings",
                 "workers=": "a number of workers was given",
                 "default": "nothing names another cluster"}


def cluster_target(address: str | None = None, workers: int | None = None, *,
                   runs_own_process: bool | None = None) -> dict:
    """Where a job submitted now runs: ``kind`` (``scheduler``, ``local``,
    ``gateway`` or ``kubernetes``), ``address``, ``target`` (for a Gateway,
    Kubernetes or sync target: the cluster name the job's process is given),
    ``source`` (which step of the order chose it) and ``description``, a
    sentence for a person. ``address`` is the default cluster setting, ``workers`` the size of a local cluster asked for;
    ``runs_own_process`` tells the job's app apart (True: a command, folder or
    container app, whose local cluster is threads in the job's process; False:
    a Python or notebook app, on worker processes); None describes both.

    A Dask Gateway named by Dask config (``gateway.address``) is used only when
    the cluster named is ``gateway`` or ``gateway:NAME``: otherwise ``note`` says
    how to use it rather than claim a cluster jobs never reach.

    >>> cluster_target("tcp://10.0.0.5:8786")["description"]
    'Dask scheduler tcp://10.0.0.5:8786 (the default cluster of the ByteNite settings).'
    >>> cluster_target(workers=2, runs_own_process=True)["description"]
    "A local Dask cluster in the job's own process: 2 threads, each waiting on the app's processes."
    """
    import dask

    from ..cluster import resolve

    where = resolve(scheduler=address or None, workers=workers, threads_ok=bool(runs_own_process))
    words = _SOURCE_WORDS.get(where.source, where.source)
    if where.kind == "gateway":
        which = f"the running Dask Gateway cluster {where.name}" if where.name else \
            "a Dask Gateway cluster made for each job and shut down when it ends"
        gateway = dask.config.get("gateway.address", None)
        target = {"kind": "gateway", "address": None, "name": where.name,
                  "target": f"gateway:{where.name}" if where.name else "gateway",
                  "source": _SOURCES.get(where.source, where.source),
                  "description": f"{which[0].upper()}{which[1:]}, at "
                                 f"{redact_text(str(gateway)) if gateway else 'no Gateway address (gateway.address)'}"
                                 f" ({words})."}
    elif where.kind == "kubernetes":
        which = f"the running DaskCluster {where.name}" if where.name else \
            "a dask-kubernetes cluster made for each job from it, and deleted when it ends"
        target = {"kind": "kubernetes", "address": None, "name": where.name,
                  "target": f"kubernetes:{where.name}" if where.name else "kubernetes",
                  "source": _SOURCES.get(where.source, where.source),
                  "description": f"{which[0].upper()}{which[1:]} ({words})."}
    elif where.kind in ("address", "client") and where.address:
        target = {"kind": "scheduler", "address": where.address, "source": _SOURCES.get(where.source, where.source),
                  "description": f"Dask scheduler {where.address} ({words})."}
    elif where.kind == "sync":
        target = {"kind": "local", "address": None, "source": where.source, "target": "sync",
                  "description": f"No cluster ({words} says sync): each job runs in its own process, "
                                 "one chunk at a time."}
    else:
        target = {"kind": "local", "address": None, "source": _SOURCES.get(where.source, where.source),
                  "description": _local_words(where.workers, runs_own_process)}
        gateway = dask.config.get("gateway.address", None)
        if gateway:
            target["note"] = (f"Dask config names a Dask Gateway ({redact_text(str(gateway))}), but jobs run "
                              "on a local cluster: set the default cluster to gateway (or gateway:NAME) "
                              "to run them on it.")
    return target


def _local_words(workers: int | None, runs_own_process: bool | None) -> str:
    """A local cluster as :func:`bytenite_nb.cluster.local_client` makes it for a job."""
    from ..machine import default_workers

    n = workers or default_workers()
    threads = f"{n} thread{'s' if n != 1 else ''}"
    processes = f"{n} worker process{'es' if n != 1 else ''} of one thread each"
    if runs_own_process is True:
        waiting = "each waiting" if n != 1 else "waiting"
        return f"A local Dask cluster in the job's own process: {threads}, {waiting} on the app's processes."
    if runs_own_process is False:
        return f"A local Dask cluster started by the job's process: {processes}."
    return ("A local Dask cluster for each job, started by its process: command, folder and container apps "
            f"run on {threads} in that process (the apps run in processes of their own); Python and "
            f"notebook apps on {processes}.")


class Dashboards:
    """The dashboard URL each scheduler advertises, asked at most once a
    minute per address (None when it cannot be reached)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, str | None]] = {}  # address -> (when asked, link)

    def link(self, address: str) -> str | None:
        """The dashboard of the scheduler at ``address``."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(address)
        if seen is not None and now - seen[0] < DASHBOARD_CACHE_SECONDS:
            return seen[1]
        link = _scheduler_dashboard(address)
        with self._lock:
            self._seen[address] = (now, link)
        return link


def _scheduler_dashboard(address: str) -> str | None:
    try:
        from distributed import Client

        from ..background_cluster import security_for

        with Client(address, timeout=5, set_as_default=False, security=security_for(address)) as client:
            return client.dashboard_link
    except Exception:
        return None
