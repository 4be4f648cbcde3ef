"""Run a program for one chunk attempt, under the runtime contract.

The program gets its own process group, so a timeout or a cancel kills it
and everything it started. Its stdout and stderr go to files (an app may print
megabytes without filling anyone's memory); the tail of stderr goes into the
error of a failed attempt.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess

from .. import supervision as control
from ..exceptions import AppError, AppOutputTooLarge
from .base import TaskContext

TAIL_BYTES = 4096
OUTPUT_CHECK_SECONDS = 0.25
_HAS_PIDFD = hasattr(os, "pidfd_open") and hasattr(select, "poll")


def tail(path: str, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a file, decoded leniently ("" if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return ("..." + text) if size > limit else text


def wait_exit(proc: subprocess.Popen, timeout: float | None) -> int | None:
    """The exit status of ``proc``, or None if it still runs after ``timeout`` seconds.

    Wakes up the moment the process ends: ``Popen.wait(timeout)`` looks every
    few milliseconds, backing off to 50 ms, which a short app pays on every chunk.
    On Linux a pidfd says when the process ends; elsewhere ``Popen.wait`` it is.

    >>> proc = subprocess.Popen(["true"])
    >>> wait_exit(proc, 10)
    0
    """
    if timeout is None or not _HAS_PIDFD:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    if proc.returncode is not None:
        return proc.returncode
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # an old kernel, or a sandbox that refuses it
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            return None
    finally:
        os.close(pidfd)
    return proc.wait()


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def run_process(argv: list[str], ctx: TaskContext, *, cwd: str | None = None,
                extra_env: dict[str, str] | None = None, what: str = "the app") -> None:
    """Run ``argv`` for one attempt; raise :class:`AppError` if it fails.

    >>> import os, tempfile
    >>> from bytenite_nb.apps.base import TaskContext
    >>> root = tempfile.mkdtemp()
    >>> ctx = TaskContext(job_id="doc", chunk_number=0, task_dir=root, chunk_path=os.path.join(root, "data.bin"),
    ...                   results_dir=root, params={}, timeout=10, shared_cache_dir=root, user_cache_dir=root,
    ...                   log_dir=root)
    >>> run_process(["sh", "-c", "echo $CHUNK_NUMBER > $TASK_RESULTS_DIR/n.txt"], ctx)
    >>> open(os.path.join(root, "n.txt")).read()
    '0\\n'
    >>> run_process(["sh", "-c", "exit 3"], ctx)
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.AppError: the app exited with status 3
    """
    env = dict(os.environ)
    env.update(ctx.env())
    env.update(extra_env or {})
    run_command(argv, env=env, cwd=cwd or ctx.task_dir, job_id=ctx.job_id, timeout=ctx.timeout,
                log_dir=ctx.log_dir, what=what, max_output=ctx.max_output)


def run_command(argv: list[str], *, env: dict[str, str], cwd: str, job_id: str | None,
                timeout: float | None, log_dir: str, what: str = "the app",
                max_output: int | None = None) -> None:
    """Run ``argv`` in its own process group under the job's timeout and cancel;
    stdout and stderr go to ``log_dir``. Raise :class:`AppError` if it fails.

    A program that prints more than ``max_output`` bytes (stdout and stderr
    together) is stopped: a runaway loop of prints must not fill the disk.

    The environment is exactly ``env`` (partitioner and assembler engines get
    a contract of their own, not an app's).

    >>> import tempfile
    >>> logs = tempfile.mkdtemp()
    >>> run_command(["sh", "-c", "echo x; echo y >&2; exit 0"], env={}, cwd=logs, job_id=None, timeout=10,
    ...             log_dir=logs)
    >>> open(os.path.join(logs, "stdout.log")).read(), open(os.path.join(logs, "stderr.log")).read()
    ('x\\n', 'y\\n')
    >>> run_command(["sh", "-c", "yes | head -c 3000000"], env={}, cwd=logs, job_id=None, timeout=10,
    ...             log_dir=logs, max_output=2**20, what="a loud app")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.AppOutputTooLarge: a loud app printed more than 1 MiB to stdout and stderr ...
    """
    stdout_path = os.path.join(log_dir, "stdout.log")
    stderr_path = os.path.join(log_dir, "stderr.log")
    with control.supervised(job_id, timeout) as attempt, \
            open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise AppError(f"{what}: cannot run {argv[0]!r}: {exc.strerror}") from exc
        except PermissionError as exc:
            raise AppError(f"{what}: {argv[0]!r} is not executable: {exc.strerror}") from exc
        attempt.pgids.add(proc.pid)
        too_much = None
        try:
            while True:
                code = wait_exit(proc, OUTPUT_CHECK_SECONDS if max_output else None)
                if code is not None:
                    break
                printed = os.fstat(out.fileno()).st_size + os.fstat(err.fileno()).st_size
                if printed > max_output:
                    too_much = printed
                    os.killpg(proc.pid, signal.SIGKILL)
        finally:
            # Whatever the app left running in its group goes with it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        stopped = attempt.reason
        if max_output and too_much is None:
            # one that printed past the limit between two checks and ended is over it too
            printed = os.fstat(out.fileno()).st_size + os.fstat(err.fileno()).st_size
            too_much = printed if printed > max_output else None
    stderr_tail = tail(stderr_path)
    if stopped:
        control.raise_for(attempt, what, stderr_tail)
    if too_much is not None:
        raise AppOutputTooLarge(
            f"{what} printed more than {max_output / 2**20:g} MiB to stdout and stderr "
            f"({too_much / 2**20:.0f} MiB when stopped; config.maxAppOutput sets the limit)", stderr_tail=stderr_tail)
    if code != 0:
        raise AppError(f"{what} {describe_exit(code)}", exit_code=code, stderr_tail=stderr_tail)
