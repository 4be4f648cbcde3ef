"""Job records: an embedded SQLite database, no server.

Jobs (state, timestamps, redacted params, result), their chunks (state,
attempts, duration, error) and an append-only event log. Several processes
may use it at once - a CLI run, a notebook, the Jupyter server - thanks to
SQLite's write-ahead log and a busy timeout; progress displays follow the
event log (:meth:`JobStore.follow`).

>>> store = JobStore(":memory:")
>>> store.create_job("j1", "demo", {"app": "identity"})
>>> store.get_job("j1")["state"]
'NEW'
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from typing import Any, Callable, Iterable, Iterator

from . import config
from .redact import redact
from .states import ChunkState, JobState, Progress

# The states under the names the rest of the package has always used (see .states).
NEW, PARTITIONING, RUNNING, ASSEMBLING = JobState.NEW, JobState.PARTITIONING, JobState.RUNNING, JobState.ASSEMBLING
COMPLETE, FAILED, CANCELLED = JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED
FINAL_STATES = tuple(s for s in JobState if s.final)
PENDING, CHUNK_RUNNING, RETRYING = ChunkState.PENDING, ChunkState.RUNNING, ChunkState.RETRYING
DONE, CHUNK_FAILED, CHUNK_CANCELLED = ChunkState.DONE, ChunkState.FAILED, ChunkState.CANCELLED
FINAL_CHUNK_STATES = tuple(s for s in ChunkState if s.final)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT,
    kind TEXT DEFAULT 'job',
    state TEXT NOT NULL,
    spec TEXT,
    created REAL, updated REAL, started REAL, finished REAL,
    n_chunks INTEGER,
    error TEXT,
    result TEXT,
    host TEXT, pid INTEGER,
    runs INTEGER DEFAULT 1,
    first_attempts_running INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS chunks (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER DEFAULT 0,
    duration REAL,
    size INTEGER,
    covers TEXT,
    error TEXT,
    updated REAL,
    worker TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT,
    time REAL,
    type TEXT,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, seq);
CREATE INDEX IF NOT EXISTS chunks_state ON chunks (job_id, state);
"""


class JobStore:
    """The job records of one ``BYTENITE_NB_HOME`` (or of ``path``)."""

    def __init__(self, path: str | None = None):
        self.path = path or config.store_path()
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._local = threading.local()
        self._memory_conn: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()
        with self._memory_lock:
            conn = self._connect()
            conn.executescript(SCHEMA)  # runs its own transaction
            self._add_missing_columns(conn)

    @staticmethod
    def _add_missing_columns(conn: sqlite3.Connection) -> None:
        """Bring a store written by an earlier version up to date (its records stay as they are)."""
        for table, column, kind in _ADDED_COLUMNS:
            if column in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                continue
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it just now
                if "duplicate column" not in str(exc):
                    raise

    # -- connections ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            if self._memory_conn is None:
                self._memory_conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
                self._memory_conn.row_factory = sqlite3.Row
            return self._memory_conn
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    class _Tx:
        def __init__(self, store: "JobStore"):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._memory_lock.acquire()
            try:
                self.conn = self.store._connect()
                # BEGIN IMMEDIATE takes the write lock now: no deadlock between readers upgrading.
                self.conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._memory_lock.release()  # or every other thread would wait forever
                raise
            return self.conn

        def __exit__(self, exc_type, exc, tb):
            try:
                self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._memory_lock.release()
            return False

    def _write(self) -> "JobStore._Tx":
        return JobStore._Tx(self)

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._memory_lock:
            return self._connect().execute(sql, tuple(args)).fetchall()

    # -- jobs ----------------------------------------------------------------------

    def create_job(self, job_id: str, name: str, spec: dict | None, *, kind: str = "job", state: str = NEW) -> None:
        """Record a job (or a new run of an existing id, keeping its chunks)."""
        now = time.time()
        spec_text = json.dumps(redact(spec or {}), default=str)
        with self._write() as db:
            row = db.execute("SELECT id FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row:
                db.execute(
                    "UPDATE jobs SET name=?, spec=?, state=?, updated=?, started=NULL, finished=NULL, error=NULL,"
                    " result=NULL, host=?, pid=?, runs=runs+1 WHERE id=?",
                    (name, spec_text, state, now, socket.gethostname(), os.getpid(), job_id))
            else:
                db.execute(
                    "INSERT INTO jobs (id, name, kind, state, spec, created, updated, host, pid)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    (job_id, name, kind, state, spec_text, now, now, socket.gethostname(), os.getpid()))
            self._event(db, job_id, "state", {"state": state}, now)

    def set_state(self, job_id: str, state: str, *, error: str | None = None, result: dict | None = None,
                  n_chunks: int | None = None) -> None:
        """Record a job's new state (and its error or result), with a ``state`` event.

        >>> store = JobStore(":memory:"); store.create_job("j", "demo", {})
        >>> store.set_state("j", FAILED, error="disk full"); store.get_job("j")["error"]
        'disk full'
        """
        now = time.time()
        sets = ["state=?", "updated=?"]
        args: list[Any] = [state, now]
        if state in (PARTITIONING, RUNNING):
            sets.append("started=COALESCE(started, ?)")
            args.append(now)
        if state in FINAL_STATES:
            sets.append("finished=?, first_attempts_running=0")
            args.append(now)
        if error is not None:
            sets.append("error=?")
            args.append(redact(error))
        if result is not None:
            sets.append("result=?")
            args.append(json.dumps(redact(result), default=str))
        if n_chunks is not None:
            sets.append("n_chunks=?")
            args.append(n_chunks)
        with self._write() as db:
            db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id=?", (*args, job_id))
            data = {"state": state}
            if error:
                data["error"] = redact(error)
            self._event(db, job_id, "state", data, now)

    def get_job(self, job_id: str) -> dict | None:
        """A job's record with its chunk counts (``progress``, :meth:`Progress.to_dict`), or None."""
        rows = self._query("SELECT * FROM jobs WHERE id=?", (job_id,))
        if not rows:
            return None
        job = self._job_dict(rows[0])
        job["progress"] = _progress(self._counts([job_id]).get(job_id, {}), rows[0]).to_dict()
        return job

    def list_jobs(self, *, limit: int = 50, states: Iterable[str] | None = None, kind: str | None = None) -> list[dict]:
        """The most recent jobs first, each with its ``progress``."""
        sql = "SELECT * FROM jobs"
        where, args = [], []
        if states:
            states = list(states)
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += states
        if kind:
            where.append("kind=?")
            args.append(kind)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated DESC LIMIT ?"
        rows = self._query(sql, (*args, limit))
        counts = self._counts([r["id"] for r in rows])
        jobs = []
        for row in rows:
            job = self._job_dict(row)
            job["progress"] = _progress(counts.get(row["id"], {}), row).to_dict()
            jobs.append(job)
        return jobs

    def delete_job(self, job_id: str) -> None:
        """Forget a job: its record, its chunks and its events."""
        with self._write() as db:
            for table, col in (("chunks", "job_id"), ("events", "job_id"), ("jobs", "id")):
                db.execute(f"DELETE FROM {table} WHERE {col}=?", (job_id,))

    @staticmethod
    def _job_dict(row: sqlite3.Row) -> dict:
        job = dict(row)
        job.pop("first_attempts_running", None)  # part of the job's ``progress``
        for key in ("spec", "result"):
            if job.get(key):
                job[key] = json.loads(job[key])
        end = job.get("finished") or time.time()
        job["duration"] = (end - job["started"]) if job.get("started") else None
        return job

    # -- chunks --------------------------------------------------------------------

    def set_chunks(self, job_id: str, chunks: list[dict]) -> None:
        """Record the planned chunks (``index``, ``size``, ``covers``) of a run, all PENDING.

        A run of an id starts its chunk records afresh (what an earlier run left,
        other chunks or states, would make progress lie); chunks it finds
        committed are then recorded DONE like any other.
        """
        now = time.time()
        with self._write() as db:
            db.execute("DELETE FROM chunks WHERE job_id=?", (job_id,))
            db.executemany(
                "INSERT INTO chunks (job_id, idx, state, size, covers, updated) VALUES (?,?,?,?,?,?)",
                [(job_id, c["index"], PENDING, c.get("size"), c.get("covers"), now) for c in chunks])
            db.execute("UPDATE jobs SET n_chunks=?, updated=?, first_attempts_running=0 WHERE id=?",
                       (len(chunks), now, job_id))
            self._event(db, job_id, "planned", {"chunks": len(chunks)}, now)

    def update_chunks(self, job_id: str, updates: list[dict]) -> None:
        """Apply a batch of chunk changes in one transaction (the engine's hot path)."""
        if not updates:
            return
        now = time.time()
        with self._write() as db:
            db.executemany(
                "UPDATE chunks SET state=?, attempts=COALESCE(?, attempts), duration=COALESCE(?, duration),"
                " error=?, updated=?, worker=COALESCE(?, worker) WHERE job_id=? AND idx=?",
                [(u["state"], u.get("attempts"), u.get("duration"), redact(u["error"]) if u.get("error") else None,
                  now, u.get("worker"), job_id, u["index"]) for u in updates])
            db.execute("UPDATE jobs SET updated=? WHERE id=?", (now, job_id))
            self._event(db, job_id, "chunks", {"updates": [
                {k: (redact(v) if k == "error" and v else v) for k, v in u.items()} for u in updates]}, now)

    def chunks(self, job_id: str, *, states: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
               offset: int = 0, limit: int | None = None) -> list[dict]:
        """A job's chunk records in chunk order: only those in ``states``, or all but
        those in ``exclude``; a page of them with ``offset``/``limit``.

        >>> import os, tempfile
        >>> store = JobStore(os.path.join(tempfile.mkdtemp(), "jobs.sqlite"))
        >>> store.create_job("j1", "demo", None)
        >>> store.set_chunks("j1", [{"index": i} for i in range(3)])
        >>> store.update_chunks("j1", [{"index": 1, "state": "FAILED", "attempts": 3, "error": "boom"}])
        >>> [c["idx"] for c in store.chunks("j1", states=["FAILED"])], store.count_chunks("j1")
        ([1], 3)
        """
        sql, args = "SELECT * FROM chunks WHERE job_id=?", [job_id]
        sql, args = self._state_filter(sql, args, states, exclude)
        sql += " ORDER BY idx"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else limit, offset]
        return [dict(r) for r in self._query(sql, args)]

    def chunk_states(self, job_id: str, *, offset: int = 0,
                     limit: int | None = None) -> list[tuple[int, str, str | None]]:
        """``(index, state, worker)`` of a job's chunks in chunk order (a page with
        ``offset``/``limit``): the three columns a chunk grid draws, nothing more.

        >>> store = JobStore(":memory:")
        >>> store.create_job("j1", "demo", None)
        >>> store.set_chunks("j1", [{"index": i} for i in range(3)])
        >>> store.update_chunks("j1", [{"index": 1, "state": "DONE", "worker": "tcp://127.0.0.1:4000"}])
        >>> store.chunk_states("j1", offset=1)
        [(1, 'DONE', 'tcp://127.0.0.1:4000'), (2, 'PENDING', None)]
        """
        rows = self._query("SELECT idx, state, worker FROM chunks WHERE job_id=? ORDER BY idx LIMIT ? OFFSET ?",
                           (job_id, -1 if limit is None else limit, offset))
        return [(r["idx"], r["state"], r["worker"]) for r in rows]

    def chunk_history(self, job_id: str, index: int) -> list[dict]:
        """What the event log says of chunk ``index`` of a job, oldest first: each
        state it moved to, with its attempt, error and worker when known.

        >>> store = JobStore(":memory:")
        >>> store.create_job("j1", "demo", None)
        >>> store.set_chunks("j1", [{"index": i} for i in range(12)])
        >>> store.update_chunks("j1", [{"index": 1, "state": "RETRYING", "attempts": 1, "error": "boom"},
        ...                            {"index": 11, "state": "DONE"}])
        >>> [(h["state"], h["error"]) for h in store.chunk_history("j1", 1)]
        [('RETRYING', 'boom')]
        """
        # A cheap text filter first (the log is JSON), then the exact test on each update.
        rows = self._query("SELECT time, data FROM events WHERE job_id=? AND type='chunks' AND "
                           "(data LIKE ? OR data LIKE ?) ORDER BY seq",
                           (job_id, f'%"index": {int(index)},%', f'%"index": {int(index)}}}%'))
        history = []
        for row in rows:
            for update in json.loads(row["data"]).get("updates", []):
                if update.get("index") == index:
                    history.append({"time": row["time"], "state": update.get("state"),
                                    "attempt": update.get("attempts"), "error": update.get("error"),
                                    "worker": update.get("worker")})
        return history

    def count_chunks(self, job_id: str, *, states: Iterable[str] | None = None,
                     exclude: Iterable[str] | None = None) -> int:
        """How many chunk records :meth:`chunks` would give without paging."""
        sql, args = self._state_filter("SELECT COUNT(*) AS n FROM chunks WHERE job_id=?", [job_id], states, exclude)
        return self._query(sql, args)[0]["n"]

    @staticmethod
    def _state_filter(sql: str, args: list, states, exclude) -> tuple[str, list]:
        for column_test, values in (("IN", states), ("NOT IN", exclude)):
            if values:
                values = list(values)
                sql += f" AND state {column_test} ({','.join('?' * len(values))})"
                args = args + values
        return sql, args

    def set_first_attempts_running(self, job_id: str, count: int) -> None:
        """Record how many of a running job's PENDING chunks have a first attempt
        under way (the runner learns it from the scheduler: a first attempt
        reports nothing), so that the job's ``progress`` counts them as running,
        as the runner does. Back to 0 when the job ends.

        >>> store = JobStore(":memory:"); store.create_job("j", "demo", {})
        >>> store.set_chunks("j", [{"index": i} for i in range(3)])
        >>> store.set_first_attempts_running("j", 2)
        >>> store.progress("j").summary()
        '0/3 done, 2 running, 1 pending'
        """
        with self._write() as db:
            db.execute("UPDATE jobs SET first_attempts_running=? WHERE id=?", (count, job_id))

    def progress(self, job_id: str) -> Progress:
        """A job's chunk counts (see :class:`~bytenite_nb.states.Progress`); all 0 for an unknown job.

        >>> store = JobStore(":memory:"); store.create_job("j", "demo", {})
        >>> store.set_chunks("j", [{"index": i} for i in range(4)])
        >>> store.update_chunks("j", [{"index": 0, "state": "DONE", "attempts": 1}, {"index": 1, "state": "FAILED"},
        ...                           {"index": 2, "state": "CANCELLED"}, {"index": 3, "state": "CANCELLED"}])
        >>> store.progress("j").summary()
        '1/4 done, 1 failed, 2 cancelled'
        """
        rows = self._query("SELECT * FROM jobs WHERE id=?", (job_id,))
        return _progress(self._counts([job_id]).get(job_id, {}), rows[0] if rows else None)

    def _counts(self, job_ids: list[str]) -> dict[str, dict[str, int]]:
        """Chunk counts by state of each job, and ``resumed``: the DONE chunks without
        an attempt in this run (a run records every chunk afresh, with 0 attempts;
        a chunk committed by an earlier run is recorded DONE without any)."""
        if not job_ids:
            return {}
        rows = self._query(
            "SELECT job_id, state, COUNT(*) AS n, SUM(attempts = 0) AS unattempted FROM chunks"
            f" WHERE job_id IN ({','.join('?' * len(job_ids))}) GROUP BY job_id, state", job_ids)
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            counts = out.setdefault(r["job_id"], {"resumed": 0})
            counts[r["state"]] = r["n"]
            if r["state"] == DONE:
                counts["resumed"] = r["unattempted"] or 0
        return out

    # -- events --------------------------------------------------------------------

    @staticmethod
    def _event(db: sqlite3.Connection, job_id: str | None, kind: str, data: dict, now: float) -> None:
        db.execute("INSERT INTO events (job_id, time, type, data) VALUES (?,?,?,?)",
                   (job_id, now, kind, json.dumps(data, default=str)))

    def add_event(self, job_id: str | None, kind: str, data: dict) -> None:
        with self._write() as db:
            self._event(db, job_id, kind, redact(data), time.time())

    def events(self, *, job_id: str | None = None, after: int = 0, limit: int = 1000) -> list[dict]:
        """Events with ``seq > after``, oldest first."""
        sql, args = "SELECT * FROM events WHERE seq > ?", [after]
        if job_id:
            sql += " AND job_id=?"
            args.append(job_id)
        rows = self._query(sql + " ORDER BY seq LIMIT ?", (*args, limit))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def last_seq(self) -> int:
        rows = self._query("SELECT MAX(seq) AS m FROM events")
        return rows[0]["m"] or 0

    def follow(self, *, job_id: str | None = None, after: int = 0, poll: float = 0.25,
               until: Callable[[], bool] | None = None) -> Iterator[dict]:
        """Yield events as they are recorded, from any process, until ``until()`` is true
        (or, for one job, until it reaches a final state)."""
        while True:
            batch = self.events(job_id=job_id, after=after)
            for event in batch:
                after = event["seq"]
                yield event
            if until is not None and until():
                return
            if job_id and not batch:
                job = self.get_job(job_id)
                if job is None or job["state"] in FINAL_STATES:
                    for event in self.events(job_id=job_id, after=after):
                        yield event
                    return
            if not batch:
                time.sleep(poll)

    def last_event(self, job_id: str, kind: str) -> dict | None:
        """A job's most recent event of type ``kind`` (e.g. ``"cluster"``), or None:
        one indexed lookup, however many events the job has.

        >>> store = JobStore(":memory:")
        >>> store.add_event("j1", "cluster", {"scheduler": "tcp://a:8786"})
        >>> store.add_event("j1", "cluster", {"scheduler": "tcp://b:8786"})
        >>> store.last_event("j1", "cluster")["data"]
        {'scheduler': 'tcp://b:8786'}
        """
        rows = self._query("SELECT * FROM events WHERE job_id=? AND type=? ORDER BY seq DESC LIMIT 1", (job_id, kind))
        return {**dict(rows[0]), "data": json.loads(rows[0]["data"])} if rows else None


_ADDED_COLUMNS = (("jobs", "first_attempts_running", "INTEGER DEFAULT 0"), ("chunks", "worker", "TEXT"))


def _progress(counts: dict[str, int], job: sqlite3.Row | None) -> Progress:
    """A job's progress from its chunk counts (:meth:`JobStore._counts`) and its record.

    Every chunk record counts, each in the category of its state: the total is
    the number of chunks planned, or of chunk records if there are more (a
    record left by an older version), so the categories add up to it.
    """
    counts = dict(counts)
    resumed = counts.pop("resumed", 0)
    planned = (job["n_chunks"] if job is not None else None) or 0
    active = job is not None and job["state"] not in FINAL_STATES
    return Progress.from_counts(counts, max(planned, sum(counts.values())), resumed=resumed,
                                first_attempts_running=(job["first_attempts_running"] or 0) if active else 0)


_default: JobStore | None = None
_default_path: str | None = None


def default_store() -> JobStore:
    """The store of the current ``BYTENITE_NB_HOME`` (one per process)."""
    global _default, _default_path
    path = config.store_path()
    if _default is None or _default_path != path:
        _default, _default_path = JobStore(path), path
    return _default
