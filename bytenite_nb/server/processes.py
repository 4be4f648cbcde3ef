"""The processes that run jobs submitted from JupyterLab: started, found,
cancelled and reaped by one class, :class:`JobProcesses`.

A job runs in a process of its own (``python -m bytenite_nb.server.launcher
FOLDER``), started detached in a new session, so it outlives a closed page and
a restart of the server. Its folder, ``$BYTENITE_NB_HOME/jupyter-jobs/ID``,
holds ``launch.json`` (base dir, cluster, pid and the process's start token),
``job.json`` (the job with its secrets left out or masked) and ``output.log``
(the process's output, secrets masked). The complete job reaches the process
through a pipe on its stdin and is never written to a file.

Which process runs a job is told by its pid *and* its start: a pid in an old
record may belong to any later process, but the start time the kernel keeps
for a process (``/proc/PID/stat``, or psutil where there is no ``/proc``)
differs. :func:`process_start` reads it; the launch record keeps the one the
job process had when it was started.

The reaper (:meth:`JobProcesses.reap`, called in the background by the
server every :data:`REAP_INTERVAL_SECONDS`) collects the exit status of the
job processes that ended and records the end of a job whose process died
without recording it (killed, out of memory...): the job FAILED, with a
message naming the process and the end of its output, and its unfinished
chunks CANCELLED. Reading a job never writes anything.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from .. import config
from .. import store as st
from ..apps.process import tail
from ..redact import redact_text

LAUNCH_DIR_NAME = "jupyter-jobs"
LAUNCHER_MODULE = "bytenite_nb.server.launcher"
LOG_TAIL_BYTES = 8192
REAP_INTERVAL_SECONDS = 1.0
#: the chunk states of a run that has not ended; a lost run's are recorded CANCELLED
UNFINISHED_CHUNK_STATES = (st.PENDING, st.CHUNK_RUNNING, st.RETRYING)
#: how far a process's start time (to the second, from the boot time) may seem to follow its own records
START_TIME_SLACK_SECONDS = 2.0
HOST = socket.gethostname()


@dataclass(frozen=True)
class ProcessStart:
    """When a process started. ``token`` tells it from every other process that
    has had or will have the same pid (compare tokens for equality); ``time`` is
    the start in seconds since the epoch, to a second or so."""

    token: str
    time: float


def process_start(pid: int, *, zombie_ok: bool = False) -> ProcessStart | None:
    """When the process ``pid`` started; None if there is no such live process
    (a zombie, which has ended but was not reaped yet, counts only with ``zombie_ok``).

    >>> here = process_start(os.getpid())
    >>> here == process_start(os.getpid()) and here.time <= time.time()
    True
    >>> process_start(2 ** 22 + 1) is None  # above any pid Linux gives
    True
    """
    if _has_proc():
        return _proc_start(pid, zombie_ok)
    return _psutil_start(pid, zombie_ok)


@lru_cache(maxsize=1)
def _has_proc() -> bool:
    return os.path.exists("/proc/self/stat")


def _proc_start(pid: int, zombie_ok: bool) -> ProcessStart | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (name) S ppid ...": fields counted from the state letter, after the last ')'
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X") and not zombie_ok:
        return None
    ticks = int(fields[19])  # field 22 of proc(5): starttime, in clock ticks after boot
    boot_id, boot_time = _boot()
    return ProcessStart(f"{boot_id}:{ticks}", boot_time + ticks / os.sysconf("SC_CLK_TCK"))


@lru_cache(maxsize=1)
def _boot() -> tuple[str, float]:
    """This boot's id (ticks restart at every boot) and its time since the epoch."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot_id = f.read().strip()
    except OSError:
        boot_id = "boot"
    boot_time = 0.0
    try:
        with open("/proc/stat", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("btime "):
                    boot_time = float(line.split()[1])
                    break
    except OSError:
        pass
    return boot_id, boot_time


def _psutil_start(pid: int, zombie_ok: bool) -> ProcessStart | None:
    # No /proc (macOS): psutil, which distributed requires, asks the kernel.
    import psutil

    try:
        process = psutil.Process(pid)
        if not zombie_ok and process.status() == psutil.STATUS_ZOMBIE:
            return None
        created = process.create_time()
    except psutil.Error:  # gone, or not ours to look at (a job process always is)
        return None
    return ProcessStart(f"psutil:{created:.6f}", created)


def process_command(pid: int) -> list[str]:
    """The command line of ``pid``, one string per argument ([] if unknown).

    >>> "python" in os.path.basename(process_command(os.getpid())[0])
    True
    """
    if _has_proc():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
        except OSError:
            return []
    import psutil

    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def runs_cli_job(command: list[str]) -> bool:
    """Is ``command`` a ``bytenite-nb run`` (the CLI's script, or ``python -m bytenite_nb.cli``)?

    >>> runs_cli_job(["/venv/bin/python3", "/venv/bin/bytenite-nb", "run", "job.json", "--id", "j1"])
    True
    >>> runs_cli_job(["python3", "-m", "bytenite_nb.cli", "validate", "job.json"])
    False
    """
    for i, arg in enumerate(command[:4]):
        if os.path.basename(arg) == "bytenite-nb":
            rest = command[i + 1:]
        elif arg == "-m" and command[i + 1:i + 2] == ["bytenite_nb.cli"]:
            rest = command[i + 2:]
        else:
            continue
        words = [a for a in rest if not a.startswith("-")]
        return bool(words) and words[0] == "run"
    return False


def run_ended(record: dict | None, launch: dict) -> bool:
    """Has the run that ``launch`` started recorded its end in ``record``?

    >>> run_ended({"state": "FAILED", "finished": 20.0}, {"started": 10.0})
    True
    >>> run_ended({"state": "FAILED", "finished": 5.0}, {"started": 10.0})  # an earlier run's end
    False
    """
    return (record is not None and record["state"] in st.FINAL_STATES
            and (record.get("finished") or 0) >= (launch.get("started") or 0))


class JobProcesses:
    """The job processes of one Jupyter server: start one with its job on
    stdin (:meth:`start`), find the live one of an id (:meth:`find`), cancel it
    (:meth:`interrupt`), and reap them (:meth:`reap`).

    ``python``: the interpreter job processes run with (this one by default).
    """

    def __init__(self, *, python: str | None = None, log=None):
        self.python = python or sys.executable
        self.log = log
        self._lock = threading.Lock()
        self._id_locks: dict[str, threading.Lock] = {}
        self._children: dict[str, subprocess.Popen] = {}  # job id -> the process this server started last
        self._watched: dict[str, dict] = {}  # job id -> the launch of a run whose end is not recorded yet
        self._scanned_home: str | None = None  # the home whose earlier launches are watched
        self._reaping = threading.Lock()

    # -- records --------------------------------------------------------------------------

    @property
    def store(self) -> st.JobStore:
        """The job store of ``$BYTENITE_NB_HOME``, where job processes record their jobs."""
        return st.default_store()

    @staticmethod
    def root() -> str:
        """The folder of the jobs' folders: ``$BYTENITE_NB_HOME/jupyter-jobs``."""
        return os.path.join(config.home(), LAUNCH_DIR_NAME)

    def folder(self, job_id: str) -> str:
        """The folder of a job submitted here: ``$BYTENITE_NB_HOME/jupyter-jobs/ID``."""
        return os.path.join(self.root(), job_id)

    def launched(self) -> list[str]:
        """The ids of the jobs submitted here (any server of this home), in no order."""
        try:
            return [name for name in os.listdir(self.root()) if not name.startswith(".")]
        except OSError:
            return []

    def read_launch(self, job_id: str) -> dict | None:
        """The launch record of a job submitted from JupyterLab, or None."""
        try:
            with open(os.path.join(self.folder(job_id), "launch.json"), encoding="utf-8") as f:
                launch = json.load(f)
        except (OSError, json.JSONDecodeError):
            return None
        return launch if isinstance(launch, dict) else None

    def _write_launch(self, job_id: str, launch: dict) -> None:
        path = os.path.join(self.folder(job_id), "launch.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(launch, f, indent=2)
        os.replace(path + ".tmp", path)

    def save_job(self, job_id: str, record: dict) -> None:
        """Write ``job.json``, the record of the job (``record`` must hold no secret)."""
        os.makedirs(self.folder(job_id), exist_ok=True)
        with open(os.path.join(self.folder(job_id), "job.json"), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)

    def saved_job(self, job_id: str) -> dict:
        """The job ``job.json`` holds. Raises OSError or ValueError if it cannot be read."""
        with open(os.path.join(self.folder(job_id), "job.json"), encoding="utf-8") as f:
            return json.load(f)

    def log_tail(self, job_id: str, limit: int = LOG_TAIL_BYTES) -> str:
        """The end of a submitted job's output, with credentials masked."""
        return redact_text(tail(os.path.join(self.folder(job_id), "output.log"), limit))

    def id_lock(self, job_id: str) -> threading.Lock:
        """The lock held while a process of ``job_id`` is checked for and started,
        or its end recorded: one of them at a time."""
        with self._lock:
            return self._id_locks.setdefault(job_id, threading.Lock())

    # -- processes ------------------------------------------------------------------------

    def start(self, job_id: str, launch: dict, job: dict) -> dict:
        """Start a job process for ``job`` (the complete job, secrets included)
        with the settings of ``launch``; return the launch record written.

        Hold :meth:`id_lock` and make sure no process runs ``job_id`` first.
        """
        folder = self.folder(job_id)
        os.makedirs(folder, exist_ok=True)
        launch = {**launch, "runs": int(launch.get("runs") or 0) + 1, "started": time.time(), "host": HOST}
        env = dict(os.environ)
        env["BYTENITE_NB_HOME"] = config.home()  # the job records into the store this server reads
        env.pop("JUPYTER_TOKEN", None)  # the job needs no access to the server
        with open(os.path.join(folder, "output.log"), "ab") as log:
            log.write(f"--- run {launch['runs']} of {job_id} ---\n".encode())
            log.flush()
            # A session of its own: the job survives the page, the server, and a
            # Ctrl-C typed at the server's terminal.
            process = subprocess.Popen([self.python, "-m", LAUNCHER_MODULE, folder], cwd=launch["baseDir"],
                                       env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        # Read before anything reaps it: until then the pid is this child's, even if it has exited.
        started = process_start(process.pid, zombie_ok=True)
        launch["pid"] = process.pid
        launch["startToken"] = started.token if started else None
        try:
            with process.stdin:
                process.stdin.write(json.dumps({"launch": launch, "job": job}, default=str).encode())
        except BrokenPipeError:
            pass  # it died before reading: its output says why, and the reaper records the end
        self._write_launch(job_id, launch)
        with self._lock:
            self._children[job_id] = process
            self._watched[job_id] = launch
        if self.log:
            self.log.info("bytenite-nb: started job %s (pid %s)", job_id, process.pid)
        return launch

    def find(self, job_id: str, record: dict | None = None) -> int | None:
        """The pid of the live process running ``job_id`` on this host, if any:
        the process started for its latest launch here, else the ``bytenite-nb
        run`` process that recorded it (``record``: its store record, read if not given).

        A pid counts only while it is the very process that was recorded: its
        start matches the launch record's token, or (a CLI run) precedes its record.
        """
        launch = self.read_launch(job_id)
        if launch is not None and self._runs(job_id, launch):
            return int(launch["pid"])
        record = self.store.get_job(job_id) if record is None else record
        if not record or not record.get("pid") or record.get("host") != HOST or record["state"] in st.FINAL_STATES:
            return None
        pid = int(record["pid"])
        started = process_start(pid)
        # The process that recorded the run started before it did; a later one given its pid, after.
        began = record.get("started") or record.get("updated") or 0
        if started is not None and started.time <= began + START_TIME_SLACK_SECONDS \
                and runs_cli_job(process_command(pid)):
            return pid
        return None

    def _runs(self, job_id: str, launch: dict) -> bool:
        """Does the process ``launch`` started still run (on this host)?"""
        pid = launch.get("pid")
        if not pid or launch.get("host") != HOST:
            return False
        with self._lock:
            child = self._children.get(job_id)
        if child is not None and child.pid == pid:
            return child.poll() is None  # and collects its exit status if it ended
        started = process_start(int(pid))
        if started is None:
            return False
        if launch.get("startToken"):
            return started.token == launch["startToken"]
        # A launch recorded before start tokens: the launcher of this very folder.
        return process_command(int(pid))[-3:] == ["-m", LAUNCHER_MODULE, self.folder(job_id)]

    def interrupt(self, job_id: str, record: dict | None = None) -> int | None:
        """Ask the process running ``job_id`` to cancel the job (SIGINT: it stops
        the running apps and writes nothing to the destination); its pid, or None
        if no process on this host runs it."""
        pid = self.find(job_id, record)
        if pid is not None:
            os.kill(pid, signal.SIGINT)
        return pid

    # -- the reaper -----------------------------------------------------------------------

    def reap(self) -> list[str]:
        """Collect the exit status of the job processes that ended, and record the
        end of every job whose process died without recording it (see
        :meth:`settle`); return the ids of those. A pass that finds another
        under way returns at once.

        The first pass for a ``BYTENITE_NB_HOME`` also watches the runs that
        earlier servers started there and that have not recorded their end.
        """
        if not self._reaping.acquire(blocking=False):
            return []
        try:
            self._watch_earlier_launches()
            with self._lock:
                watched = list(self._watched.items())
            lost = []
            for job_id, launch in watched:
                if self._runs(job_id, launch):
                    continue
                lock = self.id_lock(job_id)
                if not lock.acquire(blocking=False):
                    continue  # a submit or rerun of this id is under way: the next pass looks again
                try:
                    if self._settle(job_id, launch):
                        lost.append(job_id)
                    with self._lock:
                        if self._watched.get(job_id) is launch:
                            del self._watched[job_id]
                        child = self._children.get(job_id)
                        if child is not None and child.poll() is not None:
                            del self._children[job_id]
                finally:
                    lock.release()
            return lost
        finally:
            self._reaping.release()

    def _watch_earlier_launches(self) -> None:
        home = config.home()
        if self._scanned_home == home:
            return
        self._scanned_home = home
        for job_id in self.launched():
            launch = self.read_launch(job_id)
            if launch is not None and launch.get("host") == HOST and not run_ended(self.store.get_job(job_id), launch):
                with self._lock:
                    self._watched.setdefault(job_id, launch)

    def settle(self, job_id: str) -> bool:
        """If the latest run of ``job_id`` started from JupyterLab has no live
        process and did not record its end, record it now: the job FAILED and
        its unfinished chunks CANCELLED. Returns whether it did.

        Hold :meth:`id_lock` (a submit, a rerun or a cancel does, before it
        looks at the job's state).
        """
        launch = self.read_launch(job_id)
        if launch is None or launch.get("host") != HOST or self._runs(job_id, launch):
            return False
        return self._settle(job_id, launch)

    def _settle(self, job_id: str, seen: dict) -> bool:
        launch = self.read_launch(job_id)
        if launch is None or launch.get("pid") != seen.get("pid"):
            return False  # a later run started meanwhile: that one is watched now
        store = self.store
        record = store.get_job(job_id)
        if run_ended(record, launch):
            return False
        pid = launch.get("pid")
        how = self._exit(job_id, pid)
        output = self.log_tail(job_id, 2000).strip()
        message = (f"the job process (pid {pid}) ended{how} without recording the end of the job; "
                   "the chunks it had not finished are recorded CANCELLED"
                   + (f"; its output ends with:\n{output}" if output else ""))
        if record is None:
            store.create_job(job_id, launch.get("name") or job_id, None)
        # Chunks first: whoever sees the job FAILED sees none of its chunks running.
        store.update_chunks(job_id, [
            {"index": c["idx"], "state": st.CHUNK_CANCELLED,
             "error": None if c["state"] == st.PENDING else f"cancelled: the job process (pid {pid}) ended"}
            for c in store.chunks(job_id, states=UNFINISHED_CHUNK_STATES)])
        store.set_state(job_id, st.FAILED, error=message)
        if self.log:
            self.log.warning("bytenite-nb: job %s: its process (pid %s) ended%s without recording the end of the job",
                             job_id, pid, how)
        return True

    def _exit(self, job_id: str, pid) -> str:
        """How the process ``pid`` of ``job_id`` ended, if this server started it: " (killed by SIGKILL)"."""
        with self._lock:
            child = self._children.get(job_id)
        if child is None or child.pid != pid or child.returncode is None:
            return ""
        if child.returncode < 0:
            try:
                return f" (killed by {signal.Signals(-child.returncode).name})"
            except ValueError:
                return f" (killed by signal {-child.returncode})"
        return f" (exit status {child.returncode})"
