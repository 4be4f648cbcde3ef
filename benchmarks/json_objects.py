"""json-objects -> identity -> json-objects (assembler) on a large JSON array,
against ``cat`` copying the same file. Goal: every worker's peak RSS <= 300 MiB
(the document is streamed; memory is bounded by the chunk, not the input).
The throughput ratio to ``cat`` is printed beside it (GNU cat copies with
copy_file_range, in the kernel: a hard peer), and the planning's share.

    python benchmarks/json_objects.py [--size-mib 2048] [--chunk-mib 64] [--rounds 1]

The document is made once, in a separate process (so this process's peak RSS
does not include it), in a temporary folder: an array of objects whose strings
hold escaped quotes, backslashes, brackets, commas and non-ASCII text.
Each run uses a fresh cluster, so a worker's peak RSS is that of this job.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile

from _common import local_cluster, median, report, timed

MAKE = r"""
import json, os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(3)
words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(2000)]
items = []
for i in range(40_000):
    note = " ".join(rng.choice(words) for _ in range(rng.randint(2, 14)))
    if i % 7 == 0:
        note += ' "quoted", [bracket] {brace} back\\slash é€ \U0001f600'
    items.append(json.dumps({"id": i, "score": rng.random(), "note": note,
                             "tags": [rng.choice(words) for _ in range(i % 4)],
                             "nested": {"a": [i, [i + 1, {"b": None}]], "ok": i % 2 == 0}}, ensure_ascii=i % 3 == 0))
block = ",\n  ".join(items).encode()
tmp = path + ".tmp"
with open(tmp, "wb") as f:
    f.write(b'{"version": 1, "items": [\n  ')
    written = 0
    while written < size:
        if written:
            f.write(b",\n  ")
        f.write(block)
        written += len(block)
    f.write(b'\n], "count": "unknown"}\n')
os.replace(tmp, path)
"""


def worker_peaks(client) -> dict[str, float]:
    def peak() -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return client.run(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--chunk-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bnb-bench-json-")
    try:
        src = os.path.join(folder, "items.json")
        subprocess.run([sys.executable, "-c", MAKE, src, str(args.size_mib * 2**20)], check=True)
        home = os.path.join(folder, "home")
        os.environ["BYTENITE_NB_HOME"] = home
        import bytenite_nb as bn

        out = os.path.join(folder, "out")
        cat_out = os.path.join(folder, "cat.json")
        cat_times, ours, peaks, plans = [], [], [], []
        for _ in range(args.rounds):
            cluster, client = local_cluster(2)
            job = bn.Job(source=src, partitioner="json-objects", app="identity", assembler="json-objects",
                         destination=out, params={"partitioner": {"pointer": "/items",
                                                                  "chunk_size": args.chunk_mib * 2**20}})
            plans.append(timed(lambda: job.plan(client=client)))  # one Dask task scans the whole document
            shutil.rmtree(out, ignore_errors=True)
            ours.append(timed(lambda: job.run(client=client, force=True)))
            peaks.append(max(worker_peaks(client).values()))
            client.close()
            cluster.close()
            if os.path.exists(cat_out):
                os.remove(cat_out)
            with open(cat_out, "wb") as sink:
                cat_times.append(timed(lambda: subprocess.run(["cat", src], stdout=sink, check=True)))
        same = subprocess.run(["cmp", "-s", src, os.path.join(out, "items.json")]).returncode == 0
        ratio = median(cat_times) / median(ours)
        peak = max(peaks)
        size = os.path.getsize(src) / 2**20
        report(f"json-objects, {size:.0f} MiB JSON array at /items, {args.chunk_mib} MiB chunks, 2 worker processes", [
            ("cat (median)", f"{median(cat_times):.2f}s  {[round(x, 2) for x in cat_times]}"),
            ("plan alone (median)", f"{median(plans):.2f}s  {[round(x, 2) for x in plans]}"),
            ("json-objects -> identity -> json-objects (median)", f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
            ("throughput ratio / cat", f"{ratio:.3f}x"),
            ("worker peak RSS (max over workers and rounds)",
             f"{peak:.0f} MiB  (goal <= 300 MiB: {'met' if peak <= 300 else 'NOT met'})"),
            ("client peak RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"),
            ("output byte-identical to the input", str(same)),
        ])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
