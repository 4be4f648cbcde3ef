"""sorted-concat: merge 64 sorted CSV results into one, against GNU ``sort -m``.

Side by side, in one run, alternating: the ``sorted-concat`` assembler over
64 sorted CSV files (with a header each) and ``LC_ALL=C sort -m -s`` over the
same rows without headers, with the same key (the first column: integers
compared as numbers, ``-k1,1n``, or with ``--key text`` words compared as text,
``-k1,1``). Goal: at least 0.5x the speed of ``sort -m``.

    python benchmarks/sorted_concat.py [--size-mib 1024] [--files 64] [--rounds 5] [--key number|text]

Each tool runs as its own process, its peak RSS read from the kernel
(``wait4``); ``sort`` is timed wall clock, the assembler inside its
``python -c`` process (in a job, that process runs already: its start and
imports are left out).
The files live in ``--data-dir`` (made once); the outputs are checked equal.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from _common import median, report

ASSEMBLE = """
import json, os, sys, time
from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers.sorted_concat import SortedConcat
paths, out, key = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
results = [ChunkResult(i, (ResultFile("part.csv", os.path.getsize(p), "file://" + p, p),)) for i, p in enumerate(paths)]
start = time.perf_counter()
SortedConcat().assemble(results, out, {"by": "key", "types": {"key": key}, "output_name": "merged.csv"})
print(time.perf_counter() - start)
"""


def make_inputs(folder: str, size: int, files: int, key: str) -> tuple[list[str], list[str]]:
    """``files`` sorted CSV files of about ``size`` bytes in all, with a header
    (for the assembler) and the same without (for sort). Made once."""
    with_header = [os.path.join(folder, f"{key}-{i:03d}.csv") for i in range(files)]
    without = [p[:-4] + ".rows" for p in with_header]
    if all(os.path.exists(p) for p in with_header + without):
        return with_header, without
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(4000)]
    per_file = size // files
    for path, rows_path in zip(with_header, without):
        rows = []
        written = 0
        while written < per_file:
            k = rng.randint(0, 10**9) if key == "number" else rng.choice(words) + rng.choice(words)
            line = f"{k},{' '.join(rng.choices(words, k=rng.randint(4, 14)))},{rng.random():.6f}\n"
            rows.append((k, line))
            written += len(line)
        # Sorted as each tool compares: numbers by value, text by byte.
        rows.sort(key=lambda r: r[0] if key == "number" else r[0].encode())
        data = "".join(line for _, line in rows).encode()
        with open(rows_path, "wb") as f:
            f.write(data)
        with open(path, "wb") as f:
            f.write(b"key,words,x\n" + data)
    return with_header, without


def run_timed(argv: list[str], env: dict | None = None, stdout=None) -> tuple[float, int, bytes]:
    """Run ``argv``; its wall-clock seconds, peak RSS in bytes and what it printed
    (when ``stdout`` is not given)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=stdout or subprocess.PIPE)
    printed = proc.stdout.read() if stdout is None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{argv[0]} failed with status {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_maxrss * 1024, printed


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--key", choices=["number", "text"], default="number")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = os.path.join(args.data_dir, f"sorted-{args.size_mib}MiB-{args.files}")
    os.makedirs(folder, exist_ok=True)
    if args.make_only:
        make_inputs(folder, args.size_mib * 2**20, args.files, args.key)
        return
    # Made in a process of their own: a child forked from a process that grew
    # while making them would report that size as its own peak RSS.
    subprocess.run([sys.executable, __file__, "--make-only", *sys.argv[1:]], check=True)
    with_header, without = make_inputs(folder, args.size_mib * 2**20, args.files, args.key)
    size = sum(os.path.getsize(p) for p in without)
    work = tempfile.mkdtemp(prefix="bnb-bench-", dir=args.data_dir)
    ours_dir = os.path.join(work, "ours")
    sort_out = os.path.join(work, "sort.csv")
    sort_env = {**os.environ, "LC_ALL": "C"}
    sort_key = "-k1,1n" if args.key == "number" else "-k1,1"

    def run_sort():
        with open(sort_out, "wb") as out:
            return run_timed(["sort", "-m", "-s", "-t,", sort_key, *without], sort_env, out)[:2]

    def run_ours():
        shutil.rmtree(ours_dir, ignore_errors=True)
        os.makedirs(ours_dir)
        # The assembler's own time: in a job its process is running already.
        _, peak, printed = run_timed([sys.executable, "-c", ASSEMBLE, json.dumps(with_header), ours_dir, args.key])
        return float(printed), peak

    for path in with_header + without:  # warm the page cache
        subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
    runs = (("sort -m", run_sort), ("sorted-concat", run_ours))
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    peaks: dict[str, int] = {name: 0 for name, _ in runs}
    for n in range(args.rounds):
        for name, fn in runs:
            seconds, peak = fn()
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
            print(f"round {n + 1}: {name:<14} {seconds:6.2f}s  peak RSS {peak / 2**20:.0f} MiB", flush=True)
    with open(os.path.join(ours_dir, "merged.csv"), "rb") as ours, open(sort_out, "rb") as theirs:
        header = ours.readline()
        same = header == b"key,words,x\n" and _same_stream(ours, theirs)
    mib = size / 2**20
    t = {k: median(v) for k, v in times.items()}
    ratio = t["sort -m"] / t["sorted-concat"]
    report(f"sorted-concat, {args.files} sorted CSV results, {mib:.0f} MiB, key: {args.key}", [
        *[(f"{k} (median of {args.rounds})",
           f"{t[k]:.2f}s  {mib / t[k]:.0f} MiB/s  peak RSS {peaks[k] / 2**20:.0f} MiB  "
           f"{[round(x, 2) for x in times[k]]}") for k in times],
        ("sorted-concat / sort -m speed", f"{ratio:.2f}x  (goal >= 0.5x: {'met' if ratio >= 0.5 else 'NOT met'})"),
        ("same rows in the same order as sort -m", str(same)),
    ])
    shutil.rmtree(work, ignore_errors=True)


def _same_stream(a, b) -> bool:
    while True:
        x, y = a.read(2**20), b.read(2**20)
        if x != y:
            return False
        if not x:
            return True


if __name__ == "__main__":
    main()
