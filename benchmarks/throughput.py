"""Throughput: split-lines -> identity Python app -> concat on a large text file.

Compared side by side, in one run, with
- ``cat`` copying the same file (goal: at least 0.4x of cat's throughput);
- the same pipeline written with ``dask.bag`` (read_text in blocks, an identity
  map, to_textfiles, then the parts concatenated in order) on the same cluster
  (goal: faster).

    python benchmarks/throughput.py [--size-mib 1024] [--chunk-mib 64] [--rounds 3]

The bytenite-nb job uses the built-in ``identity`` app (a hard link from the
chunk to the result when they share a filesystem); the same job with an app
that copies every byte is measured beside it.

The file lives in ``--data-dir`` (made once). Every run starts alike: its
destination empty, dirty pages written back, the page cache dropped (as root;
otherwise earlier runs' pages stay) and the source read back into it, so each
tool reads a warm source and writes into free memory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile

from _common import local_cluster, median, report, text_file, timed


def copying_identity_app(chunk_path, results_dir, params):
    """An identity app that copies every byte (what a user's own app may do)."""
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


def settle(src: str) -> bool:
    """Write back dirty pages, free the page cache (when allowed: root) and read
    the source back into it. True if the cache could be dropped."""
    os.sync()
    dropped = False
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        dropped = True
    except OSError:
        pass
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)
    return dropped


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
    # The built-in identity app (a hard link when it can), and one that copies.
    job = bn.Job(source=src, partitioner="split-lines", app="identity", assembler="concat",
                 destination=ours_out, params={"partitioner": {"chunk_size": block},
                                               "assembler": {"output_name": "output.txt"}},
                 config={"maxTaskRetries": 0})
    copying_out = os.path.join(work, "ours-copying")
    copying_job = job.copy(app=copying_identity_app, destination=copying_out)
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    def run_cat():
        with open(os.path.join(work, "cat.txt"), "wb") as out:
            subprocess.run(["cat", src], stdout=out, check=True)

    def run_ours():
        job.run(client=client, force=True)

    def run_ours_copying():
        copying_job.run(client=client, force=True)

    def run_bag():
        bag_pipeline(client, src, os.path.join(work, "bag"), block)

    outputs = {run_cat: os.path.join(work, "cat.txt"), run_ours: ours_out, run_ours_copying: copying_out,
               run_bag: os.path.join(work, "bag")}

    def clean(fn):
        """Remove a tool's previous output (not timed: each run starts on an empty destination)."""
        path = outputs[fn]
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        if fn is run_bag:
            os.makedirs(path)

    runs = (("cat", run_cat), ("bytenite-nb", run_ours), ("bytenite-nb, copying app", run_ours_copying),
            ("dask.bag", run_bag))
    for _, fn in runs:
        clean(fn)
        fn()  # warm up: worker imports, first-touch allocations, the source in the page cache
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    for _ in range(args.rounds):
        for name, fn in runs:
            # Every run starts on an empty destination, with no dirty pages waiting
            # for the disk and free memory to write into: otherwise whichever runs
            # next pays for the writeback and page reclaim of what ran before.
            clean(fn)
            settle(src)
            times[name].append(timed(fn))
    digest = sha256(src)
    same = {name: sha256(path) == digest for name, path in (
        ("bytenite-nb", os.path.join(ours_out, "output.txt")),
        ("bytenite-nb, copying app", os.path.join(copying_out, "output.txt")),
        ("dask.bag", os.path.join(work, "bag", "output.txt")))}
    mib = size / 2**20
    t = {k: median(v) for k, v in times.items()}
    rate = {k: mib / v for k, v in t.items()}
    vs_cat = rate["bytenite-nb"] / rate["cat"]
    vs_bag = rate["bytenite-nb"] / rate["dask.bag"]
    copying_vs_cat = rate["bytenite-nb, copying app"] / rate["cat"]
    copying_vs_bag = rate["bytenite-nb, copying app"] / rate["dask.bag"]
    report(f"throughput, {mib:.0f} MiB text, {args.chunk_mib} MiB chunks, 2 worker processes", [
        *[(f"{k} (median of {args.rounds})", f"{t[k]:.2f}s  {rate[k]:.0f} MiB/s  {[round(x, 2) for x in times[k]]}")
          for k in times],
        ("bytenite-nb / cat throughput", f"{vs_cat:.2f}x  (goal >= 0.4x: {'met' if vs_cat >= 0.4 else 'NOT met'})"),
        ("bytenite-nb / dask.bag throughput", f"{vs_bag:.2f}x  (goal > 1x: {'met' if vs_bag > 1 else 'NOT met'})"),
        ("same with an app that copies: / cat", f"{copying_vs_cat:.2f}x"),
        ("same with an app that copies: / dask.bag", f"{copying_vs_bag:.2f}x"),
        ("outputs byte-identical to the input", ", ".join(f"{k}: {v}" for k, v in same.items())),
    ])
    client.close()
    cluster.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
