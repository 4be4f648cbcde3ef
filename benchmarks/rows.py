"""rows -> identity -> concat (header mode) on a large CSV whose quoted fields
hold commas, quotes and newlines, against ``cat`` copying the same file.
Goal: at least 0.3x of cat's throughput. The same job without the check of
every row's field count (``check_fields: false``) is timed beside it, to show
what the check costs. The client's peak memory is printed (run two sizes to
see that it does not grow with the input).

    python benchmarks/rows.py [--size-mib 1024] [--chunk-mib 64] [--rounds 5]

Every run starts alike (destination removed untimed, pages written back, the
page cache dropped when allowed, the source read back), as in throughput.py.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import tempfile

from _common import local_cluster, median, repeat_to_size, report, timed
from throughput import settle


def csv_file(path: str, size: int, seed: int = 2) -> str:
    """A CSV of about ``size`` bytes with a header; a tenth of its notes are quoted
    fields holding a comma, a doubled quote and a newline (made once)."""
    if os.path.exists(path) and os.path.getsize(path) >= size:
        return path
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(2000)]
    rows = []
    for i in range(100_000):
        note = " ".join(rng.choice(words) for _ in range(rng.randint(2, 12)))
        if i % 10 == 0:
            note = f'"{note}, ""quoted""\n{rng.choice(words)}"'
        rows.append(f"{i},{rng.random():.6f},{note}\n")
    return repeat_to_size(path, "".join(rows).encode(), size, head=b"id,value,note\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    src = csv_file(os.path.join(args.data_dir, f"table-{args.size_mib}m.csv"), args.size_mib * 2**20)
    home = tempfile.mkdtemp(prefix="bnb-bench-")
    os.environ["BYTENITE_NB_HOME"] = home
    import bytenite_nb as bn

    cluster, client = local_cluster(2)
    out = os.path.join(home, "out")
    def rows_job(check: bool):
        return bn.Job(source=src, partitioner="rows", app="identity", assembler="concat", destination=out,
                      params={"partitioner": {"chunk_size": args.chunk_mib * 2**20, "check_fields": check},
                              "assembler": {"header": True, "output_name": "table.csv"}})

    job, unchecked = rows_job(True), rows_job(False)
    cat_out = os.path.join(home, "cat.csv")
    cat_times, ours, ours_unchecked = [], [], []
    for _ in range(args.rounds):
        shutil.rmtree(out, ignore_errors=True)
        settle(src)
        ours_unchecked.append(timed(lambda: unchecked.run(client=client, force=True)))
        shutil.rmtree(out, ignore_errors=True)
        settle(src)
        ours.append(timed(lambda: job.run(client=client, force=True)))
        if os.path.exists(cat_out):
            os.remove(cat_out)
        settle(src)
        cat_times.append(timed(lambda: subprocess.run(["cat", src], stdout=open(cat_out, "wb"), check=True)))
    same = subprocess.run(["cmp", "-s", src, os.path.join(out, "table.csv")]).returncode == 0
    ratio = median(cat_times) / median(ours)
    ratio_unchecked = median(cat_times) / median(ours_unchecked)
    size = os.path.getsize(src) / 2**20
    report(f"rows, {size:.0f} MiB CSV with quoted multi-line fields, {args.chunk_mib} MiB chunks, 2 worker processes", [
        ("cat (median)", f"{median(cat_times):.2f}s  {[round(x, 2) for x in cat_times]}"),
        ("rows -> identity -> concat (median)", f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
        ("throughput ratio / cat", f"{ratio:.2f}x  (goal >= 0.3x: {'met' if ratio >= 0.3 else 'NOT met'})"),
        ("same, check_fields: false (median)",
         f"{median(ours_unchecked):.2f}s  {[round(x, 2) for x in ours_unchecked]}"),
        ("its ratio / cat", f"{ratio_unchecked:.2f}x  (the field check costs "
                            f"{median(ours) - median(ours_unchecked):+.2f}s)"),
        ("output byte-identical to the input", str(same)),
        ("client peak RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"),
    ])
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
