"""Throughput: split-lines -> identity Python app -> concat on a large text file.

Compared side by side, in one run, with
- ``cat`` copying the same file (goal: at least 0.4x of cat's throughput);
- the same pipeline written with ``dask.bag`` (read_text in blocks, an identity
  map, to_textfiles, then the parts concatenated in order) on the same cluster
  (goal: faster).

    python benchmarks/throughput.py [--size-mib 1024] [--chunk-mib 64] [--rounds 3]

The file lives in ``--data-dir`` (made once); every tool reads it warm from the
page cache (a first untimed read puts it there).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile

from _common import local_cluster, median, report, text_file, timed


def identity_app(chunk_path, results_dir, params):
    """The identity app: the chunk, unchanged, as the chunk's result."""
    shutil.copyfile(chunk_path, os.path.join(results_dir, "part.txt"))


def bag_pipeline(client, src: str, out_dir: str, block: int) -> str:
    import dask.bag as db
    from dask import delayed

    parts_dir = os.path.join(out_dir, "parts")
    # One element per partition: to_textfiles puts a newline between elements,
    # so joining the partition's lines keeps the output byte-identical.
    bag = db.read_text(src, blocksize=block, linedelimiter="\n").map_partitions(lambda lines: ["".join(lines)])
    names = bag.to_textfiles(os.path.join(parts_dir, "*.part"), compute=False)

    @delayed
    def concat(_, parts_dir=parts_dir, target=os.path.join(out_dir, "output.txt")):
        parts = sorted(os.listdir(parts_dir), key=lambda n: int(n.split(".")[0]))
        with open(target, "wb") as out:
            for name in parts:
                with open(os.path.join(parts_dir, name), "rb") as f:
                    shutil.copyfileobj(f, out, 8 * 2**20)
        shutil.rmtree(parts_dir)
        return target

    return client.compute(concat(names)).result()


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    src = text_file(os.path.join(args.data_dir, f"text-{args.size_mib}MiB.txt"), args.size_mib * 2**20)
    size = os.path.getsize(src)
    work = tempfile.mkdtemp(prefix="bnb-bench-", dir=args.data_dir)
    os.environ["BYTENITE_NB_HOME"] = os.path.join(work, "home")
    import bytenite_nb as bn

    cluster, client = local_cluster(2)
    block = args.chunk_mib * 2**20
    ours_out = os.path.join(work, "ours")
    job = bn.Job(source=src, partitioner="split-lines", app=identity_app, assembler="concat",
                 destination=ours_out, params={"partitioner": {"chunk_size": block},
                                               "assembler": {"output_name": "output.txt"}},
                 config={"maxTaskRetries": 0})
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    def run_cat():
        with open(os.path.join(work, "cat.txt"), "wb") as out:
            subprocess.run(["cat", src], stdout=out, check=True)

    def run_ours():
        shutil.rmtree(ours_out, ignore_errors=True)
        job.run(client=client, force=True)

    def run_bag():
        out = os.path.join(work, "bag")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        bag_pipeline(client, src, out, block)

    times = {"cat": [], "bytenite-nb": [], "dask.bag": []}
    for _ in range(args.rounds):
        for name, fn in (("cat", run_cat), ("bytenite-nb", run_ours), ("dask.bag", run_bag)):
            times[name].append(timed(fn))
    digest = sha256(src)
    same = {name: sha256(path) == digest for name, path in (
        ("bytenite-nb", os.path.join(ours_out, "output.txt")), ("dask.bag", os.path.join(work, "bag", "output.txt")))}
    mib = size / 2**20
    t = {k: median(v) for k, v in times.items()}
    rate = {k: mib / v for k, v in t.items()}
    vs_cat = rate["bytenite-nb"] / rate["cat"]
    vs_bag = rate["bytenite-nb"] / rate["dask.bag"]
    report(f"throughput, {mib:.0f} MiB text, {args.chunk_mib} MiB chunks, 2 worker processes", [
        *[(f"{k} (median of {args.rounds})", f"{t[k]:.2f}s  {rate[k]:.0f} MiB/s  {[round(x, 2) for x in times[k]]}")
          for k in times],
        ("bytenite-nb / cat throughput", f"{vs_cat:.2f}x  (goal >= 0.4x: {'met' if vs_cat >= 0.4 else 'NOT met'})"),
        ("bytenite-nb / dask.bag throughput", f"{vs_bag:.2f}x  (goal > 1x: {'met' if vs_bag > 1 else 'NOT met'})"),
        ("outputs byte-identical to the input", ", ".join(f"{k}: {v}" for k, v in same.items())),
    ])
    client.close()
    cluster.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
