"""Paging a plan in the JupyterLab editor: the Jupyter server's answer for a
later page of a 100,000-chunk plan, cut from the plan it holds, vs planning
again (what every page cost before the server held plans), and the memory a
held plan takes, packed, vs the same plan as chunk reference objects.

Both go through ``JobManager.plan``, as ``POST /bytenite-nb/plan`` does, on a
text file of 100,000 lines split a line a chunk; the two are alternated.
Goals: a later page a small fraction of a fresh plan; the held plan a small
fraction of the objects.

    python benchmarks/plan_pages.py [--chunks 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import tracemalloc

from _common import median, report, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from bytenite_nb import Job
    from bytenite_nb.server.manager import JobManager
    from bytenite_nb.server.plan_cache import HeldPlan

    root = tempfile.mkdtemp(prefix="bnb-bench-plan-pages-")
    with open(os.path.join(root, "in.txt"), "w") as f:
        f.writelines(f"line {i} of the input\n" for i in range(args.chunks))
    job = {"partitioner": "split-lines", "app": "identity", "assembler": "concat",
           "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "in.txt"}},
           "dataDestination": "out/", "params": {"partitioner": {"lines_per_chunk": 1}}}
    manager = JobManager(root)
    fresh, later = [], []
    for round_ in range(args.rounds):
        fresh.append(timed(lambda: manager.plan(job, "job.bnjob.json", offset=0, limit=50)))
        offset = (round_ + 1) * 9_973 % args.chunks
        later.append(timed(lambda: manager.plan(job, "job.bnjob.json", offset=offset, limit=50)))

    # The same plan as objects (what job.plan() returns) and packed (what the
    # server holds once the objects are gone), each measured from nothing.
    def plan():
        return Job.from_dict(job, base_dir=root).plan(scheduler="sync")

    tracemalloc.start()
    as_objects = plan()
    objects_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    count = len(as_objects)
    del as_objects
    tracemalloc.start()
    held = HeldPlan.pack(plan())
    gc.collect()
    held_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert count == held.count == args.chunks

    report(f"plan pages: {args.chunks:,} chunks, {args.rounds} rounds", [
        ("a page, planning afresh (median)", f"{median(fresh):.3f} s"),
        ("a later page, cut from the plan held", f"{median(later) * 1000:.1f} ms"),
        ("ratio later / afresh", f"{median(later) / median(fresh):.4f}"),
        ("plan as objects", f"{objects_bytes / 2**20:.1f} MiB"),
        ("plan held, packed", f"{held_bytes / 2**20:.2f} MiB ({held.nbytes / args.chunks:.1f} bytes a chunk)"),
        ("ratio held / objects", f"{held_bytes / objects_bytes:.4f}"),
    ])


if __name__ == "__main__":
    main()
