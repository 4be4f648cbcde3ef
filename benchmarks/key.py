"""``key`` into 64 buckets of a large CSV -> identity -> concat, against
dask.dataframe ``read_csv`` + ``shuffle(on=key, npartitions=64)`` +
``to_csv`` writing the same rows, on the same LocalCluster, side by side.
Goals: at least 2x faster than the shuffle; every worker's peak RSS at most
2x the chunk (block) size + a constant above its idle RSS.

    python benchmarks/key.py [--size-mib 1024] [--block-mib 32] [--rounds 2]

The CSV is made by a separate process in a temporary folder (removed at the
end): an id, a key of 100,000 distinct values, a number and a quoted note
holding commas and doubled quotes (no newlines inside fields: dask's
read_csv cuts files at byte offsets and cannot read those).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading

from _common import local_cluster, median, repeat_to_size, report, timed

CONSTANT_MIB = 128  # interpreter, pyarrow and numpy, Dask's own buffers


def csv_file(path: str, size: int, seed: int = 3) -> str:
    """A CSV of about ``size`` bytes with a header (made once)."""
    import random

    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(2000)]
    rows = []
    for i in range(200_000):
        note = " ".join(rng.choice(words) for _ in range(rng.randint(2, 10)))
        rows.append(f'{i},user{rng.randrange(100_000)},{rng.random():.6f},"{note}, ""q"""\n')
    return repeat_to_size(path, "".join(rows).encode(), size, head=b"id,key,value,note\n")


# -- every worker's peak RSS, sampled while a run goes on ------------------------------

_peak = {"rss": 0, "stop": None}


def _rss() -> int:
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def warm() -> None:
    """On a worker: import what both sides use, so that the idle RSS counts the libraries."""
    import dask.dataframe  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import bytenite_nb.partitioners.key  # noqa: F401


def start_sampling() -> int:
    """On a worker: sample its RSS (and its children's) every 20 ms; return the idle RSS."""
    import time

    if _peak["stop"] is not None:
        _peak["stop"].set()
    stop = threading.Event()
    idle = _rss()
    _peak.update(rss=idle, stop=stop)

    def sample():
        while not stop.is_set():
            _peak["rss"] = max(_peak["rss"], _rss())
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    return idle


def stop_sampling() -> int:
    if _peak["stop"] is not None:
        _peak["stop"].set()
    return _peak["rss"]


def peak_rss(client, fn) -> tuple[float, dict]:
    import key as sampler  # by module name, as uploaded to the workers: its state lives there

    client.run(sampler.warm)
    idle = client.run(sampler.start_sampling)
    seconds = timed(fn)
    peak = client.run(sampler.stop_sampling)
    return seconds, {w: (idle[w], peak[w]) for w in idle}


def lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(2**24), b""))


def count_rows(folder: str) -> int:
    """Rows of the tables in ``folder`` (no field holds a newline), one header each."""
    return sum(lines(os.path.join(folder, name)) - 1 for name in os.listdir(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--block-mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bnb-bench-key-")
    try:
        src = os.path.join(work, "table.csv")
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {here!r}); import key; "
                        f"key.csv_file({src!r}, {args.size_mib * 2**20})"], check=True)
        run(args, work, src)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: str, src: str) -> None:
    os.environ["BYTENITE_NB_HOME"] = os.path.join(work, "home")
    import dask.dataframe as dd

    import bytenite_nb as bn

    block = args.block_mib * 2**20
    cluster, client = local_cluster(2)
    client.upload_file(os.path.abspath(__file__))  # the RSS sampler, by this module's name
    ours_out, dask_out = os.path.join(work, "ours"), os.path.join(work, "dask")
    job = bn.Job(source=src, partitioner="key", app="identity", assembler="concat", destination=ours_out,
                 params={"partitioner": {"columns": ["key"], "buckets": 64, "block_size": block},
                         "assembler": {"header": True, "output_name": "table.csv"}})

    def shuffle():
        df = dd.read_csv(src, blocksize=block, dtype=str, keep_default_na=False)
        df.shuffle(on="key", npartitions=64).to_csv(os.path.join(dask_out, "part-*.csv"), index=False)

    ours, theirs, ours_mem, theirs_mem = [], [], {}, {}
    for _ in range(args.rounds):
        shutil.rmtree(ours_out, ignore_errors=True)
        seconds, ours_mem = peak_rss(client, lambda: job.run(client=client, force=True))
        ours.append(seconds)
        shutil.rmtree(dask_out, ignore_errors=True)
        seconds, theirs_mem = peak_rss(client, shuffle)
        theirs.append(seconds)
    rows_in = lines(src) - 1
    rows_ours = lines(os.path.join(ours_out, "table.csv")) - 1
    rows_dask = count_rows(dask_out)
    ratio = median(theirs) / median(ours)
    limit = 2 * block + CONSTANT_MIB * 2**20
    growth = {w: peak - idle for w, (idle, peak) in ours_mem.items()}
    mem_ok = all(g <= limit for g in growth.values())
    mib = lambda b: f"{b / 2**20:.0f} MiB"  # noqa: E731
    size = os.path.getsize(src) / 2**20
    report(f"key into 64 buckets, {size:.0f} MiB CSV, {args.block_mib} MiB blocks, 2 worker processes", [
        ("dask read_csv + shuffle + to_csv (median)", f"{median(theirs):.2f}s  {[round(x, 2) for x in theirs]}"),
        ("key -> identity -> concat (median)", f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
        ("speed ratio (dask / key)", f"{ratio:.2f}x  (goal >= 2x: {'met' if ratio >= 2 else 'NOT met'})"),
        ("rows in / key out / dask out", f"{rows_in} / {rows_ours} / {rows_dask}"),
        ("worker peak RSS, key (idle -> peak)",
         "; ".join(f"{mib(i)} -> {mib(p)}" for i, p in ours_mem.values())),
        ("worker peak RSS, dask (idle -> peak)",
         "; ".join(f"{mib(i)} -> {mib(p)}" for i, p in theirs_mem.values())),
        ("key: worker growth vs 2x block + constant",
         f"max {mib(max(growth.values()))} <= {mib(limit)}: {'met' if mem_ok else 'NOT met'}"),
    ])
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
