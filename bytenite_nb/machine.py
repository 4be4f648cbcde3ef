"""What this machine offers local Dask workers: how many by default, and the
resources each declares (so an app's ``device_requirements`` can be matched).
A leaf module: the local and the background clusters both use it.
"""

from __future__ import annotations

import os


def default_workers() -> int:
    """Worker processes of a local cluster when none is asked for: the cores, at most 8.

    >>> 1 <= default_workers() <= 8
    True
    """
    return max(1, min(os.cpu_count() or 1, 8))



def worker_resources(n_workers: int) -> dict[str, float]:
    """The Dask resources each of ``n_workers`` local workers declares: its share
    of the machine's cores (at least one) and memory, in bytes. An app's
    ``device_requirements`` are matched against these.

    >>> sorted(worker_resources(2))
    ['cpu', 'memory']
    """
    from distributed.system import MEMORY_LIMIT

    return {"cpu": max(1.0, (os.cpu_count() or 1) / n_workers), "memory": float(MEMORY_LIMIT // n_workers)}
