"""A job's chunks as compact arrays, for the chunk grids of the JupyterLab job
panel and the notebook progress widget.

Ten thousand chunks are drawn at a glance, so what travels is small: the
states as one string of letters (one per chunk, :data:`STATE_LETTERS`) and
the worker of each chunk as an index into a list of worker addresses (-1:
none known). A page of them comes from the job store (:func:`grid_page`);
one chunk's attempts and error on demand (:func:`chunk_detail`).

>>> encode_states(["DONE", "FAILED", "PENDING"])
'DFP'
>>> compact_workers(["tcp://a:1", None, "tcp://a:1", "tcp://b:2"])
([0, -1, 0, 1], ['tcp://a:1', 'tcp://b:2'])
"""

from __future__ import annotations

from typing import Iterable

from .exceptions import ChunkNotFound
from .states import ChunkState

#: one letter per chunk state, as the grids read them
STATE_LETTERS = {ChunkState.PENDING: "P", ChunkState.RUNNING: "R", ChunkState.RETRYING: "T",
                 ChunkState.DONE: "D", ChunkState.FAILED: "F", ChunkState.CANCELLED: "C"}
#: the letter of a state this version does not know (a record written by another)
UNKNOWN_LETTER = "?"
#: chunks per page of a grid: a 100 x 100 block of cells
GRID_PAGE_LIMIT = 10_000
GRID_PAGE_MAX = 50_000


def encode_states(states: Iterable[str]) -> str:
    """The states as one letter each (:data:`STATE_LETTERS`)."""
    return "".join(STATE_LETTERS.get(s, UNKNOWN_LETTER) for s in states)


def compact_workers(workers: Iterable[str | None]) -> tuple[list[int], list[str]]:
    """Each chunk's worker as an index into the list of distinct workers, in order
    of first appearance (-1 where none is known)."""
    names: dict[str, int] = {}
    indexes = []
    for worker in workers:
        if worker is None:
            indexes.append(-1)
            continue
        indexes.append(names.setdefault(worker, len(names)))
    return indexes, list(names)


def grid_page(store, job_id: str, *, offset: int = 0, limit: int = GRID_PAGE_LIMIT) -> dict:
    """A page of a job's chunk grid: ``total`` chunks, ``offset``, ``first``
    (the index of the first chunk of the page), ``states`` (a letter each),
    ``workers`` (an index each into ``workerNames``) and ``legend`` (letter -> state).

    >>> from bytenite_nb.store import JobStore
    >>> store = JobStore(":memory:")
    >>> store.create_job("j", "demo", None)
    >>> store.set_chunks("j", [{"index": i} for i in range(3)])
    >>> store.update_chunks("j", [{"index": 0, "state": "DONE", "worker": "tcp://w:1"}])
    >>> page = grid_page(store, "j")
    >>> page["states"], page["workers"], page["workerNames"]
    ('DPP', [0, -1, -1], ['tcp://w:1'])
    """
    rows = store.chunk_states(job_id, offset=offset, limit=limit)
    workers, names = compact_workers(w for _, _, w in rows)
    return {"total": store.count_chunks(job_id), "offset": offset, "first": rows[0][0] if rows else None,
            "states": encode_states(s for _, s, _ in rows), "workers": workers, "workerNames": names,
            "legend": {letter: str(state) for state, letter in STATE_LETTERS.items()}}


def chunk_detail(store, job_id: str, index: int) -> dict:
    """One chunk of a job: its record (state, attempts, duration, size, what it
    covers, its last error, the worker that ran it) and its ``history``, each
    state it went through with the attempt's error and worker. Raises
    :class:`ChunkNotFound` naming the job and the chunk.

    >>> from bytenite_nb.store import JobStore
    >>> store = JobStore(":memory:")
    >>> store.create_job("j", "demo", None)
    >>> store.set_chunks("j", [{"index": 0}])
    >>> chunk_detail(store, "j", 0)["state"]
    'PENDING'
    """
    # Chunk records are numbered 0..n-1 in order, so chunk i is the i-th record.
    rows = store.chunks(job_id, offset=index, limit=1) if index >= 0 else []
    row = rows[0] if rows and rows[0]["idx"] == index else None
    if row is None:
        raise ChunkNotFound(f"job {job_id!r} has no chunk {index} (it has {store.count_chunks(job_id)} chunks)")
    return {"index": row["idx"], "state": row["state"], "attempts": row["attempts"], "duration": row["duration"],
            "size": row["size"], "covers": row["covers"], "error": row["error"], "worker": row["worker"],
            "history": store.chunk_history(job_id, index)}
