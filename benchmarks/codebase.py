"""codebase -> identity -> codebase on a generated source tree, against the
tools that copy a tree: ``cp -r`` of the folder, and ``tar -xzf`` of the same
tree as a .tar.gz. Goal: at least 0.25x of ``cp -r`` from a folder (every file
goes through a zip, a chunk and the assembler's checks), and the rebuilt tree
identical to the input.

    python benchmarks/codebase.py [--files 5000] [--folders 50] [--target-mib 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tarfile
import tempfile

from _common import local_cluster, median, report, timed


def make_tree(root: str, files: int, folders: int, seed: int = 3) -> int:
    """A tree of ``files`` text files of 100 B to 64 KiB in ``folders`` packages (made once); its size."""
    if not os.path.exists(os.path.join(root, ".done")):
        rng = random.Random(seed)
        words = ["".join(rng.choice("abcdefghij_") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
        for i in range(files):
            folder = os.path.join(root, f"pkg{i % folders:03d}", f"sub{i % 7}")
            os.makedirs(folder, exist_ok=True)
            size = int(100 * (655.36 ** rng.random()))
            text = []
            while sum(map(len, text)) < size:
                text.append(" ".join(rng.choice(words) for _ in range(8)) + "\n")
            with open(os.path.join(folder, f"m{i:05d}.py"), "w") as f:
                f.write("".join(text))
        open(os.path.join(root, ".done"), "w").close()
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(root) for n in ns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--folders", type=int, default=50)
    parser.add_argument("--target-mib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "bnb-bench-data"))
    args = parser.parse_args()
    src = os.path.join(args.data_dir, f"tree-{args.files}x{args.folders}")
    size = make_tree(src, args.files, args.folders)
    archive = src + ".tar.gz"
    if not os.path.exists(archive):
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(src, arcname=".", filter=lambda i: None if i.name.endswith(".done") else i)
    home = tempfile.mkdtemp(prefix="bnb-bench-")
    os.environ["BYTENITE_NB_HOME"] = home
    import bytenite_nb as bn

    cluster, client = local_cluster(2)
    params = {"partitioner": {"by": "size", "target_size": args.target_mib * 2**20, "exclude": [".done"]}}
    jobs = {kind: bn.Job(source=source, partitioner="codebase", app="identity", assembler="codebase",
                         destination=os.path.join(home, f"out-{kind}"), params=params)
            for kind, source in (("folder", src), ("tar.gz", archive))}
    times: dict[str, list[float]] = {k: [] for k in ("folder", "tar.gz", "cp", "tar")}
    copy_dir = os.path.join(home, "cp")
    untar_dir = os.path.join(home, "untar")
    for _ in range(args.rounds):
        for kind, job in jobs.items():
            shutil.rmtree(os.path.join(home, f"out-{kind}"), ignore_errors=True)
            times[kind].append(timed(lambda: job.run(client=client, force=True)))
        shutil.rmtree(copy_dir, ignore_errors=True)
        times["cp"].append(timed(lambda: subprocess.run(["cp", "-r", src, copy_dir], check=True)))
        shutil.rmtree(untar_dir, ignore_errors=True)
        os.makedirs(untar_dir)
        times["tar"].append(timed(lambda: subprocess.run(["tar", "-xzf", archive, "-C", untar_dir], check=True)))
    os.remove(os.path.join(home, "out-folder", "_SUCCESS"))
    os.remove(os.path.join(copy_dir, ".done"))
    same = subprocess.run(["diff", "-r", "-q", copy_dir, os.path.join(home, "out-folder")]).returncode == 0
    folder_ratio = median(times["cp"]) / median(times["folder"])
    tar_ratio = median(times["tar"]) / median(times["tar.gz"])
    row = lambda xs: f"{median(xs):.2f}s  {[round(x, 2) for x in xs]}"  # noqa: E731
    report(f"codebase, {args.files} files, {size / 2**20:.0f} MiB, groups of {args.target_mib} MiB, "
           "2 worker processes", [
               ("cp -r (median)", row(times["cp"])),
               ("codebase -> identity -> codebase, folder (median)", row(times["folder"])),
               ("ratio / cp -r", f"{folder_ratio:.2f}x  (goal >= 0.25x: {'met' if folder_ratio >= 0.25 else 'NOT met'})"),
               ("tar -xzf (median)", row(times["tar"])),
               ("codebase -> identity -> codebase, tar.gz (median)", row(times["tar.gz"])),
               ("ratio / tar -xzf", f"{tar_ratio:.2f}x"),
               ("rebuilt tree identical to the input", str(same)),
           ])
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
