"""Per-chunk overhead: 2,000 no-op chunks through ``job.run()`` against a bare
``client.map`` of a no-op on the same LocalCluster. Goal: at most 1.2x.

    python benchmarks/overhead.py [--chunks 2000] [--rounds 3]

The job's time includes everything a user waits for: validation, planning
(a Dask task), 2,000 map tasks that each materialise an empty chunk, run the
app, commit to staging and are recorded in the job store, then assembly and
the commit of ``_SUCCESS``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _common import local_cluster, median, report, timed


def noop(x):
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bnb-bench-")
    os.environ["BYTENITE_NB_HOME"] = home
    import bytenite_nb as bn

    cluster, client = local_cluster(2)
    job = bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="replicate", app="noop",
                 assembler="passthrough", destination=os.path.join(home, "out"),
                 params={"partitioner": {"num_replicas": args.chunks}}, config={"maxTaskRetries": 0})
    # Warm both paths up (imports, worker caches) before measuring.
    client.gather(client.map(noop, range(200), pure=False))
    job.run(client=client, force=True)
    bare, ours = [], []
    for _ in range(args.rounds):
        bare.append(timed(lambda: client.gather(client.map(noop, range(args.chunks), pure=False))))
        ours.append(timed(lambda: job.run(client=client, force=True)))
    ratio = median(ours) / median(bare)
    report(f"per-chunk overhead, {args.chunks} no-op chunks, 2 worker processes", [
        ("bare client.map (median)", f"{median(bare):.2f}s  {[round(x, 2) for x in bare]}"),
        ("job.run() (median)", f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
        ("ratio job.run / client.map", f"{ratio:.2f}x  (goal <= 1.2x: {'met' if ratio <= 1.2 else 'NOT met'})"),
        ("overhead per chunk", f"{(median(ours) - median(bare)) / args.chunks * 1000:.3f} ms"),
    ])
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
