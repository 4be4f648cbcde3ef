"""Many chunks: 1,000 and 10,000 no-op chunks on a cluster of separate
``dask scheduler`` and ``dask worker`` processes.

For each count, side by side on the same cluster:

- the job (``replicate`` -> ``noop`` -> ``passthrough``) against a bare
  ``client.map`` of a no-op of the same count, each in a fresh client process;
  goal: per-chunk cost at most 1.2x;
- the client's peak RSS (its own process, so the peak is the job's); goal:
  at 10,000 chunks at most 100 MiB above the peak at 1,000;
- the job store: bytes per chunk (goal: linear, the ratio of bytes per chunk
  at 10,000 to 1,000 near 1) and events per chunk (bounded: a handful).

    python benchmarks/load.py [--counts 1000 10000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from _common import median, report

JOB_CLIENT = r"""
import json, os, resource, sys, time
from distributed import Client
import bytenite_nb as bn

address, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = Client(address)
job = bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="replicate", app="noop",
             assembler="passthrough", destination=out, params={"partitioner": {"num_replicas": count}},
             config={"maxTaskRetries": 0})
started = time.perf_counter()
result = job.run(client=client, force=True)
seconds = time.perf_counter() - started
assert result.n_chunks == count
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "id": result.job_id}))
"""

BARE_CLIENT = r"""
import json, resource, sys, time
from distributed import Client

def noop(x):
    return x

address, count = sys.argv[1], int(sys.argv[2])
client = Client(address)
client.gather(client.map(noop, range(100), pure=False))  # as warm as the job's client after validation
started = time.perf_counter()
client.gather(client.map(noop, range(count), pure=False))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_client(code: str, args: list[str], env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"client failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def store_facts(home: str, job_id: str) -> tuple[int, int]:
    """The job store's size in bytes and the job's number of events."""
    path = os.path.join(home, "jobs.sqlite")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        events = db.execute("SELECT COUNT(*) FROM events WHERE job_id=?", (job_id,)).fetchone()[0]
    size = os.path.getsize(path) + sum(os.path.getsize(path + s) for s in ("-wal", "-shm")
                                       if os.path.exists(path + s))
    return size, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bnb-bench-load-")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, BYTENITE_NB_HOME=os.path.join(work, "cluster-home"))
    procs = [subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], env=env, stderr=subprocess.DEVNULL)]
    time.sleep(2)
    for _ in range(2):
        procs.append(subprocess.Popen(["dask", "worker", address, "--nthreads", "1", "--nworkers", "1"],
                                      env=env, stderr=subprocess.DEVNULL))
    rows, facts = [], {}
    try:
        for count in args.counts:
            jobs, bare, peaks = [], [], []
            for r in range(args.rounds):
                home = os.path.join(work, f"home-{count}-{r}")  # a store of its own: its size is this job's
                job_env = dict(os.environ, BYTENITE_NB_HOME=home)
                bare.append(run_client(BARE_CLIENT, [address, str(count)], env)["seconds"])
                got = run_client(JOB_CLIENT, [address, str(count), os.path.join(work, f"out-{count}")], job_env)
                jobs.append(got["seconds"])
                peaks.append(got["peak_mib"])
                size, events = store_facts(home, got["id"])
            ratio = median(jobs) / median(bare)
            facts[count] = {"peak": max(peaks), "bytes_per_chunk": size / count, "events_per_chunk": events / count}
            rows += [
                (f"{count} chunks: bare client.map (median)", f"{median(bare):.2f}s  {[round(x, 2) for x in bare]}"),
                (f"{count} chunks: job.run() (median)", f"{median(jobs):.2f}s  {[round(x, 2) for x in jobs]}"),
                (f"{count} chunks: ratio", f"{ratio:.2f}x  (goal <= 1.2x: {'met' if ratio <= 1.2 else 'NOT met'})"),
                (f"{count} chunks: client peak RSS", f"{max(peaks):.0f} MiB"),
                (f"{count} chunks: job store", f"{size / 2**20:.1f} MiB, {size / count:.0f} B per chunk, "
                                               f"{events / count:.2f} events per chunk"),
            ]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    counts = sorted(facts)
    if len(counts) >= 2:
        low, high = facts[counts[0]], facts[counts[-1]]
        grow = high["peak"] - low["peak"]
        linear = high["bytes_per_chunk"] / low["bytes_per_chunk"]
        rows += [
            (f"client peak RSS {counts[-1]} - {counts[0]} chunks", f"{grow:+.0f} MiB "
                                                                  f"(goal <= 100 MiB: {'met' if grow <= 100 else 'NOT met'})"),
            ("job store bytes per chunk, ratio", f"{linear:.2f}x (goal: linear, about 1: "
                                                 f"{'met' if linear <= 1.2 else 'NOT met'})"),
            ("events per chunk", f"{low['events_per_chunk']:.2f} and {high['events_per_chunk']:.2f} "
                                 f"(goal: bounded: {'met' if high['events_per_chunk'] <= 5 else 'NOT met'})"),
        ]
    report("many chunks on separate scheduler and worker processes", rows)


if __name__ == "__main__":
    main()
