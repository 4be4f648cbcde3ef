"""``log-time``: log files split into time windows, multi-line entries whole.

Planning scans each file once, in blocks (a compiled regex finds the lines
that start an entry), and records for each window the byte ranges of its
entries: never the entries themselves. Logs are mostly in time order, not
strictly: every entry goes to the window of its own timestamp, so a window
is a set of ranges, possibly in several files. A range is a run of adjacent
entries of one file (flagged when they are not in time order). The plan's
size grows with the number of runs - one per file and window for a log in
order, plus one per entry that lands in another window than its neighbours
- not with the data.

On the worker a chunk is materialised as its entries in time order: the
runs are merged (a streaming k-way merge, equal times in file order then
position), so each chunk is a sorted log of its window. A run whose entries
are not in time order (entries written late) is sorted in memory first:
memory is bounded by the chunk, not by the input.
"""

from __future__ import annotations

import heapq
import io
import os
from datetime import datetime, timezone as _tz

from ..bad_records import ON_BAD_SCHEMA, BadRecords
from ..exceptions import PartitionError
from ..logtime import TIME_PROPERTIES, TimeFormat, Windows, from_micros, scan
from .base import ChunkRef, Partitioner, Source


class _Window:
    """What the plan keeps of one window: its runs ``[file, start, end, in_order]`` and counts."""

    __slots__ = ("runs", "entries", "size", "last_key", "files")

    def __init__(self):
        self.runs: list[list[int]] = []
        self.entries = self.size = 0
        self.last_key = None
        self.files: dict[int, None] = {}

    def add(self, file: int, start: int, end: int, key: int) -> None:
        run = self.runs[-1] if self.runs else None
        if run is not None and run[0] == file and run[2] == start:
            run[2] = end
            if key < self.last_key:
                run[3] = 0  # not in time order: sorted when materialised
        else:
            self.runs.append([file, start, end, 1])
        self.last_key = key
        self.entries += 1
        self.size += end - start
        self.files[file] = None


class LogTime(Partitioner):
    """Split log files into time windows of ``every`` (``1h``, ``15min``, ``1D``,
    ``1M``...): one chunk per window that holds entries, in time order.

    An entry is a line starting with a timestamp plus every following line
    that does not (a stack trace, continuation lines). Timestamps: a
    ``preset`` - ``iso8601`` (default), ``syslog`` (RFC 3164, ``Mar  5
    14:02:01``: the year is ``year``, else the year of the file's modification
    time, a date more than a day after it being of the year before),
    ``apache`` / ``nginx`` (combined log format), ``python-logging``
    (``2026-03-05 14:02:01,123``) - or a ``pattern`` (a regex with a named
    group ``ts``, matched at the start of a line) and a strptime ``format``.
    Timestamps without an offset are in ``timezone`` (IANA, default UTC).

    Entries out of order go to the window of their own timestamp; each chunk
    holds its window's entries sorted by time (equal times: file order, then
    position). ``on_bad``: lines before a file's first timestamp, or a
    timestamp that does not parse, fail the job naming the file and line, or
    (``skip``) are left out and counted. ``CHUNK_INFO`` gives ``window``
    (start, end, ISO 8601), ``entries``, ``files`` and ``time`` (the
    timestamp params, which ``log-merge`` reuses)."""

    schema = {
        "type": "object",
        "properties": {
            **TIME_PROPERTIES,
            "every": {"type": "string", "default": "1h",
                      "description": "Window length: a count and a unit (s, min, h, D, M, Y), e.g. 15min, 1h, 1D."},
            "on_bad": ON_BAD_SCHEMA,
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        fmt = TimeFormat.from_params(params, field="params.partitioner")
        windows = Windows(params.get("every", "1h"), fmt.zone, field="params.partitioner.every")
        bad = BadRecords.for_params(params)
        found: dict[int, _Window] = {}
        references = [_modified(source, f) if reference_needed(fmt) else None for f in source.files]
        for number, f in enumerate(source.files):
            reference = references[number]
            with source.open(f.url, block_size=2**22) as stream:
                for entry in scan(stream, fmt.regex):
                    if entry.ts is None:
                        bad.add("lines before the first timestamp", file=f.name, line=1, offset=0)
                        continue
                    try:
                        key = fmt.key(entry.ts, reference)
                    except (ValueError, KeyError, OverflowError) as exc:
                        bad.add(f"timestamp {entry.ts.decode('utf-8', 'replace')!r} does not parse ({exc})",
                                file=f.name, line=entry.line, offset=entry.offset, record=entry.ts)
                        continue
                    start, _ = windows.of(key)
                    window = found.get(start)
                    if window is None:
                        window = found[start] = _Window()
                    window.add(number, entry.offset, entry.end, key)
        time = fmt.params()
        for start in sorted(found):
            window = found[start]
            end = windows.of(start)[1]
            files = list(window.files)
            index = {n: i for i, n in enumerate(files)}
            lo, hi = from_micros(start, fmt.zone).isoformat(), from_micros(end, fmt.zone).isoformat()
            yield ChunkRef(
                url=source.files[files[0]].url, size=window.size, label=f"{lo} .. {hi}",
                meta={"window": [lo, hi], "entries": window.entries,
                      "files": [source.files[n].name for n in files],
                      "urls": [source.files[n].url for n in files],
                      "runs": [[index[r[0]], *r[1:]] for r in window.runs], "time": time,
                      "references": [references[n] for n in files]})

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """The window's entries in time order (a preview: at most ``end - start`` bytes).
        A file's last entry without a final newline gets one when another entry follows it."""
        from fsspec.core import url_to_fs

        if os.path.lexists(dest):
            os.unlink(dest)
        meta = ref.meta
        fmt = TimeFormat.from_params(meta["time"])
        limit = None if ref.end is None else ref.end - ref.start
        handles: dict[int, object] = {}
        try:
            for n, url in enumerate(meta["urls"]):
                fs, path = url_to_fs(url, **(storage_options or {}))
                handles[n] = fs.open(path, "rb")
            runs = meta["runs"]
            direct = len(runs) == 1 and runs[0][3]  # one run in time order: its bytes as they are
            if direct:
                streams = [_run_bytes(handles, runs[0])]
            else:
                references = meta.get("references") or [None] * len(meta["urls"])
                merged = heapq.merge(*(_run_entries(handles[r[0]], r, fmt, references[r[0]], ref) for r in runs),
                                     key=lambda pair: pair[0])
                streams = [(data for _, data in merged)]
            written = added = 0
            previous = b""
            with open(dest, "wb") as out:
                for stream in streams:
                    for data in stream:
                        if not direct and previous and not previous.endswith(b"\n"):
                            data = b"\n" + data  # a file's last line, now followed by another entry
                            added += 1
                        previous = data
                        if limit is not None and written + len(data) > limit:
                            data = data[:limit - written]
                        out.write(data)
                        written += len(data)
                        if limit is not None and written >= limit:
                            return written
        finally:
            for handle in handles.values():
                handle.close()
        if limit is None and written - added != ref.size:
            raise PartitionError(f"chunk {ref.index}: {ref.label}: read {written} bytes, expected {ref.size} "
                                 "(did the source change after planning?)")
        return written


def reference_needed(fmt: TimeFormat) -> bool:
    return fmt.kind == "syslog" and not fmt.year


def _modified(source: Source, f) -> int | None:
    """The modification time of ``f`` as a timestamp key (None when unknown)."""
    from fsspec.core import url_to_fs

    try:
        fs, path = url_to_fs(f.url, **source.location.storage_options)
        moment = fs.modified(path)
    except (NotImplementedError, OSError, KeyError, AttributeError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_tz.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=_tz.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _run_bytes(handles, run, block: int = 2**20):
    handle = handles[run[0]]
    handle.seek(run[1])
    left = run[2] - run[1]
    while left:
        data = handle.read(min(block, left))
        if not data:
            return
        left -= len(data)
        yield data


def _run_entries(handle, run, fmt: TimeFormat, reference, ref: ChunkRef):
    """``(key, bytes)`` of each entry of one run (a file's range), for the merge.
    Each run has its own reader (positioned reads), so runs of one file interleave."""
    start, end, in_order = run[1], run[2], run[3]
    reader = _Positioned(handle, start)
    entries = ((fmt.key(entry.ts, reference), entry.data) if entry.ts is not None else _changed(ref, entry)
               for entry in scan(io.BufferedReader(reader, 65536), fmt.regex, keep_data=True, offset=start,
                                 limit=end - start, block=65536))
    if in_order:
        yield from entries
    else:
        yield from sorted(entries, key=lambda pair: pair[0])  # stable: equal times keep their order


def _changed(ref: ChunkRef, entry):
    raise PartitionError(f"chunk {ref.index}: no timestamp at byte {entry.offset} "
                         "(did the source change after planning?)")


class _Positioned(io.RawIOBase):
    """A raw reader of one file from ``offset`` that seeks before every read, so
    that several readers share one open file."""

    def __init__(self, handle, offset: int):
        super().__init__()
        self.handle, self.offset = handle, offset

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        self.handle.seek(self.offset)
        data = self.handle.read(len(b))
        b[:len(data)] = data
        self.offset += len(data)
        return len(data)
