"""Helpers shared by the benchmarks: test data, timing, a cluster, reporting.

Every benchmark measures bytenite-nb and its peer side by side, in one run,
alternating them, and reports the ratio of medians: the machine is shared and
noisy, so bare seconds mean little and ratios are what we track.
"""

from __future__ import annotations

import os
import random
import statistics
import time


def text_file(path: str, size: int, seed: int = 1) -> str:
    """A text file of about ``size`` bytes: lines of 20 to 200 characters (made once)."""
    if os.path.exists(path) and os.path.getsize(path) >= size:
        return path
    rng = random.Random(seed)
    words = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))).encode()
             for _ in range(5000)]
    block = bytearray()
    while len(block) < 8 * 2**20:
        line = b" ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
        block += line + b"\n"
    return repeat_to_size(path, bytes(block), size)


def repeat_to_size(path: str, block: bytes, size: int, head: bytes = b"") -> str:
    """Write ``head``, then ``block`` again and again until ``size`` bytes, into ``path`` (atomically)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        written = 0
        while written < size:
            f.write(block)
            written += len(block)
    os.replace(tmp, path)
    return path


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def local_cluster(workers: int = 2):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return cluster, Client(cluster)


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n== {title} (load average {load_average()}) ==")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
