"""Per-chunk overhead of the container runtime: chunks of a no-op container app
against a bare ``podman run --rm IMAGE true`` loop of the same image, measured
side by side in one run (alternating rounds), reported as ratios of medians.

    python benchmarks/container_overhead.py [--chunks 40] [--rounds 3]

Three things are timed, each over ``--chunks`` containers, one at a time:

- bare: ``podman run --rm IMAGE true`` in a loop; and the same with
  ``--network none``, since the runtime turns networking off and setting up a
  network is most of what a bare run costs;
- runtime: :class:`~bytenite_nb.apps.container.ContainerApp` run on one chunk
  after another (a task folder with ``data.bin``, the contract's mounts, no
  network, read-only root, unprivileged user, ownership handed back);
- job: ``job.run()`` of the same app on a one-worker LocalCluster, with
  everything a user waits for (planning, map tasks, commits, assembly).

Needs podman and the test images (``scripts/build-test-images.sh``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile

from _common import local_cluster, median, report, timed

IMAGE = "localhost/bytenite-nb-test/busybox:1"


def bare_loop(n: int, *options: str) -> None:
    for _ in range(n):
        subprocess.run(["podman", "run", "--rm", *options, IMAGE, "true"], check=True, stdout=subprocess.DEVNULL)


def runtime_loop(app, n: int, root: str) -> None:
    from bytenite_nb.apps.base import TaskContext

    for i in range(n):
        task, results, logs = (os.path.join(root, name) for name in ("task", f"results-{i}", "logs"))
        for folder in (task, results, logs):
            os.makedirs(folder, exist_ok=True)
        with open(os.path.join(task, "data.bin"), "wb") as f:
            f.write(b"chunk\n")
        ctx = TaskContext(job_id="bench", chunk_number=i, task_dir=task, chunk_path=os.path.join(task, "data.bin"),
                          results_dir=results, params={}, timeout=60, shared_cache_dir=os.path.join(root, "shared"),
                          user_cache_dir=os.path.join(root, "user"), log_dir=logs)
        os.makedirs(ctx.shared_cache_dir, exist_ok=True)
        os.makedirs(ctx.user_cache_dir, exist_ok=True)
        app.run(ctx)
        shutil.rmtree(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        raise SystemExit(f"{IMAGE} is missing: run scripts/build-test-images.sh first")
    home = tempfile.mkdtemp(prefix="bnb-bench-")
    os.environ["BYTENITE_NB_HOME"] = home
    import bytenite_nb as bn
    from bytenite_nb.apps.container import ContainerApp

    app = ContainerApp(IMAGE, ["true"])
    job = bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="replicate",
                 app={"image": IMAGE, "command": ["true"]}, assembler="passthrough",
                 destination=os.path.join(home, "out"), params={"partitioner": {"num_replicas": args.chunks}},
                 config={"maxTaskRetries": 0})
    cluster, client = local_cluster(1)
    scratch = os.path.join(home, "runtime")
    try:
        # Warm up: images in the page cache, imports, the worker.
        bare_loop(2)
        runtime_loop(app, 2, scratch)
        bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="replicate", app=job.app,
               assembler="passthrough", destination=os.path.join(home, "warm"),
               params={"partitioner": {"num_replicas": 2}}).run(client=client)
        bare, offline, runtime, whole = [], [], [], []
        for _ in range(args.rounds):
            bare.append(timed(lambda: bare_loop(args.chunks)) / args.chunks)
            offline.append(timed(lambda: bare_loop(args.chunks, "--network", "none")) / args.chunks)
            runtime.append(timed(lambda: runtime_loop(app, args.chunks, scratch)) / args.chunks)
            whole.append(timed(lambda: job.run(client=client, force=True)) / args.chunks)
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(home, ignore_errors=True)
    b, o, r, w = median(bare), median(offline), median(runtime), median(whole)
    report(f"container overhead, {args.chunks} chunks x {args.rounds} rounds, one at a time", [
        ("bare podman run per container", f"{b * 1000:.0f} ms"),
        ("bare podman run --network none", f"{o * 1000:.0f} ms"),
        ("ContainerApp per chunk", f"{r * 1000:.0f} ms"),
        ("job.run() per chunk (1 worker)", f"{w * 1000:.0f} ms"),
        ("runtime / bare", f"{r / b:.2f}x"),
        ("job / bare", f"{w / b:.2f}x"),
        ("runtime / bare --network none", f"{r / o:.2f}x"),
        ("job / bare --network none", f"{w / o:.2f}x"),
    ])


if __name__ == "__main__":
    main()
