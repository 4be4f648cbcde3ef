"""sections -> identity -> concat on a large Markdown file (headings every few
paragraphs, fenced code holding ``#`` lines, long sections cut by
``max_size``), against ``cat`` copying the same file. Goal, as for ``rows``:
at least 0.3x of cat's throughput, the output byte-identical. Planning scans
the file line by line in one Dask task; its share of the job's time is
printed too.

    python benchmarks/sections.py [--size-mib 256] [--max-size 1000000] [--rounds 3]

Every run starts alike (destination removed untimed, pages written back, the
page cache dropped when allowed), as in throughput.py.
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


def markdown_file(path: str, size: int, seed: int = 3) -> str:
    """A Markdown document of about ``size`` bytes (made once): chapters, sections
    of a few hundred KiB, and code fences whose lines start with ``#``."""
    if os.path.exists(path) and os.path.getsize(path) >= size:
        return path
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijé") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    parts = []
    for chapter in range(8):
        parts.append(f"# Chapter {chapter}\n\n")
        for section in range(6):
            parts.append(f"## Section {chapter}.{section}\n\n")
            for para in range(rng.randint(200, 600)):
                if para % 50 == 0:
                    parts.append("```python\n# a comment, not a heading\nx = 1\n```\n\n")
                if para % 100 == 0:
                    parts.append(f"### Detail {para}\n\n")
                parts.append(" ".join(rng.choice(words) for _ in range(rng.randint(20, 80))) + ".\n\n")
    return repeat_to_size(path, "".join(parts).encode(), size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--max-size", type=int, default=1_000_000, help="max_size, in characters")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    src = markdown_file(os.path.join(args.data_dir, f"doc-{args.size_mib}m.md"), args.size_mib * 2**20)
    home = tempfile.mkdtemp(prefix="bnb-bench-")
    os.environ["BYTENITE_NB_HOME"] = home
    import bytenite_nb as bn

    cluster, client = local_cluster(2)
    out = os.path.join(home, "out")
    job = bn.Job(source=src, partitioner="sections", app="identity", assembler="concat", destination=out,
                 params={"partitioner": {"level": 2, "max_size": args.max_size},
                         "assembler": {"output_name": "doc.md"}})
    cat_out = os.path.join(home, "cat.md")
    cat_times, ours, plans = [], [], []
    for _ in range(args.rounds):
        settle(src)
        plans.append(timed(lambda: job.plan(client=client)))
        shutil.rmtree(out, ignore_errors=True)
        settle(src)
        ours.append(timed(lambda: job.run(client=client, force=True)))
        if os.path.exists(cat_out):
            os.remove(cat_out)
        settle(src)
        cat_times.append(timed(lambda: subprocess.run(["cat", src], stdout=open(cat_out, "wb"), check=True)))
    chunks = len(job.plan(client=client))
    same = subprocess.run(["cmp", "-s", src, os.path.join(out, "doc.md")]).returncode == 0
    ratio = median(cat_times) / median(ours)
    size = os.path.getsize(src) / 2**20
    report(f"sections, {size:.0f} MiB Markdown, level 2, max_size {args.max_size} chars, {chunks} chunks, "
           "2 worker processes", [
        ("cat (median)", f"{median(cat_times):.2f}s  {[round(x, 2) for x in cat_times]}"),
        ("plan alone (median)", f"{median(plans):.2f}s  {[round(x, 2) for x in plans]}"),
        ("sections -> identity -> concat (median)", f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
        ("throughput ratio / cat", f"{ratio:.2f}x  (goal >= 0.3x: {'met' if ratio >= 0.3 else 'NOT met'})"),
        ("output byte-identical to the input", str(same)),
        ("client peak RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"),
    ])
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
