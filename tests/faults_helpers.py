"""What the fault tests share: real ``dask scheduler`` and ``dask worker``
processes started by the test, moto's S3 server in a process of its own, a
slow app that counts its runs, and checks of a destination against the
expected output.

(Test modules import this, never conftest: see tests/helpers.py.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: a ceiling that only ends a broken run; never a speed check (the machine is shared and slow)
PATIENCE = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = PATIENCE, step: float = 0.1, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what} not reached after {timeout:g}s")


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = PATIENCE) -> None:
    def listening():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[:4]} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(listening, timeout, what=f"a server on port {port}")


def process_env(**extra: str) -> dict:
    """The environment of a process a fault test starts: this checkout first on
    the path, the test's BYTENITE_NB_HOME and S3 endpoint (inherited)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def tree_of(pid: int) -> list[psutil.Process]:
    """A process and every descendant (an app runs in a session of its own, so a
    process group does not hold it)."""
    try:
        top = psutil.Process(pid)
        return [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def signal_tree(pid: int, sig: int) -> None:
    for proc in reversed(tree_of(pid)):  # children first: none is left running behind its parent
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


class DaskProcesses:
    """A Dask scheduler and workers, each a process of its own, as users run them."""

    def __init__(self, folder, env: dict | None = None):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.env = env or process_env()
        self.procs: list[subprocess.Popen] = []
        self.scheduler: subprocess.Popen | None = None
        self.address: str | None = None

    def _start(self, argv: list[str], name: str, env: dict) -> subprocess.Popen:
        log = open(os.path.join(self.folder, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start_scheduler(self, **env: str) -> str:
        port = free_port()
        self.scheduler = self._start(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"], f"scheduler-{port}", {**self.env, **env})
        wait_for_port(port, self.scheduler)
        self.address = f"tcp://127.0.0.1:{port}"
        return self.address

    def start_worker(self, name: str, nthreads: int = 1, **env: str) -> subprocess.Popen:
        """A worker (under its nanny, as ``dask worker`` runs by default)."""
        return self._start(
            [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", str(nthreads),
             "--nworkers", "1", "--name", name, "--no-dashboard",
             "--local-directory", os.path.join(self.folder, name)], f"worker-{name}", {**self.env, **env})

    def client(self):
        from distributed import Client

        return Client(self.address, set_as_default=False, timeout="60s")

    def wait_for_workers(self, n: int) -> None:
        client = self.client()
        try:
            client.wait_for_workers(n, timeout=PATIENCE)
        finally:
            client.close()

    def worker_pids(self) -> dict[str, int]:
        """The worker processes (not their nannies), by worker name."""
        client = self.client()
        try:
            names = {addr: info["name"] for addr, info in client.scheduler_info(n_workers=-1)["workers"].items()}
            return {names[addr]: pid for addr, pid in client.run(os.getpid).items() if addr in names}
        finally:
            client.close()

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL a process and every descendant. Stopped first, so that none
        starts a child between the listing of the tree and the kill."""
        signal_tree(proc.pid, signal.SIGSTOP)
        signal_tree(proc.pid, signal.SIGKILL)
        proc.wait(60)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                signal_tree(proc.pid, signal.SIGCONT)
                signal_tree(proc.pid, signal.SIGKILL)
                proc.wait(60)


class MotoServer:
    """moto's S3 server in a process of its own, which a test may stop and start
    again on the same port (moto keeps objects in memory: a restart loses them)."""

    def __init__(self, folder, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(str(folder), f"moto-{self.port}.log")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(60)

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(client_kwargs={"endpoint_url": self.url}, skip_instance_cache=True)


def counting_app(folder, sleep: float = 1.0) -> list[str]:
    """A process app that appends ``<chunk> <pid> <parent pid>`` to the file
    ``params["runs"]`` when it starts, takes ``sleep`` seconds, and writes its
    chunk, upper-cased, as ``out.txt`` (plus ``extra_bytes`` of padding when asked)."""
    path = os.path.join(str(folder), "counting_app.py")
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""\
            import json, os, time
            params = json.loads(os.environ["APP_PARAMS"])
            n = int(os.environ["CHUNK_NUMBER"])
            fd = os.open(params["runs"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{{n}} {{os.getpid()}} {{os.getppid()}}\\n".encode())
            os.close(fd)
            time.sleep(params.get("sleep", {sleep!r}))
            data = open(os.path.join(os.environ["TASK_DIR"], "data.bin"), "rb").read()
            with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "out.txt"), "wb") as out:
                out.write(data.upper())
                out.write(b"." * params.get("extra_bytes", 0))
            """))
    return [sys.executable, path]


def runs_of(path) -> list[tuple[int, int, int]]:
    """``(chunk, pid, parent pid)`` of every app start recorded by :func:`counting_app`."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [tuple(int(x) for x in line.split()) for line in f if line.endswith("\n") and line.strip()]


def run_counts(path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for chunk, _, _ in runs_of(path):
        counts[chunk] = counts.get(chunk, 0) + 1
    return counts


def input_text(path, lines: int = 120) -> bytes:
    data = "".join(f"line {i:04d} of the input\n" for i in range(lines)).encode()
    with open(path, "wb") as f:
        f.write(data)
    return data


def read_tree(folder) -> dict[str, bytes]:
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def check_destination(objects: dict[str, bytes], expected: dict[str, bytes], job_id: str, chunks: int) -> dict:
    """The destination holds exactly ``expected`` and a ``_SUCCESS`` of job ``job_id``
    that lists exactly those objects with their true sizes and checksums: nothing
    lost, nothing duplicated, nothing half-written. Returns the manifest."""
    from tests.helpers import crc32c

    objects = dict(objects)
    assert "_SUCCESS" in objects, f"no _SUCCESS among {sorted(objects)}"
    manifest = json.loads(objects.pop("_SUCCESS"))
    assert objects == expected, f"destination holds {sorted(objects)}, expected {sorted(expected)}"
    assert manifest["jobId"] == job_id
    assert manifest["chunkCount"] == chunks
    assert sorted(f["name"] for f in manifest["files"]) == sorted(expected)
    for entry in manifest["files"]:
        assert entry["size"] == len(expected[entry["name"]])
        assert entry["crc32c"] == crc32c(expected[entry["name"]])
    return manifest


def one_paragraph_error(stderr: str) -> str:
    """The error a command printed: its last paragraph, which must start with
    ``error:``; and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    paragraph = stderr.strip().split("\n\n")[-1]
    lines = paragraph.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("error:"))
    return "\n".join(lines[start:])
