"""log-time's planning scan and log-merge against peers, side by side.

1. Planning: ``LogTime.plan`` over a log of ``--size-mib`` (python-logging
   format, a stack trace under every 20th entry, one entry in 10 written up to
   a minute late) against the plain Python loop one would write (each line
   matched, its timestamp parsed with strptime, entry offsets grouped by
   hour). Goal: at least as fast (>= 1x). ``grep -c`` of the timestamp lines
   (a scan that parses nothing) is shown as the floor.
2. Merge: ``log-merge`` of about 16 sorted results of that log against GNU
   ``sort -m -s`` on the timestamp columns. sort -m merges lines, not
   entries (a stack trace's lines are not kept with their entry), so it is a
   speed reference, not the same output. Goal: at least 0.5x of its speed.

    python benchmarks/log_time.py [--size-mib 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
from datetime import datetime, timedelta

from _common import median, report, timed


def log_file(path: str, size: int, seed: int = 3) -> str:
    """A python-logging log of about ``size`` bytes (made once)."""
    if os.path.exists(path) and os.path.getsize(path) >= size:
        return path
    rng = random.Random(seed)
    moment = datetime(2026, 3, 5)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(500)]
    written = 0
    with open(path, "w") as out:
        while written < size:
            lines = []
            for i in range(10_000):
                moment += timedelta(milliseconds=rng.randint(0, 400))
                stamp = moment - timedelta(seconds=rng.randint(1, 60)) if i % 10 == 3 else moment
                level = "ERROR" if i % 20 == 0 else "INFO"
                lines.append(f"{stamp:%Y-%m-%d %H:%M:%S},{stamp.microsecond // 1000:03d} {level} app.{rng.choice(words)}: "
                             + " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "\n")
                if level == "ERROR":
                    lines.append('Traceback (most recent call last):\n  File "x.py", line 3, in f\nValueError: bad\n')
            block = "".join(lines)
            out.write(block)
            written += len(block)
    return path


def python_loop(src: str) -> dict:
    """The peer: entry offsets per hour, line by line."""
    import re

    start = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
    windows: dict = {}
    offset = 0
    with open(src, "rb") as f:
        for line in f:
            m = start.match(line)
            if m:
                moment = datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S,%f")
                windows.setdefault(moment.replace(minute=0, second=0, microsecond=0), []).append(offset)
            offset += len(line)
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    src = log_file(os.path.join(args.data_dir, f"app-{args.size_mib}m.log"), args.size_mib * 2**20)
    from bytenite_nb.assemblers import ChunkResult, ResultFile
    from bytenite_nb.assemblers.log_merge import LogMerge
    from bytenite_nb.partitioners.base import Source
    from bytenite_nb.partitioners.log_time import LogTime
    from bytenite_nb.storage import FileInfo, Location

    source = Source(Location(url="file://" + os.path.dirname(src)),
                    [FileInfo(url="file://" + src, name=os.path.basename(src), size=os.path.getsize(src))])
    params = {"preset": "python-logging", "every": "1h"}
    refs: list = []
    grep, plan, loop = [], [], []
    for _ in range(args.rounds):
        loop.append(timed(lambda: python_loop(src)))
        grep.append(timed(lambda: subprocess.run(["grep", "-cE", r"^[0-9]{4}-[0-9]{2}-[0-9]{2} ", src],
                                                 stdout=subprocess.DEVNULL, check=True)))
        plan.append(timed(lambda: refs.__setitem__(slice(None), list(LogTime().plan(source, params)))))

    # About 16 sorted results: consecutive windows materialised (as log-time's chunks are), then merged.
    work = tempfile.mkdtemp(prefix="bnb-bench-logs-")
    parts = []
    step = max(1, len(refs) // 16)
    for n in range(0, len(refs), step):
        path = os.path.join(work, f"r{n:05d}.log")
        with open(path, "wb") as out:
            for ref in refs[n:n + step]:
                tmp = path + ".part"
                LogTime().materialise(ref, tmp)
                out.write(open(tmp, "rb").read())
                os.remove(tmp)
        parts.append(path)
    results = [ChunkResult(i, (ResultFile("part.log", os.path.getsize(p), "file://" + p, p),))
               for i, p in enumerate(parts)]
    merge_out = os.path.join(work, "merged")
    os.makedirs(merge_out, exist_ok=True)
    sort_out = os.path.join(work, "sorted.log")
    env = dict(os.environ, LC_ALL="C")
    sort_m, ours = [], []
    for _ in range(args.rounds):
        sort_m.append(timed(lambda: subprocess.run(["sort", "-m", "-s", "-k1,2", *parts], stdout=open(sort_out, "wb"),
                                                   env=env, check=True)))
        ours.append(timed(lambda: LogMerge().assemble(results, merge_out, {"preset": "python-logging"})))
    scan_ratio = median(loop) / median(plan)
    merge_ratio = median(sort_m) / median(ours)
    size = os.path.getsize(src) / 2**20
    report(f"log-time planning and log-merge, {size:.0f} MiB python-logging log", [
        ("grep -cE timestamp lines (median)", f"{median(grep):.2f}s  {[round(x, 2) for x in grep]}"),
        ("log-time plan, 1h windows (median)", f"{median(plan):.2f}s  {[round(x, 2) for x in plan]}  "
                                               f"({len(refs)} chunks)"),
        ("plain Python loop (median)", f"{median(loop):.2f}s  {[round(x, 2) for x in loop]}"),
        ("scan ratio / Python loop", f"{scan_ratio:.2f}x  (goal >= 1x: {'met' if scan_ratio >= 1 else 'NOT met'})"),
        ("scan ratio / grep", f"{median(grep) / median(plan):.3f}x"),
        (f"sort -m -s of {len(parts)} results (median)", f"{median(sort_m):.2f}s  {[round(x, 2) for x in sort_m]}"),
        ("log-merge (median)", f"{median(ours):.2f}s  {[round(x, 2) for x in ours]}"),
        ("merge ratio / sort -m", f"{merge_ratio:.2f}x  (goal >= 0.5x: {'met' if merge_ratio >= 0.5 else 'NOT met'})"),
    ])


if __name__ == "__main__":
    main()
