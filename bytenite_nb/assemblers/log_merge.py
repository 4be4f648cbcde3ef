"""``log-merge``: log results merged into one timeline, streaming."""

from __future__ import annotations

import fnmatch
import heapq
from datetime import datetime

from ..bad_records import ON_BAD_SCHEMA, BadRecords
from ..exceptions import ResultFormatError
from ..logtime import TIME_PARAMS, TIME_PROPERTIES, TimeFormat, scan
from ..schema import SAFE_NAME
from ..transfer import current_checksum, new_checksum
from .base import Assembler, output_path

BLOCK = 256 * 2**10  # bytes read from each result at a time
WRITE_BATCH = 1024  # entries written (and hashed) at once


class LogMerge(Assembler):
    """Merge every chunk's log results into one file ``output_name`` in time
    order: a streaming k-way merge of their entries (a block of each result in
    memory), multi-line entries kept whole. Each result must be in time order
    (as ``log-time`` chunks are); an entry earlier than the one before it in
    the same result is an error naming the chunk, the file and the line.

    Timestamps are read as ``log-time`` reads them: the same ``preset`` or
    ``pattern`` + ``format``, ``timezone`` and ``year``; without any of these,
    the timestamp params of the chunks' ``CHUNK_INFO`` (set by ``log-time``),
    else ``iso8601``. syslog timestamps without ``year`` take the year of the
    chunk's window end (``CHUNK_INFO`` ``window``), else of now.

    Equal times keep chunk order, then file name order within a chunk, then
    position. ``dedupe`` drops an entry whose bytes equal an earlier entry's
    of the same time. An entry without a final newline gets one when another
    entry follows it. ``on_bad``: lines before a result's first timestamp, or
    a timestamp that does not parse, fail naming the chunk, file and line, or
    are left out and counted. ``files`` picks result files by glob.
    """

    schema = {
        "type": "object",
        "properties": {
            **TIME_PROPERTIES,
            "dedupe": {"type": "boolean", "default": False,
                       "description": "Drop exact duplicate entries (same bytes, same time)."},
            "output_name": {**SAFE_NAME, "default": "output.log", "description": "Name of the output file."},
            "files": {"type": "string", "description": "Only result files matching this glob."},
            "on_bad": ON_BAD_SCHEMA,
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        name = params.get("output_name", "output.log")
        chosen = {k: params[k] for k in TIME_PARAMS if params.get(k) is not None}
        if not chosen:
            chosen = next((dict(r.info["time"]) for r in results if isinstance(r.info.get("time"), dict)), {})
        fmt = TimeFormat.from_params(chosen, field="params.assembler")
        bad = BadRecords.for_params(params)
        glob = params.get("files")
        inputs = [(chunk, f) for chunk in results for f in sorted(chunk.files, key=lambda f: f.name)
                  if not glob or fnmatch.fnmatch(f.name, glob)]
        # (time, input number, bytes): equal times compare input numbers, so the merge is stable.
        streams = [_entries(chunk, f, n, fmt, bad) for n, (chunk, f) in enumerate(inputs)]
        digest = new_checksum(current_checksum())
        dedupe = bool(params.get("dedupe", False))
        seen: set[bytes] = set()
        seen_key = None
        pending: list[bytes] = []
        previous = b"\n"
        with open(output_path(output_dir, name), "wb") as out:
            for key, _, data in heapq.merge(*streams):
                if dedupe:
                    if key != seen_key:
                        seen, seen_key = set(), key
                    if data in seen:
                        continue
                    seen.add(data)
                if not previous.endswith(b"\n"):
                    pending.append(b"\n")
                pending.append(data)
                previous = data
                if len(pending) >= WRITE_BATCH:
                    _write(out, digest, pending)
            _write(out, digest, pending)
        return {name: digest.hexdigest()}


def _write(out, digest, pending: list[bytes]) -> None:
    data = b"".join(pending)
    out.write(data)
    digest.update(data)
    pending.clear()


def _reference(info: dict) -> int | None:
    window = info.get("window")
    if not window:
        return None
    end = datetime.fromisoformat(window[1])
    return int(end.timestamp() * 1_000_000) - 1


def _entries(chunk, f, number: int, fmt: TimeFormat, bad: BadRecords):
    """``(key, number, bytes)`` of each entry of one result file, checking their order."""
    reference = _reference(chunk.info) if fmt.kind == "syslog" and not fmt.year else None
    last = None
    with f.open() as stream:
        for entry in scan(stream, fmt.regex, keep_data=True, block=BLOCK):
            if entry.ts is None:
                bad.add("lines before the first timestamp", file=f.name, chunk=chunk.index, line=1,
                        record=entry.data)
                continue
            try:
                key = fmt.key(entry.ts, reference)
            except (ValueError, KeyError, OverflowError) as exc:
                bad.add(f"timestamp {entry.ts.decode('utf-8', 'replace')!r} does not parse ({exc})",
                        file=f.name, chunk=chunk.index, line=entry.line, record=entry.data)
                continue
            if last is not None and key < last:
                raise ResultFormatError(f"chunk {chunk.index}, file {f.name!r}: line {entry.line}: entry earlier "
                                        f"than the one before it (results must be in time order)")
            last = key
            yield key, number, entry.data
