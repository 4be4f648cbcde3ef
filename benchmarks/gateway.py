"""Per-chunk overhead on a Dask Gateway cluster: 2,000 no-op chunks through
``job.run(cluster="gateway:NAME")`` against a bare ``client.map`` of a no-op
on the same Gateway cluster. Goal: at most 1.2x.

    python benchmarks/gateway.py [--chunks 2000] [--rounds 3] [--workers 2]

A real dask-gateway-server runs on loopback for the run (its local backend, as
in the tests); a shared cluster of ``--workers`` workers is made on it, and
both sides go through the Gateway's proxy to that cluster's scheduler. The
job's time includes everything a user waits for: validation, joining the
cluster by name, planning, the 2,000 map tasks (each commits to staging and
is recorded), assembly and ``_SUCCESS``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from _common import median, report, timed

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests.gateway_server


def noop(x):
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bnb-bench-")
    os.environ["BYTENITE_NB_HOME"] = home
    import dask

    import bytenite_nb as bn
    from bytenite_nb import gateway
    from tests.gateway_server import PASSWORD, running_gateway

    with running_gateway(home, max_workers=args.workers) as address:
        # The local backend's clusters run on this machine and see its files (shared-disk):
        # the job's destination and staging stay local folders, as in the tests.
        dask.config.set({"gateway.address": address, "gateway.auth.type": "basic",
                         "gateway.auth.kwargs": {"username": "bench", "password": PASSWORD},
                         "bytenite-nb.shared-disk": True})
        gw = gateway.gateway()
        cluster = gw.new_cluster(shutdown_on_close=False)
        gateway.closing_once(cluster.gateway)
        try:
            cluster.scale(args.workers)
            client = cluster.get_client(set_as_default=False)
            client.wait_for_workers(args.workers, timeout=120)
            job = bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="replicate", app="noop",
                         assembler="passthrough", destination=os.path.join(home, "out"),
                         params={"partitioner": {"num_replicas": args.chunks}}, config={"maxTaskRetries": 0})
            where = f"gateway:{cluster.name}"
            # Warm both paths up (imports, worker caches, the connection by name) before measuring.
            client.gather(client.map(noop, range(200), pure=False))
            job.run(cluster=where, force=True)
            bare, ours = [], []
            for _ in range(args.rounds):
                bare.append(timed(lambda: client.gather(client.map(noop, range(args.chunks), pure=False))))
                ours.append(timed(lambda: job.run(cluster=where, force=True)))
            ratio = median(ours) / median(bare)
            report(f"per-chunk overhead on a Dask Gateway cluster, {args.chunks} no-op chunks, "
                   f"{args.workers} workers", [
                       ("bare client.map (median)", f"{median(bare):.2f}s  {[round(x, 2) for x in bare]}"),
                       ("job.run(cluster='gateway:NAME') (median)",
                        f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
                       ("ratio job.run / client.map",
                        f"{ratio:.2f}x  (goal <= 1.2x: {'met' if ratio <= 1.2 else 'NOT met'})"),
                       ("overhead per chunk", f"{(median(ours) - median(bare)) / args.chunks * 1000:.3f} ms"),
                   ])
            client.close()
        finally:
            gateway.disconnect_shared(cluster.name)
            gw.stop_cluster(cluster.name)
            cluster.close(shutdown=False)
            gw.close()
            time.sleep(1)  # let the Gateway stop the cluster's processes before it stops itself


if __name__ == "__main__":
    main()
