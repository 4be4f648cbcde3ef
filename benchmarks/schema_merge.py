"""schema-merge: CSV results unified into one Parquet table, against pyarrow
reading them all at once.

Side by side, in one run, alternating, each in a process of its own (peak RSS
from the kernel, ``wait4``; the time measured inside the process, imports left
out):

- ``schema-merge`` without a schema over ``--files`` CSV results (columns
  differ: every fourth result lacks a column, every third holds doubles where
  the others hold integers), against the peer: ``pyarrow.csv.read_csv`` of
  every file, ``pa.concat_tables(promote_options="permissive")`` and
  ``pq.write_table``, all in memory. Goals: at least 0.5x the peer's speed, and
  a peak RSS below the peer's (memory holds one result, not all);
- ``schema-merge`` with a JSON Schema over the first ``--json-files`` results,
  against the same peer validating every
  row with the same compiled ``jsonschema`` validator before writing (both import
  jsonschema before the clock starts). Goal: at least 0.8x the peer's speed.

    python benchmarks/schema_merge.py [--size-mib 128] [--files 32] [--rounds 3] [--json-files 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from _common import median, report

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer", "minimum": 0}, "name": {"type": "string"},
                                           "score": {"type": "number"}, "kind": {"enum": ["a", "b", "c"]}},
          "required": ["id", "name"]}

OURS = """
import json, os, sys, time
from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers.schema_merge import SchemaMerge
paths, out, schema = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
if schema:
    import jsonschema  # imported before the clock starts, as in the peer
results = [ChunkResult(i, (ResultFile("part.csv", os.path.getsize(p), "file://" + p, p),)) for i, p in enumerate(paths)]
start = time.perf_counter()
SchemaMerge().assemble(results, out, {"schema": schema} if schema else {})
print(time.perf_counter() - start)
"""

PEER = """
import json, os, sys, time
import pyarrow as pa, pyarrow.csv as pcsv, pyarrow.parquet as pq
paths, out, schema = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
if schema:
    import jsonschema
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
start = time.perf_counter()
tables = [pcsv.read_csv(p, convert_options=pcsv.ConvertOptions(null_values=[""], strings_can_be_null=True))
          for p in paths]
table = pa.concat_tables(tables, promote_options="permissive")
if schema:
    keep = [validator.is_valid({k: v for k, v in row.items() if v is not None})
            for batch in table.to_batches(4096) for row in batch.to_pylist()]
    table = table.filter(pa.array(keep))
pq.write_table(table, os.path.join(out, "output.parquet"))
print(time.perf_counter() - start)
"""

SAME = """
import sys
import pyarrow.parquet as pq
print(pq.read_table(sys.argv[1]).equals(pq.read_table(sys.argv[2])))
"""


def make_inputs(folder: str, size: int, files: int) -> list[str]:
    paths = [os.path.join(folder, f"part-{i:03d}.csv") for i in range(files)]
    if all(os.path.exists(p) for p in paths):
        return paths
    rng = random.Random(3)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 12))) for _ in range(2000)]
    for i, path in enumerate(paths):
        columns = ["id", "name", "score"] + ([] if i % 4 == 3 else ["kind"])
        lines, written = [",".join(columns)], 0
        while written < size // files:
            score = f"{rng.random() * 100:.3f}" if i % 3 == 0 else str(rng.randint(0, 100))
            values = [str(rng.randint(0, 10**9)), rng.choice(words), score] + ([rng.choice("abc")] if len(columns) > 3 else [])
            lines.append(",".join(values))
            written += len(lines[-1]) + 1
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    return paths


def run_timed(argv: list[str]) -> tuple[float, int]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    printed = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{argv[:3]} failed with status {os.waitstatus_to_exitcode(status)}")
    return float(printed), usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=128)
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-files", type=int, default=4,
                        help="results checked against the JSON Schema (the first ones; row by row is slow)")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    folder = os.path.join(args.data_dir, f"schema-{args.size_mib}MiB-{args.files}")
    os.makedirs(folder, exist_ok=True)
    paths = make_inputs(folder, args.size_mib * 2**20, args.files)
    work = tempfile.mkdtemp(prefix="bnb-bench-", dir=args.data_dir)
    rows = []
    for label, schema, goal, inputs in (("no schema", None, 0.5, paths),
                                        ("JSON Schema", SCHEMA, 0.8, paths[:args.json_files])):
        times: dict[str, list[float]] = {"schema-merge": [], "pyarrow peer": []}
        peaks = {name: 0 for name in times}
        outputs = {}
        for n in range(args.rounds):
            for name, code in (("pyarrow peer", PEER), ("schema-merge", OURS)):
                out = os.path.join(work, name.replace(" ", "-"))
                shutil.rmtree(out, ignore_errors=True)
                os.makedirs(out)
                seconds, peak = run_timed([sys.executable, "-c", code, json.dumps(inputs), out, json.dumps(schema)])
                times[name].append(seconds)
                peaks[name] = max(peaks[name], peak)
                outputs[name] = os.path.join(out, "output.parquet")
                print(f"{label}, round {n + 1}: {name:<13} {seconds:6.2f}s  peak RSS {peak / 2**20:.0f} MiB", flush=True)
        # Compared in a process of its own: a child forked from a process that grew
        # reading them would report that size as its own peak RSS.
        same = subprocess.run([sys.executable, "-c", SAME, outputs["schema-merge"], outputs["pyarrow peer"]],
                              capture_output=True, text=True, check=True).stdout.strip() == "True"
        t = {k: median(v) for k, v in times.items()}
        ratio = t["pyarrow peer"] / t["schema-merge"]
        rows += [(f"{label}: {k} (median of {args.rounds})",
                  f"{t[k]:.2f}s  peak RSS {peaks[k] / 2**20:.0f} MiB  {[round(x, 2) for x in times[k]]}") for k in t]
        rows.append((f"{label}: schema-merge / peer speed",
                     f"{ratio:.2f}x  (goal >= {goal}x: {'met' if ratio >= goal else 'NOT met'})"))
        if schema is None:
            lower = peaks["schema-merge"] < peaks["pyarrow peer"]
            rows.append((f"{label}: peak RSS below the peer's", f"{lower}  (goal: {'met' if lower else 'NOT met'})"))
        rows.append((f"{label}: the same table as the peer", str(same)))
    report(f"schema-merge, {args.files} CSV results, {args.size_mib} MiB", rows)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
