"""Bad records: fail on the first one, or skip them and say so.

A component that parses records (rows, JSON objects, log entries,
timestamps) takes ``on_bad``: ``"fail"`` (the default) raises
:class:`~bytenite_nb.exceptions.BadRecordError` naming the file and the
line or byte offset; ``"skip"`` drops the record, counts it and keeps the
first :data:`KEEP` of them. Never a silent loss: the engine collects what
was skipped while planning, materialising each chunk and assembling, and
writes it into ``_SUCCESS`` under ``"skipped"``.

>>> bad = BadRecords("skip")
>>> bad.add("ragged row: 3 fields, the header has 2", file="in.csv", line=7, offset=120)
>>> bad.count, bad.records[0]["line"]
(1, 7)
>>> BadRecords("fail").add("invalid JSON", file="in.json", offset=42)
Traceback (most recent call last):
...
bytenite_nb.exceptions.BadRecordError: in.json: byte 42: invalid JSON
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

from .exceptions import BadRecordError, FieldError, describe_place

POLICIES = ("fail", "skip")
KEEP = 1000  # records kept for _SUCCESS; the count is always exact

#: JSON Schema of ``on_bad``, for a component's params schema.
ON_BAD_SCHEMA = {"enum": list(POLICIES), "default": "fail",
                 "description": "a record that cannot be read: fail the job, or skip it (counted in _SUCCESS)"}

_collector: contextvars.ContextVar[list | None] = contextvars.ContextVar("bytenite_nb_bad_records", default=None)


#: ``chunk 3: in.csv: line 7 (byte 120)``: a place in the data, for messages.
where = describe_place


class BadRecords:
    """Where a component reports the records it cannot read.

    ``policy`` is ``"fail"`` or ``"skip"``; :meth:`for_params` reads it from a
    component's ``on_bad`` param. Every instance made while the engine collects
    (:func:`collecting`) is seen by it.
    """

    def __init__(self, policy: str = "fail", field: str = "on_bad"):
        if policy not in POLICIES:
            raise FieldError(field, f"expected one of {', '.join(POLICIES)}, got {policy!r}")
        self.policy = policy
        self.count = 0
        self.records: list[dict] = []
        found = _collector.get()
        if found is not None:
            found.append(self)

    @classmethod
    def for_params(cls, params: dict, key: str = "on_bad") -> "BadRecords":
        """The policy a component's params ask for (``fail`` when unset).

        >>> BadRecords.for_params({"on_bad": "skip"}).policy
        'skip'
        """
        return cls((params or {}).get(key) or "fail", field=key)

    @property
    def skipping(self) -> bool:
        return self.policy == "skip"

    def add(self, reason: str, *, file: str | None = None, line: int | None = None, offset: int | None = None,
            chunk: int | None = None, record: str | bytes | None = None) -> None:
        """Report one bad record: raise (``fail``) or count it (``skip``).
        ``line`` is 1-based, ``offset`` a byte offset in ``file``; ``record``
        (its start) is kept for the report."""
        if self.policy == "fail":
            raise BadRecordError(reason, file=file, line=line, offset=offset, chunk=chunk)
        self.count += 1
        if len(self.records) < KEEP:
            entry: dict = {"reason": reason}
            for name, value in (("file", file), ("line", line), ("offset", offset), ("chunk", chunk)):
                if value is not None:
                    entry[name] = value
            if record is not None:
                if isinstance(record, bytes):
                    record = record.decode("utf-8", "replace")
                entry["record"] = record[:200]
            self.records.append(entry)


def summary(found: list[BadRecords], base: dict | None = None) -> dict:
    """Merge what several :class:`BadRecords` skipped into ``{"count", "records"}``,
    adding to ``base`` (an earlier summary)."""
    count = (base or {}).get("count", 0)
    records = list((base or {}).get("records", []))
    for bad in found:
        count += bad.count
        records.extend(bad.records[: max(0, KEEP - len(records))])
    return {"count": count, "records": records}


@contextlib.contextmanager
def collecting() -> Iterator[list[BadRecords]]:
    """Collect every :class:`BadRecords` made inside the block (in this thread or
    context): the engine wraps planning, each chunk's materialising and the
    assembler with it.

    >>> with collecting() as found:
    ...     BadRecords("skip").add("empty line", line=3)
    >>> summary(found)["count"]
    1
    """
    found: list[BadRecords] = []
    token = _collector.set(found)
    try:
        yield found
    finally:
        _collector.reset(token)
