"""Staging: where a job's chunk results wait, committed, until assembly.

Layout under ``<staging>/<job id>/``::

    job.json                 the job's fingerprint (a reused id must be the same job)
    plan.json                the chunk references (a resumed run uses the same plan)
    results/<i>-<token>/     what one attempt of chunk i wrote
    commits/                 the commit records

A chunk is committed when its commit record exists. The record is written
last, after the results, and names the attempt folder it vouches for, so a
half-written attempt or a straggler from an older run is never mistaken for a
result. A committed chunk is never run again for the same job id: that is
resume.

Two kinds, chosen by the staging URL (:meth:`Staging.open`):

- :class:`LocalStaging`, on a local filesystem: each worker process appends
  its records, one JSON line per chunk, to its own log
  (``commits/<pid>-<id>.jsonl``): an append costs far less than creating a
  file, and a line torn by a crash is ignored (its chunk simply runs again).
  An attempt's results are written inside staging and renamed into place.
- :class:`ObjectStaging`, on an object store (or any other fsspec
  filesystem): each record is its own object (``commits/<i>.json``), written
  with a single PUT, which is atomic; results are uploaded at commit.
"""

from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import re
import shutil
import socket
from collections import OrderedDict
import tempfile
import threading
import time
import uuid

from fsspec.core import url_to_fs

from ..assemblers.base import ChunkResult, ResultFile
from ..exceptions import JobAlreadyRunning, ResumeConflict, StagingFull, StagingGone, StorageError
from ..transfer import list_tree
from ..partitioners.base import ChunkRef

log = logging.getLogger(__name__)


class Staging:
    """The staging area of one job: what both kinds share.

    >>> s = Staging.open("file:///tmp/bnb-doc-staging", "job-1")
    >>> type(s).__name__, s.is_committed(0)
    ('LocalStaging', False)
    """

    LOCK = "runner.lock"
    #: a lock not refreshed for this long belongs to a runner that is gone
    LOCK_STALE_SECONDS = 120.0
    #: whether staged files are on this machine's filesystem
    local = False

    def __init__(self, root_url: str, job_id: str, storage_options: dict | None = None):
        self.job_id = job_id
        self.storage_options = dict(storage_options or {})
        self.url = root_url.rstrip("/") + "/" + job_id
        self.fs, self.path = url_to_fs(self.url, **self.storage_options)
        self._generations: dict[int, int] = {}

    @staticmethod
    def open(root_url: str, job_id: str, storage_options: dict | None = None) -> "Staging":
        """The staging area of ``job_id`` under ``root_url``, of the kind its filesystem needs."""
        fs, _ = url_to_fs(root_url, **(storage_options or {}))
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        cls = LocalStaging if "file" in protocols else ObjectStaging
        return cls(root_url, job_id, storage_options)

    @classmethod
    def of(cls, spec, job_id: str) -> "Staging":
        """The staging area of a job (``config.staging`` or the default), one object per process."""
        key = (spec.staging_url, job_id, repr(sorted(spec.storage_options.items())))
        with _cache_lock:
            staging = _cache.pop(key, None)
            if staging is None:
                staging = Staging.open(spec.staging_url, job_id, spec.storage_options)
            _cache[key] = staging  # most recently used last
            while len(_cache) > CACHED_STAGINGS:
                _, old = _cache.popitem(last=False)
                old.close()  # a long-lived worker must not keep a file open per job forever
            return staging

    # -- what each kind does its own way ---------------------------------------------------

    def _write_json(self, rel: str, data) -> None:
        """Write a small JSON file atomically: readers see the old one or the new one."""
        raise NotImplementedError

    def _read_json(self, rel: str):
        raise NotImplementedError

    def _commit_names(self) -> list[str]:
        """The names in ``commits/`` (FileNotFoundError when there is none)."""
        raise NotImplementedError

    def _read_records(self, name: str) -> list[dict]:
        """The commit records in ``commits/<name>``."""
        record = self._read_json(f"commits/{name}") if name.endswith(".json") else None
        return [record] if record is not None else []

    def lock(self) -> None:
        """Take the job id for this process; :class:`JobAlreadyRunning` if a live
        runner holds it. A lock whose process is gone (same host) or that was
        not refreshed for :attr:`LOCK_STALE_SECONDS` is taken over."""
        raise NotImplementedError

    def refresh_lock(self) -> None:
        """Show the lock's runner is alive (called periodically while the job runs)."""
        raise NotImplementedError

    def unlock(self) -> None:
        raise NotImplementedError

    def new_attempt(self, index: int) -> tuple[str, str]:
        """``(token, local results folder)`` for a new attempt of chunk ``index``."""
        raise NotImplementedError

    def commit(self, index: int, token: str, results_dir: str, stats: dict | None = None) -> dict:
        """Commit one attempt's results: check them, move or upload them, write the record last."""
        raise NotImplementedError

    def output_dir(self) -> str:
        """A fresh local folder for the assembler's output."""
        raise NotImplementedError

    def clear(self) -> None:
        """Delete everything staged for this job (but its runner's lock)."""
        raise NotImplementedError

    def remove(self) -> None:
        """Delete the staging area of this job."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of what this object holds open (nothing, unless a kind says otherwise)."""

    # -- shared ------------------------------------------------------------------------

    def _p(self, *parts: str) -> str:
        return "/".join([self.path.rstrip("/"), *parts])

    def claim(self, fingerprint: str, *, force: bool = False) -> bool:
        """Bind the staging area to a job; True if it already held work of that job.

        Raises :class:`ResumeConflict` if the id was used for a different job.
        """
        if force:
            self.clear()
        current = self._read_json("job.json")
        if current is not None:
            if current.get("fingerprint") != fingerprint:
                raise ResumeConflict(
                    f"job id {self.job_id!r} already belongs to a different job (its source, partitioner, app "
                    f"or params differ); pick another id, or run with force to start it over")
            return True
        self._write_json("job.json", {"id": self.job_id, "fingerprint": fingerprint, "created": time.time()})
        return False

    def _exists(self, rel: str) -> bool:
        raise NotImplementedError

    def check_open(self, index: int) -> None:
        """Raise :class:`StagingGone` when the job's staging area was removed (its
        job ended): a late attempt - a worker frozen, then woken - must not bring
        it back, nor commit into it."""
        if not self._exists("job.json"):
            raise StagingGone(f"chunk {index}: the staging area of job {self.job_id} is gone from {self.url} (the "
                              f"job ended, or staging lost its files); this attempt's results are thrown away")

    def out_of_space(self, exc: BaseException, what: str) -> StagingFull | None:
        """A :class:`StagingFull` naming the staging folder when ``exc`` - an error of
        ours, or an app's that quotes its stderr - is a full filesystem under
        staging; None otherwise. ``what`` says what was under way."""
        return None

    def _me(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}

    def _lock_is_live(self, holder: dict, refreshed: float) -> bool:
        if time.time() - refreshed > self.LOCK_STALE_SECONDS:
            return False
        if holder.get("host") == socket.gethostname():
            pid = holder.get("pid")
            try:
                os.kill(int(pid), 0)
            except (ProcessLookupError, TypeError, ValueError):
                return False
            except PermissionError:
                return True
        return True

    def _busy_message(self, holder: dict) -> str:
        return (f"job {self.job_id} is already running (process {holder.get('pid')} on {holder.get('host')}); "
                "wait for it to end or cancel it, or use another id")

    def save_plan(self, refs: list[ChunkRef]) -> None:
        self._write_json("plan.json", [r.to_dict() for r in refs])

    def load_plan(self) -> list[ChunkRef] | None:
        data = self._read_json("plan.json")
        return None if data is None else [ChunkRef.from_dict(d) for d in data]

    def save_skipped(self, found: dict) -> None:
        """Keep what the plan skipped (``on_bad: skip``), for ``_SUCCESS``."""
        self._write_json("skipped.json", found)

    def skipped(self, indices: list[int]) -> dict:
        """What was skipped as bad records, by the plan and by the committed
        chunks ``indices``: ``{"count", "records"}`` (see :mod:`bytenite_nb.bad_records`)."""
        from ..bad_records import KEEP

        total = dict(self._read_json("skipped.json") or {"count": 0, "records": []})
        records = self._records()
        for i in indices:
            found = records.get(i, {}).get("skipped")
            if found:
                total["count"] += found["count"]
                total["records"] += found["records"][: max(0, KEEP - len(total["records"]))]
        return total

    def _records(self) -> dict[int, dict]:
        """Every commit record, by chunk index (the earliest commit of a chunk wins)."""
        try:
            names = self._commit_names()
        except FileNotFoundError:
            return {}
        found: list[dict] = []
        for name in names:
            found += self._read_records(name)
        records: dict[int, dict] = {}
        for record in sorted(found, key=lambda r: r.get("time", 0)):
            records.setdefault(record["index"], record)
        return records

    def committed(self) -> set[int]:
        """Indices of the committed chunks."""
        return set(self._records())

    def is_committed(self, index: int) -> bool:
        return index in self._records()

    def record(self, index: int) -> dict | None:
        """The commit record of chunk ``index``, or None while it is not committed.

        >>> Staging.open("file:///tmp/bnb-doc-staging", "job-2").record(0) is None
        True
        """
        return self._records().get(index)

    def discard(self, index: int, token: str, results_dir: str) -> None:
        """Throw away a failed attempt's results."""
        # Never reuse the folder of a failed attempt: a straggling process of it
        # could still write there.
        shutil.rmtree(results_dir, ignore_errors=True)
        ident = threading.get_ident()
        self._generations[ident] = self._generations.get(ident, 0) + 1

    def results(self, indices: list[int]) -> list[ChunkResult]:
        """The committed results of chunks ``indices``, in that order."""
        records = self._records()
        missing = [i for i in indices if i not in records]
        if missing:
            # Their commit records were seen (the chunks counted as done), and are gone:
            # staging lost them (an object store that lost its data, a folder removed).
            raise StorageError(f"the committed results of chunk(s) {missing[:10]} of job {self.job_id} are gone from "
                               f"{self.url} (staging lost its files); run the job again with the same id to run them again")
        plan = {ref.index: ref for ref in self.load_plan() or []}
        return [self._result(records[i], plan[i].info() if i in plan else {"index": i}) for i in indices]

    def _local_path(self, path: str) -> str | None:
        """Where a staged file can be read without a download (None: it cannot)."""
        return None

    def _result(self, marker: dict, info: dict) -> ChunkResult:
        index = marker["index"]
        folder = self._p("results", f"{index:08d}-{marker['token']}")
        files = []
        for name, size in marker["files"]:
            path = f"{folder}/{name}"
            files.append(ResultFile(name=name, size=size, url=self.fs.unstrip_protocol(path),
                                    local_path=self._local_path(path), storage_options=self.storage_options))
        return ChunkResult(index=index, files=tuple(files), info=info)


class LocalStaging(Staging):
    """Staging on a local filesystem: renames, and one append-only commit log per process."""

    local = True

    def __init__(self, root_url: str, job_id: str, storage_options: dict | None = None):
        super().__init__(root_url, job_id, storage_options)
        self._log: int | None = None
        self._log_path: str | None = None
        self._log_pid: int | None = None
        self._log_lock = threading.Lock()
        # Not made here: looking at a job's staging must not bring back one that was removed.

    def _write_json(self, rel: str, data) -> None:
        path = self._p(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(json.dumps(data).encode())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one

    def _read_json(self, rel: str):
        try:
            with open(self._p(rel), "rb") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def _exists(self, rel: str) -> bool:
        return os.path.exists(self._p(rel))

    def out_of_space(self, exc: BaseException, what: str) -> StagingFull | None:
        ours = isinstance(exc, OSError) and exc.errno in NO_SPACE
        if not ours and not any(os.strerror(code) in str(exc) for code in NO_SPACE):
            return None
        folder = self.path
        while not os.path.exists(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        usage = shutil.disk_usage(folder)
        if not ours and usage.free > max(NEARLY_FULL, usage.total // 100):
            return None  # an app's own disk was full, not staging's
        root = os.path.dirname(self.path)
        return StagingFull(f"staging is full: no space left on the filesystem of {root} (config.staging or the "
                           f"bytenite-nb.staging setting; {usage.free} of {usage.total} bytes free) while {what}. "
                           f"Free space there or point staging at a larger volume, then run again with the same id")

    def _commit_names(self) -> list[str]:
        return os.listdir(self._p("commits"))

    def _read_records(self, name: str) -> list[dict]:
        if not name.endswith(".jsonl"):
            return super()._read_records(name)
        found = []
        with open(self._p("commits", name), "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break  # torn by a crash: that chunk runs again
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def lock(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        path = self._p(self.LOCK)
        for _ in range(3):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._read_json(self.LOCK) or {}
                if self._lock_is_live(holder, os.path.getmtime(path) if os.path.exists(path) else 0):
                    raise JobAlreadyRunning(self._busy_message(holder)) from None
                try:
                    os.remove(path)  # stale: its runner is gone
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self._me(), f)
            return
        raise JobAlreadyRunning(f"job {self.job_id}: could not take its lock at {path}")

    def refresh_lock(self) -> None:
        try:
            os.utime(self._p(self.LOCK))
        except OSError:
            pass

    def unlock(self) -> None:
        try:
            os.remove(self._p(self.LOCK))
        except OSError:
            pass

    def new_attempt(self, index: int) -> tuple[str, str]:
        """The app writes into a folder of staging kept for this thread, renamed
        into place at commit (same filesystem: no copy) - or left as it is when
        the app wrote nothing. A late attempt of a job that ended starts nothing."""
        self.check_open(index)
        token = uuid.uuid4().hex[:12]
        # A failed attempt bumps this thread's generation: its folder is never reused.
        generation = self._generations.get(threading.get_ident(), 0)
        folder = self._p("results", f"_work-{os.getpid()}-{threading.get_ident()}-{generation}")
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
        return token, folder

    def commit(self, index: int, token: str, results_dir: str, stats: dict | None = None) -> dict:
        files = list_tree(results_dir, what=f"chunk {index}: the results folder")
        self.check_open(index)
        if files:
            os.rename(results_dir, self._p("results", f"{index:08d}-{token}"))  # made again for the next attempt
        record = {"index": index, "token": token, "files": files, "time": time.time(), **(stats or {})}
        self._append_record(record)
        return record

    def _append_record(self, record: dict) -> None:
        line = (json.dumps(record) + "\n").encode()
        with self._log_lock:
            # Reopen after a fork, or when the staging area was cleared under us
            # (a forced re-run of the same id): never append to a deleted file.
            if self._log is None or self._log_pid != os.getpid() or not os.path.exists(self._log_path):
                if self._log is not None and self._log_pid == os.getpid():
                    os.close(self._log)
                folder = self._p("commits")
                os.makedirs(folder, exist_ok=True)
                self._log_path = os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl")
                self._log = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._log_pid = os.getpid()
            # One write(2) of one line on an O_APPEND file: never interleaved with another.
            os.write(self._log, line)

    def _local_path(self, path: str) -> str | None:
        return path

    def output_dir(self) -> str:
        folder = self._p(f"output-{uuid.uuid4().hex[:8]}")
        os.makedirs(folder)
        return folder

    def close(self) -> None:
        with self._log_lock:
            if self._log is not None:
                os.close(self._log)
                self._log = None

    def clear(self) -> None:
        self.close()
        os.makedirs(self.path, exist_ok=True)
        for entry in os.scandir(self.path):
            if entry.name == self.LOCK:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.remove(entry.path)

    def remove(self) -> None:
        self.close()
        remove_in_background(self.path)


#: what a staging area being removed is renamed to: ``.removing-<job id>-<8 hex>``
#: beside it (a job id never starts with a dot, so no job's staging has such a name)
REMOVING = re.compile(r"\.removing-[A-Za-z0-9._-]+-[0-9a-f]{8}")


def remove_in_background(path: str) -> threading.Thread | None:
    """Take the folder ``path`` away at once - a rename - and delete its files in
    a thread, with any a process stopped before it finished (``.removing-*``
    beside it). Deleting a job's staged results (gigabytes, often still in the
    page cache) takes a noticeable time that whoever waits for the job need not
    wait for. A process waits for it at exit, up to :data:`EXIT_WAIT` seconds
    (a hung filesystem must not keep it alive; what is left is swept later).

    >>> import tempfile
    >>> root = tempfile.mkdtemp(); folder = os.path.join(root, "job")
    >>> os.makedirs(os.path.join(folder, "chunks"))
    >>> remove_in_background(folder).join(); os.listdir(root)
    []
    >>> os.rmdir(root)
    """
    parent, name = os.path.split(path.rstrip("/"))
    trash = os.path.join(parent, f".removing-{name}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return None
    except OSError:  # cannot rename here: delete in place, now
        shutil.rmtree(path, ignore_errors=True)
        return None

    def delete() -> None:
        try:
            shutil.rmtree(trash, ignore_errors=True)
            with os.scandir(parent) as entries:
                left = [e.path for e in entries if REMOVING.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
            for folder in left:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # the staging root went away, or cannot be listed: nothing left to sweep
            pass
        finally:
            _removals.discard(threading.current_thread())

    log.debug("deleting %s (was %s) in the background", trash, path)
    thread = threading.Thread(target=delete, name="bytenite-nb-staging-removal", daemon=True)
    _removals.add(thread)
    thread.start()
    return thread


#: seconds a process waits at exit for the staging areas it is still deleting
EXIT_WAIT = 60.0
_removals: set[threading.Thread] = set()


@atexit.register
def _wait_for_removals() -> None:
    deadline = time.monotonic() + EXIT_WAIT
    for thread in list(_removals):
        thread.join(max(0.0, deadline - time.monotonic()))


class ObjectStaging(Staging):
    """Staging on an object store: one object per commit record, results uploaded at commit."""

    def _write_json(self, rel: str, data) -> None:
        self.fs.pipe_file(self._p(rel), json.dumps(data).encode())  # one PUT: atomic on object stores

    def _read_json(self, rel: str):
        try:
            return json.loads(self.fs.cat_file(self._p(rel)))
        except FileNotFoundError:
            return None

    def _exists(self, rel: str) -> bool:
        return self.fs.exists(self._p(rel))

    def _commit_names(self) -> list[str]:
        return [p.rsplit("/", 1)[-1] for p in self.fs.ls(self._p("commits"), detail=False)]

    def lock(self) -> None:
        # Object stores have no exclusive create here: check, then claim.
        holder = self._read_json(self.LOCK)
        if holder and self._lock_is_live(holder, holder.get("time", 0)) and holder.get("pid") != os.getpid():
            raise JobAlreadyRunning(self._busy_message(holder))
        self._write_json(self.LOCK, self._me())

    def refresh_lock(self) -> None:
        try:
            self._write_json(self.LOCK, self._me())
        except OSError:
            pass

    def unlock(self) -> None:
        try:
            self.fs.rm_file(self._p(self.LOCK))
        except (FileNotFoundError, OSError):
            pass

    def new_attempt(self, index: int) -> tuple[str, str]:
        """The app writes into a temporary local folder that commit uploads."""
        return uuid.uuid4().hex[:12], tempfile.mkdtemp(prefix=f"bytenite-nb-{self.job_id}-{index}-")

    def commit(self, index: int, token: str, results_dir: str, stats: dict | None = None) -> dict:
        files = list_tree(results_dir, what=f"chunk {index}: the results folder")
        self.check_open(index)
        final = self._p("results", f"{index:08d}-{token}")
        for name, _ in files:
            self.fs.put_file(os.path.join(results_dir, name), f"{final}/{name}")
        if files:
            # The record vouches for the files: check they are there (one listing), in
            # case the store lost them since the upload (a restart of a store without
            # durable storage). Another attempt uploads them again.
            self.fs.invalidate_cache(final)
            found = {path[len(final) + 1:]: info.get("size") for path, info in
                     self.fs.find(final, detail=True).items()}
            lost = [name for name, size in files if found.get(name) != size]
            if lost:
                raise StorageError(f"chunk {index}: {len(lost)} uploaded result file(s) are missing from staging "
                                   f"({final}), e.g. {lost[0]!r}")
        shutil.rmtree(results_dir, ignore_errors=True)
        record = {"index": index, "token": token, "files": files, "time": time.time(), **(stats or {})}
        self._write_json(f"commits/{index:08d}.json", record)
        return record

    def discard(self, index: int, token: str, results_dir: str) -> None:
        super().discard(index, token, results_dir)
        try:
            self.fs.rm(self._p("results", f"{index:08d}-{token}"), recursive=True)
        except FileNotFoundError:
            pass

    def output_dir(self) -> str:
        return tempfile.mkdtemp(prefix=f"bytenite-nb-{self.job_id}-output-")

    def clear(self) -> None:
        lock = self._read_json(self.LOCK)
        try:
            self.fs.rm(self.path, recursive=True)
        except FileNotFoundError:
            pass
        if lock is not None:
            self._write_json(self.LOCK, lock)

    def remove(self) -> None:
        self.clear()


#: the errors of a full filesystem (or a quota)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
#: a filesystem with less free than this (or than 1% of it) counts as full when an app says it was
NEARLY_FULL = 64 * 2**10
CACHED_STAGINGS = 8
_cache: "OrderedDict[tuple, Staging]" = OrderedDict()
_cache_lock = threading.Lock()
