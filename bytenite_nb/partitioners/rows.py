"""``rows``: tables (CSV, TSV, JSON Lines, Parquet) in chunks of whole rows.

Planning scans each text table once, in blocks, for the byte offsets where
rows end: a newline outside double quotes (found with numpy over each block,
so a quoted field holding commas, quotes or newlines is never cut). Chunks
are byte ranges of whole rows; on the worker each one is materialised as a
table of its own, the source's header line first. Parquet is cut by row
groups, each chunk written as a Parquet file of its row groups. Memory is
bounded by the scan block and the chunk, never by the table.
"""

from __future__ import annotations

import os
from typing import Iterator

from ..exceptions import PartitionError
from .base import ChunkRef, Partitioner, Source

DEFAULT_CHUNK_SIZE = 64 * 2**20
SCAN_BLOCK = 16 * 2**20
FORMATS = ("csv", "tsv", "jsonl", "parquet")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}


def table_format(name: str, given: str | None = None) -> str:
    """The format of table ``name``: ``given``, else its extension's.

    >>> table_format("sales.csv"), table_format("x.data", "tsv")
    ('csv', 'tsv')
    """
    if given:
        return given
    fmt = EXTENSIONS.get(os.path.splitext(name.removesuffix(".gz"))[1].lower())
    if fmt is None:
        raise PartitionError(f"{name}: cannot tell the table format from its name; set params.partitioner.format "
                             f"({', '.join(FORMATS)})")
    return fmt


def row_end_blocks(stream, *, quoted: bool, name: str, block: int = SCAN_BLOCK):
    """The byte offsets just after each row of a text table read from ``stream``,
    as one ascending numpy array per block read: after every newline that is
    not inside a double-quoted field (``quoted``; JSON Lines has none), and the
    end of a last row without a newline. Raises :class:`PartitionError` for a
    quote that is never closed."""
    import numpy as np

    offset, inside, last_end, opened_at = 0, False, 0, None
    while True:
        data = stream.read(block)
        if not data:
            break
        arr = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(arr == 0x0A)
        if quoted:
            quotes = np.flatnonzero(arr == 0x22)
            # Inside quotes at a newline: an odd number of quotes before it (plus the carry).
            before = np.searchsorted(quotes, newlines)
            newlines = newlines[(before + inside) % 2 == 0]
            if len(quotes):
                inside = bool((len(quotes) + inside) % 2)
                if inside:
                    opened_at = offset + int(quotes[-1])
        if len(newlines):
            ends = newlines.astype(np.int64) + (offset + 1)
            last_end = int(ends[-1])
            yield ends
        offset += len(data)
    if inside:
        raise PartitionError(f"{name}: a quoted field opened near byte {opened_at} is never closed")
    if offset > last_end:
        yield np.array([offset], dtype=np.int64)


def row_ends(stream, *, quoted: bool, name: str, block: int = SCAN_BLOCK) -> Iterator[int]:
    """Every row end of :func:`row_end_blocks`, one by one.

    >>> import io
    >>> list(row_ends(io.BytesIO(b'a,b\\n1,"x\\ny"\\n2,3'), quoted=True, name="t.csv"))
    [4, 12, 15]
    """
    for ends in row_end_blocks(stream, quoted=quoted, name=name, block=block):
        yield from ends.tolist()


def cut_points(blocks, start: int, per_rows: int | None, per_bytes: int | None):
    """``(end, rows)`` of each chunk of whole rows from ``start``: at most
    ``per_rows`` rows, or the first row end at least ``per_bytes`` past the
    chunk's start, whichever comes first; ``blocks`` are arrays of row ends.

    >>> import numpy as np
    >>> list(cut_points([np.array([3, 6, 9]), np.array([12, 15])], 0, 2, None))
    [(6, 2), (12, 2), (15, 1)]
    >>> list(cut_points([np.array([3, 6, 9, 12, 15])], 0, None, 7))
    [(9, 3), (15, 2)]
    """
    import numpy as np

    rows, last = 0, None
    for ends in blocks:
        pos = 0
        while pos < len(ends):
            candidates = []
            if per_rows:
                candidates.append(pos + per_rows - rows - 1)
            if per_bytes:
                candidates.append(pos + int(np.searchsorted(ends[pos:], start + per_bytes)))
            cut = min(candidates)
            if cut >= len(ends):
                rows += len(ends) - pos
                break
            end = int(ends[cut])
            yield end, rows + cut - pos + 1
            start, rows, pos = end, 0, cut + 1
        if len(ends):
            last = int(ends[-1])
    if rows:
        yield last, rows


def _chain(*iterables):
    for iterable in iterables:
        yield from iterable


class Rows(Partitioner):
    """Shard tables - CSV, TSV, JSON Lines or Parquet - into chunks of whole rows:
    ``rows_per_chunk`` rows, or about ``chunk_size`` bytes (64 MiB by default).
    A CSV/TSV chunk is a table of its own, the header line first (``header``,
    true by default), and a quoted field holding newlines is never cut, so
    ``rows`` -> ``identity`` -> ``concat`` with ``header: true`` gives back
    the input byte for byte. Parquet is cut by row groups. Each chunk's
    ``CHUNK_INFO`` gives its ``rows`` (first, end) and ``format``."""

    schema = {
        "type": "object",
        "properties": {
            "rows_per_chunk": {"type": "integer", "minimum": 1, "description": "At most this many rows per chunk."},
            "chunk_size": {"type": "integer", "minimum": 1,
                           "description": "About this many bytes per chunk (default 64 MiB without rows_per_chunk)."},
            "format": {"enum": list(FORMATS), "description": "The table format (default: from each file's extension)."},
            "header": {"type": "boolean", "default": True,
                       "description": "CSV/TSV: the first line is a header, repeated in every chunk."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        per_rows = params.get("rows_per_chunk")
        per_bytes = params.get("chunk_size") or (None if per_rows else DEFAULT_CHUNK_SIZE)
        for f in source.files:
            fmt = table_format(f.name, params.get("format"))
            if fmt == "parquet":
                yield from self._plan_parquet(source, f, per_rows, per_bytes)
            else:
                yield from self._plan_text(source, f, fmt, params.get("header", True), per_rows, per_bytes)

    def _plan_text(self, source, f, fmt, header, per_rows, per_bytes):
        import numpy as np

        header = header and fmt != "jsonl"
        with source.open(f.url, block_size=SCAN_BLOCK) as stream:
            blocks = row_end_blocks(stream, quoted=fmt != "jsonl", name=f.name)
            header_bytes = 0
            if header:
                first = next(blocks, np.array([], dtype=np.int64))
                header_bytes = int(first[0]) if len(first) else 0
                blocks = _chain([first[1:]], blocks)
            start, first_row = header_bytes, 0
            for end, rows in cut_points(blocks, header_bytes, per_rows, per_bytes):
                yield self._text_ref(f, fmt, start, end, header_bytes, first_row, first_row + rows)
                start, first_row = end, first_row + rows

    @staticmethod
    def _text_ref(f, fmt, start, end, header_bytes, first, stop) -> ChunkRef:
        return ChunkRef(url=f.url, start=start, end=end, size=end - start + header_bytes, label=f.name,
                        meta={"rows": [first, stop], "format": fmt, "header_bytes": header_bytes})

    def _plan_parquet(self, source, f, per_rows, per_bytes):
        import pyarrow.parquet as pq

        with source.open(f.url) as stream:
            meta = pq.ParquetFile(stream).metadata
        groups: list[int] = []
        first, rows, size = 0, 0, 0
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            groups.append(g)
            rows += group.num_rows
            size += group.total_byte_size
            if (per_rows and rows >= per_rows) or (per_bytes and size >= per_bytes):
                yield self._parquet_ref(f, groups, first, rows, size)
                groups, first, rows, size = [], first + rows, 0, 0
        if groups:
            yield self._parquet_ref(f, groups, first, rows, size)

    @staticmethod
    def _parquet_ref(f, groups, first, rows, size) -> ChunkRef:
        return ChunkRef(url=f.url, size=size, label=f"{f.name} row groups {groups[0]}-{groups[-1]}",
                        meta={"rows": [first, first + rows], "format": "parquet", "row_groups": list(groups)})

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """The chunk as a table of its own: the header line, then its rows (or, for
        Parquet, a Parquet file of its row groups)."""
        from fsspec.core import url_to_fs

        from ..transfer import copy_range, copy_stream

        if os.path.lexists(dest):
            os.unlink(dest)
        fs, path = url_to_fs(ref.url, **(storage_options or {}))
        if ref.meta.get("format") == "parquet":
            import pyarrow.parquet as pq

            with fs.open(path, "rb") as src:
                table = pq.ParquetFile(src).read_row_groups(ref.meta["row_groups"])
            pq.write_table(table, dest)
            return os.path.getsize(dest)
        header = ref.meta.get("header_bytes", 0)
        local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        with open(dest, "wb") as out:
            if local:  # positioned reads, no file object in between
                copy_range(path, out, 0, header)
                got = copy_range(path, out, ref.start, ref.end)
            else:
                with fs.open(path, "rb") as src:
                    out.write(src.read(header))
                    src.seek(ref.start)
                    got = copy_stream(src, out, ref.end - ref.start)
        if got != ref.end - ref.start:
            raise PartitionError(f"chunk {ref.index}: {ref.label} ended at byte {ref.start + got}, expected "
                                 f"{ref.end} (did the source change after planning?)")
        return header + got
