"""The plans the editor pages through, held for a few minutes.

Pressing Plan in the editor asks ``POST /bytenite-nb/plan`` for the first page;
Next, Previous and "From chunk" ask for later pages of the same plan. Planning
lists and splits the source (seconds for a 100,000-chunk plan), so the server
keeps each plan it made, keyed by what determines it (:func:`plan_key`), and a
later page is cut from that. Nothing else is cached: the first page always
plans afresh (the source may have changed since), and a page of a job not
held, or held too long, plans afresh too.

A plan is held compactly (:class:`HeldPlan`): its chunk references pickled and
compressed in blocks, so a page unpacks one or two blocks, never the whole
plan, and a 100,000-chunk plan holds well under a MiB instead of tens of MiB
of objects. The cache (:class:`PlanCache`) keeps a few plans, and at most
``max_bytes`` of them in all.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
import time
import zlib
from collections import OrderedDict
from typing import Any, Callable

from ..partitioners.base import ChunkRef

PLAN_BLOCK = 1000  # chunks packed together: a page of up to 1000 unpacks one or two blocks
PLANS_HELD = 4  # plans held at once: a few editors paging at the same time
PLAN_HELD_SECONDS = 300  # how long a plan serves later pages after it was made
PLAN_BYTES_HELD = 64 * 2**20  # the packed plans held, in all; a larger plan is not held


def plan_key(data: Any, base_dir: str, source_name: str | None) -> str:
    """What determines a plan, as a short key: the job as the request sent it
    (validated by then), the folder its relative paths resolve against and its
    file's name. A digest, so the cache holds no credential of the job.

    >>> plan_key({"partitioner": "split-lines"}, "/srv/jobs", "jobs/a.bnjob.json") == \\
    ...     plan_key({"partitioner": "split-lines"}, "/srv/jobs", "jobs/a.bnjob.json")
    True
    >>> plan_key({"partitioner": "split-lines"}, "/srv/jobs", None) == plan_key({"partitioner": "split-lines"}, "/srv", None)
    False
    """
    text = json.dumps([data, base_dir, source_name], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class HeldPlan:
    """A plan (``job.plan()``'s list of chunk references and its ``sample``),
    packed: its count and total size, and its references pickled and
    compressed ``block`` at a time. ``nbytes``: about what it holds, in bytes.

    >>> held = HeldPlan.pack([ChunkRef(index=i, url="file:///d/in.txt", start=i, end=i + 1, size=1)
    ...                       for i in range(2500)], block=1000)
    >>> held.count, held.total_size, [r.index for r in held.page(998, 4)], held.page(2500, 10)
    (2500, 2500, [998, 999, 1000, 1001], [])
    """

    def __init__(self, blocks: list[bytes], block: int, count: int, total_size: int | None, sample: dict | None):
        self.blocks = blocks
        self.block = block
        self.count = count
        self.total_size = total_size
        self.sample = sample
        # Counted once: what the cache's byte budget weighs it at.
        self.nbytes = sum(len(b) for b in blocks) + (len(json.dumps(sample, default=str)) if sample else 0)

    @classmethod
    def pack(cls, refs: list[ChunkRef], block: int = PLAN_BLOCK) -> "HeldPlan":
        """Pack ``refs`` (a :class:`~bytenite_nb.plan.Plan` keeps its ``sample``)."""
        sizes = [r.size for r in refs if r.size is not None]
        # Level 1: most of the gain (references repeat their URL and keys) for little time.
        blocks = [zlib.compress(pickle.dumps(list(refs[i:i + block]), protocol=pickle.HIGHEST_PROTOCOL), 1)
                  for i in range(0, len(refs), block)]
        return cls(blocks, block, len(refs), sum(sizes) if sizes else None, getattr(refs, "sample", None))

    def page(self, offset: int, limit: int) -> list[ChunkRef]:
        """The references from the ``offset``-th, at most ``limit`` of them."""
        end = min(offset + limit, self.count)
        out: list[ChunkRef] = []
        for number in range(offset // self.block, (end - 1) // self.block + 1 if end > offset else 0):
            # Unpickled from bytes this process packed itself, never from a request.
            refs = pickle.loads(zlib.decompress(self.blocks[number]))
            first = number * self.block
            out.extend(refs[max(offset - first, 0):end - first])
        return out


class PlanCache:
    """The plans made lately, for later pages of them: at most ``entries`` of
    them and ``max_bytes`` packed, each for ``seconds`` after it was made.
    Safe to use from several threads (the server plans on a thread pool).
    ``clock`` gives the time in seconds (``time.monotonic``).

    >>> now = [0.0]
    >>> cache = PlanCache(entries=2, seconds=60, clock=lambda: now[0])
    >>> cache.put("a", HeldPlan.pack([ChunkRef(index=0, size=3)]))
    >>> cache.get("a").count, cache.get("b")
    (1, None)
    >>> now[0] = 61.0
    >>> cache.get("a"), len(cache)
    (None, 0)
    """

    def __init__(self, entries: int = PLANS_HELD, seconds: float = PLAN_HELD_SECONDS,
                 max_bytes: int = PLAN_BYTES_HELD, clock: Callable[[], float] = time.monotonic):
        self.entries = entries
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.clock = clock
        self._held: OrderedDict[str, tuple[float, HeldPlan]] = OrderedDict()  # oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    @property
    def nbytes(self) -> int:
        """The bytes the plans held take, packed."""
        with self._lock:
            return sum(plan.nbytes for _, plan in self._held.values())

    def get(self, key: str) -> HeldPlan | None:
        """The plan held under ``key``, or None if there is none or it is too old."""
        with self._lock:
            self._forget_expired()
            found = self._held.get(key)
            return found[1] if found else None

    def put(self, key: str, plan: HeldPlan) -> None:
        """Hold ``plan`` under ``key``, in place of any plan held there; the
        oldest plans go to keep within ``entries`` and ``max_bytes``. A plan
        larger than ``max_bytes`` is not held (its later pages plan again)."""
        with self._lock:
            self._held.pop(key, None)
            self._forget_expired()
            if plan.nbytes > self.max_bytes:
                return
            self._held[key] = (self.clock(), plan)
            total = sum(p.nbytes for _, p in self._held.values())
            while len(self._held) > self.entries or total > self.max_bytes:
                _, (_, oldest) = self._held.popitem(last=False)
                total -= oldest.nbytes

    def _forget_expired(self) -> None:
        deadline = self.clock() - self.seconds
        for key in [k for k, (made, _) in self._held.items() if made <= deadline]:
            del self._held[key]
