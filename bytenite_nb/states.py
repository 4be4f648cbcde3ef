"""Job and chunk states, and how far a job has got: one model for every display.

The runner's handle, the job store's summary, the CLI, the notebook widget
and the REST answer that the JupyterLab extension renders all count chunks
with :class:`Progress`, so they cannot disagree.

A job is NEW, then PARTITIONING, RUNNING, ASSEMBLING, and ends COMPLETE,
FAILED or CANCELLED (:class:`JobState`). A chunk is in exactly one of six
states (:class:`ChunkState`) at any time, and each state is one category of
:class:`Progress`, so the categories always add up to the job's chunk count:

- ``PENDING`` (``pending``): planned; no attempt of it is known to be under way.
- ``RUNNING`` (``running``): an attempt is under way on a worker.
- ``RETRYING`` (``retrying``): an attempt failed and the chunk waits out its
  backoff before the next one; when the next attempt starts, the chunk is
  ``RUNNING`` again.
- ``DONE``, ``FAILED``, ``CANCELLED`` (``done``, ``failed``, ``cancelled``):
  the chunk has ended. An ended chunk does not change again within a run;
  news of it that arrives late (a worker's message overtaken by the chunk's
  outcome) is ignored.

A first attempt does not report its start (starting a chunk costs no
message), so its chunk stays ``PENDING`` in the records. The runner asks the
scheduler how many of the job's chunk tasks hold a worker thread, and those
that are neither ``RUNNING`` nor ``RETRYING`` chunks are first attempts
under way (:meth:`Progress.set_running_tasks`): they count as ``running``
instead of ``pending``. The job store keeps that number beside the job, so
its summary says the same as the runner.

``resumed`` is not a category: it is how many of the ``done`` chunks were
committed by an earlier run of the same job id and were not run again.

The states' values are the strings the job store has always recorded:
records written before these classes existed read the same.

>>> p = Progress(total=4)
>>> [p.move(None, state) for state in ("DONE", "FAILED", "CANCELLED", "CANCELLED")]
[True, True, True, True]
>>> p.to_dict()
{'total': 4, 'pending': 0, 'running': 0, 'retrying': 0, 'done': 1, 'failed': 1, 'cancelled': 2, 'resumed': 0}
>>> Progress.from_counts({"DONE": 1, "FAILED": 1, "CANCELLED": 2}) == p
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Mapping

from .exceptions import ProgressError


class _StrEnum(str, Enum):
    """A string that prints, formats and shows as its value, as the records hold it."""

    __str__ = str.__str__
    __format__ = str.__format__
    __repr__ = str.__repr__


class JobState(_StrEnum):
    """Where a job is. ``JobState.RUNNING == "RUNNING"``: records keep the plain string.

    >>> JobState("FAILED").final, JobState.RUNNING.final
    (True, False)
    """

    NEW = "NEW"
    PARTITIONING = "PARTITIONING"
    RUNNING = "RUNNING"
    ASSEMBLING = "ASSEMBLING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        """Has the job ended (nothing about it changes any more)?"""
        return self in FINAL_JOB_STATES


class ChunkState(_StrEnum):
    """Where a chunk is; each state is one category of :class:`Progress`.

    >>> ChunkState("RETRYING").category, ChunkState.DONE.final
    ('retrying', True)
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        """Has the chunk ended (within this run of its job)?"""
        return self in FINAL_CHUNK_STATES

    @property
    def category(self) -> str:
        """The :class:`Progress` count this state is: ``"pending"``, ``"running"``..."""
        return _CATEGORY[self]


FINAL_JOB_STATES = frozenset({JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED})
FINAL_CHUNK_STATES = frozenset({ChunkState.DONE, ChunkState.FAILED, ChunkState.CANCELLED})

_CHUNK_STATES = {state.value: state for state in ChunkState}
_CATEGORY = {state: state.value.lower() for state in ChunkState}
#: The categories of :class:`Progress`, one per chunk state, in the order of the states.
CATEGORIES = tuple(state.category for state in ChunkState)
#: The order a summary names the categories in after ``done`` (the ones that need a look first).
_SUMMARY_ORDER = ("failed", "cancelled", "retrying", "running", "pending")


def chunk_state(value: str) -> ChunkState:
    """``value`` as a :class:`ChunkState`, or a :class:`ProgressError` naming it.

    >>> chunk_state("DONE") is ChunkState.DONE
    True
    >>> chunk_state("FINISHED")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.ProgressError: unknown chunk state 'FINISHED' (one of PENDING, RUNNING, RETRYING, DONE, FAILED, CANCELLED)
    """
    try:
        state = _CHUNK_STATES.get(value)  # a dict lookup: this runs for every chunk update
    except TypeError:  # unhashable
        state = None
    if state is None:
        raise ProgressError(f"unknown chunk state {value!r} (one of {', '.join(ChunkState)})")
    return state


@dataclass
class Progress:
    """How many of a job's chunks are in each state; the categories always add up to ``total``.

    ``pending`` left out is what the other categories leave of ``total``.
    ``resumed`` counts the ``done`` chunks an earlier run committed (not a
    category); ``first_attempts_running`` counts the ``running`` chunks
    whose first attempt runs, known from the scheduler rather than from the
    chunks (see the module's notes).

    >>> p = Progress(total=10, done=3, failed=1, running=2)
    >>> p.pending, p.finished, p.summary()
    (4, 4, '3/10 done, 1 failed, 2 running, 4 pending')
    >>> Progress(total=3, done=2, failed=2)
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.ProgressError: pending: expected a number of chunks, at least 0, got -1
    """

    total: int = 0
    pending: int | None = None
    running: int = 0
    retrying: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    resumed: int = 0
    first_attempts_running: int = 0

    def __post_init__(self) -> None:
        if self.pending is None and isinstance(self.total, int):
            self.pending = self.total - sum(getattr(self, c) for c in CATEGORIES if c != "pending"
                                            if isinstance(getattr(self, c), int))
        for name in ("total", *CATEGORIES, "resumed", "first_attempts_running"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ProgressError(f"{name}: expected a number of chunks, at least 0, got {value!r}")
        counted = sum(getattr(self, c) for c in CATEGORIES)
        if counted != self.total:
            raise ProgressError(f"the categories count {counted} chunks ({self._counts_text()}), "
                                f"the job has {self.total}")
        if self.resumed > self.done:
            raise ProgressError(f"resumed: {self.resumed} resumed chunks, but only {self.done} done")
        if self.first_attempts_running > self.running:
            raise ProgressError(f"first_attempts_running: {self.first_attempts_running}, "
                                f"but only {self.running} running")

    # -- building one ------------------------------------------------------------------

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], total: int | None = None, *, resumed: int = 0,
                    first_attempts_running: int = 0) -> "Progress":
        """From chunk counts by state (what a job store holds). ``total`` (the
        chunks planned) defaults to the chunks counted; planned chunks without
        a state yet are pending. ``first_attempts_running`` of the pending chunks
        (at most all of them) count as running.

        >>> Progress.from_counts({"DONE": 5, "RETRYING": 1}, total=8, first_attempts_running=3).to_dict()
        {'total': 8, 'pending': 0, 'running': 2, 'retrying': 1, 'done': 5, 'failed': 0, 'cancelled': 0, 'resumed': 0}
        """
        by_category = dict.fromkeys(CATEGORIES, 0)
        for state, n in counts.items():
            by_category[chunk_state(state).category] += n
        recorded = sum(by_category.values())
        total = recorded if total is None else total
        if not isinstance(total, int) or total < recorded:
            raise ProgressError(f"total: {total!r} chunks, but {recorded} chunks have a state")
        by_category["pending"] += total - recorded
        first = min(first_attempts_running, by_category["pending"])
        by_category["pending"] -= first
        by_category["running"] += first
        return cls(total=total, resumed=resumed, first_attempts_running=first, **by_category)

    @classmethod
    def from_dict(cls, data: Mapping) -> "Progress":
        """The counts of :meth:`to_dict` (an event, a REST answer) back as a Progress;
        other keys are left aside.

        >>> Progress.from_dict({"type": "progress", "total": 2, "done": 1, "pending": 1}).done
        1
        """
        return cls(**{k: data[k] for k in ("total", *CATEGORIES, "resumed", "first_attempts_running") if k in data})

    def copy(self) -> "Progress":
        """A snapshot that later changes to this one do not touch."""
        return dataclasses.replace(self)

    # -- changes ------------------------------------------------------------------------

    def move(self, previous: str | None, new: str, *, resumed: bool = False) -> bool:
        """Count one chunk going from state ``previous`` (None: nothing heard of it
        since it was planned, i.e. PENDING) to state ``new``.

        Returns True if the move counts (also when the state stays the same),
        False if the chunk had ended already: late news changes nothing. A move
        that cannot be (an unknown state, back to PENDING, from a state no
        chunk is in) raises :class:`ProgressError` and changes nothing.

        >>> p = Progress(total=2)
        >>> p.move(None, "RETRYING"), p.move("RETRYING", "RUNNING"), p.move("RUNNING", "DONE")
        (True, True, True)
        >>> p.move("DONE", "RUNNING"), p.summary()
        (False, '1/2 done, 1 pending')
        """
        old = ChunkState.PENDING if previous is None else chunk_state(previous)
        to = chunk_state(new)
        if old.final:
            return False
        if to is old:
            return True
        if to is ChunkState.PENDING:
            raise ProgressError(f"a chunk cannot go back from {old} to PENDING within a run")
        if old is ChunkState.PENDING:
            if self.first_attempts_running:
                # Most likely one of the chunks whose first attempt was running.
                self.first_attempts_running -= 1
                self.running -= 1
            elif self.pending:
                self.pending -= 1
            else:
                raise ProgressError(f"no PENDING chunk left to become {to} ({self._counts_text()})")
        else:
            leaving = _CATEGORY[old]
            reported = getattr(self, leaving) - (self.first_attempts_running if old is ChunkState.RUNNING else 0)
            if reported <= 0:
                raise ProgressError(f"no {old} chunk to become {to} ({self._counts_text()})")
            setattr(self, leaving, getattr(self, leaving) - 1)
        entering = _CATEGORY[to]
        setattr(self, entering, getattr(self, entering) + 1)
        if resumed and to is ChunkState.DONE:
            self.resumed += 1
        return True

    def apply(self, previous: str | None, update: Mapping) -> bool:
        """:meth:`move` for a chunk update ``{"state", "resumed"...}`` that follows state ``previous``.

        >>> p = Progress(total=2); p.apply(None, {"state": "DONE", "resumed": True})
        True
        >>> (p.done, p.resumed, p.pending)
        (1, 1, 1)
        """
        return self.move(previous, update["state"], resumed=bool(update.get("resumed")))

    def set_running_tasks(self, tasks: int) -> None:
        """Take the scheduler's count of the job's chunk tasks that hold a worker
        thread. Those that are not RUNNING or RETRYING chunks (a retry waits out
        its backoff on its thread) are first attempts, which report nothing:
        they count as running instead of pending. 0 once nothing runs.

        >>> p = Progress(total=6); p.move(None, "RETRYING")
        True
        >>> p.set_running_tasks(3); (p.pending, p.running, p.retrying)
        (3, 2, 1)
        >>> p.set_running_tasks(0); (p.pending, p.running, p.retrying)
        (5, 0, 1)
        """
        reported = self.running - self.first_attempts_running + self.retrying
        first = max(0, min(tasks - reported, self.pending + self.first_attempts_running))
        self.pending += self.first_attempts_running - first
        self.running += first - self.first_attempts_running
        self.first_attempts_running = first

    # -- reading it --------------------------------------------------------------------

    @property
    def finished(self) -> int:
        """Chunks that have ended: done, failed or cancelled."""
        return self.done + self.failed + self.cancelled

    @property
    def fraction(self) -> float:
        """The share of chunks that have ended (0 for a job without chunks)."""
        return self.finished / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        """``{"total", "pending", "running", "retrying", "done", "failed", "cancelled", "resumed"}``:
        what events, job records and the REST answer carry."""
        return {"total": self.total, "pending": self.pending, "running": self.running, "retrying": self.retrying,
                "done": self.done, "failed": self.failed, "cancelled": self.cancelled, "resumed": self.resumed}

    def to_event(self) -> dict:
        """The ``progress`` event listeners get: :meth:`to_dict` and ``first_attempts_running``,
        so that a display following the events (:meth:`from_dict`) counts the next moves as the runner does.

        >>> Progress(total=3, running=2, first_attempts_running=2).to_event()["first_attempts_running"]
        2
        """
        return {"type": "progress", **self.to_dict(), "first_attempts_running": self.first_attempts_running}

    def summary(self) -> str:
        """``"12/40 done, 1 failed, 3 running, 24 pending"``: done of total, then
        every other category that is not empty; resumed chunks in brackets.

        >>> Progress(total=4, done=4, resumed=3).summary()
        '4/4 done (3 resumed)'
        """
        text = f"{self.done}/{self.total} done"
        if self.resumed:
            text += f" ({self.resumed} resumed)"
        return ", ".join([text] + [f"{getattr(self, c)} {c}" for c in _SUMMARY_ORDER if getattr(self, c)])

    def _counts_text(self) -> str:
        return ", ".join(f"{c} {getattr(self, c)}" for c in CATEGORIES)
