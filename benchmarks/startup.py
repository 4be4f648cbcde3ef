"""Start-up and small jobs: what a new user waits for, side by side with peers.

    python benchmarks/startup.py [--rounds 5] [--lithops-python PATH]

Every round runs each of these once, alternating, and prints its times; the
report gives medians and the ratios the goals are set on:

- ``import bytenite_nb`` and ``bytenite-nb --help``, each in a new process,
  against a limit of 0.3 s (``python -c pass`` is shown as the floor);
- the README's example job (``examples/uppercase``: 36 chunks, 141 KiB, one
  ``python3 app.py`` process per chunk), cold, from the command line
  (``bytenite-nb run job.json`` in a new process: its own local cluster),
  against Lithops' localhost executor running the same map - the same command
  on the same 36 byte ranges, with the results concatenated in order - also
  in a new process. Goal: at most 2x. Lithops' default localhost executor
  (v2: a process per task) and its v1 (one forked pool per job) are both
  measured; with a background cluster (``bytenite-nb cluster start``) the
  example runs again on it, for the reused-cluster time;
- a process app's per-chunk cost: the same job in this process, on the
  synchronous scheduler and on a warm one-worker local cluster, against a
  bare loop that materialises each chunk into a task folder and runs the same
  command with ``subprocess``. Goal: at most 1.3x. The job's fixed costs
  (validation, planning, assembly, records) are counted in its per-chunk cost.

Lithops is not a dependency of bytenite-nb: ``pip install "bytenite-nb[bench]"``
brings it, or point ``--lithops-python`` at an interpreter that has it. Without
it the Lithops rows are skipped, and said so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

from _common import median, report, timed

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "uppercase")
LIMIT_SECONDS = 0.3

LITHOPS_SCRIPT = textwrap.dedent('''
    """The example's map on Lithops' localhost executor: python3 app.py per byte range."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    import lithops


    def uppercase_chunk(task):
        with tempfile.TemporaryDirectory() as root:
            task_dir, results = os.path.join(root, "task"), os.path.join(root, "results")
            os.mkdir(task_dir)
            os.mkdir(results)
            with open(task["path"], "rb") as src, open(os.path.join(task_dir, "data.bin"), "wb") as dst:
                src.seek(task["start"])
                dst.write(src.read(task["end"] - task["start"]))
            env = dict(os.environ, TASK_DIR=task_dir, TASK_RESULTS_DIR=results, APP_PARAMS="{}",
                       CHUNK_NUMBER=str(task["index"]))
            subprocess.run(task["command"], cwd=task["cwd"], env=env, check=True)
            with open(os.path.join(results, "upper.txt"), "rb") as f:
                return f.read()


    def main():
        tasks_file, version, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        with open(tasks_file) as f:
            tasks = json.load(f)
        fexec = lithops.FunctionExecutor(config={
            "lithops": {"backend": "localhost", "storage": "localhost", "log_level": "WARNING"},
            "localhost": {"runtime": sys.executable, "version": version},
        })
        results = fexec.get_result(fexec.map(uppercase_chunk, [{"task": t} for t in tasks]))
        with open(out, "wb") as f:
            for data in results:
                f.write(data)
        fexec.clean()


    if __name__ == "__main__":
        main()
''')


def cli_command() -> list[str]:
    """``bytenite-nb`` as a user runs it: the console script when installed."""
    script = shutil.which("bytenite-nb")
    return [script] if script else [sys.executable, "-m", "bytenite_nb.cli"]


def run_quiet(argv: list[str], **kwargs) -> None:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout.decode(errors='replace')}")


def check_output(path: str, expected: bytes, who: str) -> None:
    with open(path, "rb") as f:
        if f.read() != expected:
            raise SystemExit(f"{who}: {path} is not the uppercased input")
    os.remove(path)


def bare_loop(tasks: list[dict], root: str) -> bytes:
    """The same command on the same chunks, one after another, with nothing else."""
    out = bytearray()
    for task in tasks:
        task_dir = os.path.join(root, f"task-{task['index']}")
        results = os.path.join(root, f"results-{task['index']}")
        os.mkdir(task_dir)
        os.mkdir(results)
        with open(task["path"], "rb") as src, open(os.path.join(task_dir, "data.bin"), "wb") as dst:
            src.seek(task["start"])
            dst.write(src.read(task["end"] - task["start"]))
        env = dict(os.environ, TASK_DIR=task_dir, TASK_RESULTS_DIR=results, APP_PARAMS="{}",
                   CHUNK_NUMBER=str(task["index"]))
        subprocess.run(task["command"], cwd=task["cwd"], env=env, check=True, stdin=subprocess.DEVNULL)
        with open(os.path.join(results, "upper.txt"), "rb") as f:
            out += f.read()
        shutil.rmtree(task_dir)
        shutil.rmtree(results)
    return bytes(out)


def has_lithops(python: str) -> bool:
    return subprocess.run([python, "-c", "import lithops"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lithops-python", default=sys.executable,
                        help="an interpreter with lithops installed (default: this one)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bnb-startup-")
    home = os.path.join(work, "home")
    example = os.path.join(work, "uppercase")
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("out"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "BYTENITE_NB_"))}
    env["BYTENITE_NB_HOME"] = home
    os.environ.clear()
    os.environ.update(env)
    cli = cli_command()
    job_file = os.path.join(example, "job.json")
    output = os.path.join(example, "out", "poem-upper.txt")
    with open(os.path.join(example, "data", "poem.txt"), "rb") as f:
        expected = f.read().upper()

    plan = json.loads(subprocess.run(cli + ["plan", "--json", "--limit", "0", job_file], check=True,
                                     capture_output=True).stdout)
    with open(job_file) as f:
        command = json.load(f)["app"]["command"]
    tasks = [{"index": c["index"], "path": c["url"].removeprefix("file://"), "start": c["start"], "end": c["end"],
              "command": command, "cwd": example} for c in plan]
    tasks_file = os.path.join(work, "tasks.json")
    with open(tasks_file, "w") as f:
        json.dump(tasks, f)
    lithops_script = os.path.join(work, "lithops_map.py")
    with open(lithops_script, "w") as f:
        f.write(LITHOPS_SCRIPT)
    lithops_out = os.path.join(work, "lithops-out.txt")
    lithops = has_lithops(args.lithops_python)
    reusable = subprocess.run(cli + ["cluster", "--help"], capture_output=True).returncode == 0

    import bytenite_nb as bn
    from bytenite_nb import cluster

    job = bn.Job.from_file(job_file)
    warm_client = cluster.local_client(1)
    # Warm up the in-process paths (imports, the worker) and the page cache.
    job.run(scheduler="sync")
    job.run(client=warm_client)
    bare_loop(tasks, tempfile.mkdtemp(dir=work))
    if reusable:
        run_quiet(cli + ["cluster", "start", "--workers", "2"])

    times: dict[str, list[float]] = {}

    def measure(name: str, fn) -> float:
        seconds = timed(fn)
        times.setdefault(name, []).append(seconds)
        return seconds

    def bare() -> None:
        if bare_loop(tasks, tempfile.mkdtemp(dir=work)) != expected:
            raise SystemExit("the bare loop's output is not the uppercased input")

    def ours(**where) -> None:
        job.run(**where)
        check_output(output, expected, "job.run()")

    def cold_cli() -> None:
        # --scheduler local: its own cluster, never one left running in the background.
        run_quiet(cli + ["run", job_file, "--scheduler", "local"] if reusable else cli + ["run", job_file])
        check_output(output, expected, "bytenite-nb run")

    def reused_cli() -> None:
        run_quiet(cli + ["run", job_file])
        check_output(output, expected, "bytenite-nb run (background cluster)")

    def lithops_run(version: int):
        def run() -> None:
            run_quiet([args.lithops_python, lithops_script, tasks_file, str(version), lithops_out])
            check_output(lithops_out, expected, f"lithops localhost v{version}")
        return run

    steps = [
        ("python -c pass", lambda: run_quiet([sys.executable, "-c", "pass"])),
        ("import bytenite_nb", lambda: run_quiet([sys.executable, "-c", "import bytenite_nb"])),
        ("bytenite-nb --help", lambda: run_quiet(cli + ["--help"])),
        ("example, cold CLI", cold_cli),
    ]
    if reusable:
        steps.append(("example, CLI on background cluster", reused_cli))
    if lithops:
        steps += [("lithops localhost (default, v2)", lithops_run(2)), ("lithops localhost v1", lithops_run(1))]
    steps += [
        ("bare subprocess loop", bare),
        ("job.run(scheduler='sync')", lambda: ours(scheduler="sync")),
        ("job.run() on 1 warm worker", lambda: ours(client=warm_client)),
    ]
    try:
        for round_number in range(1, args.rounds + 1):
            line = [f"{name} {measure(name, fn):.3f}s" for name, fn in steps]
            print(f"round {round_number}: " + "; ".join(line), flush=True)
    finally:
        if reusable:
            subprocess.run(cli + ["cluster", "stop"], capture_output=True)
        cluster.close_local()
        shutil.rmtree(work, ignore_errors=True)

    m = {name: median(xs) for name, xs in times.items()}

    def row(name: str) -> tuple[str, str]:
        return (f"{name} (median)", f"{m[name]:.3f}s  {[round(x, 3) for x in times[name]]}")

    def goal(value: float, limit: float) -> str:
        return f"{value:.2f}x  (goal <= {limit:g}x: {'met' if value <= limit else 'NOT met'})"

    n = len(tasks)
    rows = [row(name) for name, _ in steps]
    rows += [
        ("import / 0.3 s", goal(m["import bytenite_nb"] / LIMIT_SECONDS, 1)),
        ("--help / 0.3 s", goal(m["bytenite-nb --help"] / LIMIT_SECONDS, 1)),
    ]
    if lithops:
        rows += [
            ("cold CLI / lithops default (v2)", goal(m["example, cold CLI"] / m["lithops localhost (default, v2)"], 2)),
            ("cold CLI / lithops v1", goal(m["example, cold CLI"] / m["lithops localhost v1"], 2)),
        ]
        if reusable:
            rows.append(("background-cluster CLI / lithops v1",
                         goal(m["example, CLI on background cluster"] / m["lithops localhost v1"], 2)))
    else:
        rows.append(("lithops", f"skipped: no lithops in {args.lithops_python} (pip install 'bytenite-nb[bench]')"))
    bare_per_chunk = m["bare subprocess loop"] / n
    for name in ("job.run(scheduler='sync')", "job.run() on 1 warm worker"):
        rows.append((f"{name} per chunk / bare", f"{m[name] / n * 1000:.1f} ms vs {bare_per_chunk * 1000:.1f} ms: "
                     + goal(m[name] / m["bare subprocess loop"], 1.3)))
    report(f"start-up and small jobs, {n} chunks, {args.rounds} rounds", rows)


if __name__ == "__main__":
    main()
