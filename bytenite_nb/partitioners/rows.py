"""``rows``: tables (CSV, TSV, JSON Lines, Parquet) in chunks of whole rows.

A row ends at a newline outside double quotes, so a quoted field holding
commas, quotes or newlines is never cut. Cut by size (``chunk_size``), the
plan only counts quotes, block by block, and looks for a row end near each
cut: whether a cut falls inside a quoted field is the parity of the quotes
before it. Cut by row count (``rows_per_chunk``), it finds every row end,
several blocks at a time (numpy, in threads). Chunks are byte ranges of whole
rows; on the worker each one is materialised as a table of its own, the
source's header line first, and every row's fields are counted on the way
(a ragged row is a bad record: ``on_bad``) by the compiled check of
:mod:`.rowscan`, or by numpy where it is not built and for a block that
holds a bad row. Parquet is cut by row groups,
each chunk written as a Parquet file of its row groups. Memory is bounded by
the scan block and the chunk, never by the table.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
from typing import Iterator

from ..exceptions import PartitionError
from ..bad_records import ON_BAD_SCHEMA, BadRecords
from . import rowscan
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


#: blocks scanned at once by the planning task (numpy releases the GIL, so
#: threads use the cores the workers leave idle while the plan is made)
SCAN_THREADS = 2


class _Scratch:
    """Buffers reused from block to block: a fresh 16 MiB array costs its page
    faults every time, about as much as the comparison that fills it."""

    def __init__(self):
        self.local = threading.local()

    def get(self, n: int):
        import numpy as np

        bufs = getattr(self.local, "bufs", None)
        if bufs is None or len(bufs[0]) < n:
            bufs = self.local.bufs = (np.empty(n, dtype=np.uint8), np.empty(n, dtype=bool))
        return bufs[0][:n], bufs[1][:n]


def _block_ends(data, offset: int, quoted: bool, scratch: _Scratch | None = None):
    """Row ends of one block for both states at its start: ``(ends if it starts
    outside quotes, ends if it starts inside, quote count, last quote's offset)``.

    One pass finds every newline and quote (``b & 0xD7 == 2`` holds for both,
    and for two bytes told apart after); the quote parity at each newline is a
    cumulative sum over those few positions only."""
    import numpy as np

    arr = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    masked, hits = (scratch or _Scratch()).get(len(arr))
    if not quoted:
        np.equal(arr, 0x0A, out=hits)
        ends = np.flatnonzero(hits) + (offset + 1)
        return ends, ends, 0, -1
    np.bitwise_and(arr, 0xD7, out=masked)
    np.equal(masked, 2, out=hits)
    special = np.flatnonzero(hits)
    values = arr[special]
    is_quote = values == 0x22
    newlines = special[values == 0x0A]
    odd = (np.cumsum(is_quote, dtype=np.int64)[values == 0x0A] & 1).astype(bool)
    quotes = int(np.count_nonzero(is_quote))
    last_quote = offset + int(special[is_quote][-1]) if quotes else -1
    return newlines[~odd] + (offset + 1), newlines[odd] + (offset + 1), quotes, last_quote


_BUFFER_SCRATCH = _Scratch()


def buffer_row_ends(data, *, quoted: bool, name: str):
    """The offset just after each row of ``data``, a text table in memory that
    starts at a row's start (as :func:`row_end_blocks`; a last row without a
    newline ends at ``len(data)``).

    Scanned :data:`CHECK_BLOCK` bytes at a time in this thread: numpy's
    temporaries stay small and in the CPU cache, and the scratch buffers are
    reused, where one pass over a whole block paid for fresh pages each time.

    >>> buffer_row_ends(b'a,b\\n1,"x\\ny"\\n2,3', quoted=True, name="t.csv").tolist()
    [4, 12, 15]
    """
    import numpy as np

    arr = np.frombuffer(data, dtype=np.uint8)
    blocks = (_block_ends(arr[at:at + CHECK_BLOCK], at, quoted, _BUFFER_SCRATCH)
              for at in range(0, len(arr), CHECK_BLOCK))
    parts = list(_carry_quote_state(blocks, name, lambda: len(arr)))
    return np.concatenate(parts) if parts else np.array([], dtype=np.int64)


def _carry_quote_state(blocks, name: str, scanned):
    """The row ends of consecutive blocks, each block's answer from :func:`_block_ends`
    picked by the quote state the blocks before it leave; then the end of a last
    row without a newline (``scanned()``: the bytes scanned in all). Raises
    :class:`PartitionError` for a quote never closed."""
    import numpy as np

    inside, last_end, opened_at = False, 0, None
    for outside_ends, inside_ends, quotes, last_quote in blocks:
        ends = inside_ends if inside else outside_ends
        inside ^= bool(quotes & 1)
        if inside and last_quote >= 0:
            opened_at = last_quote
        if len(ends):
            last_end = int(ends[-1])
            yield ends
    if inside:
        raise PartitionError(f"{name}: a quoted field opened near byte {opened_at} is never closed")
    if scanned() > last_end:
        yield np.array([scanned()], dtype=np.int64)


def row_end_blocks(stream, *, quoted: bool, name: str, block: int = SCAN_BLOCK, threads: int = SCAN_THREADS):
    """The byte offsets just after each row of a text table read from ``stream``,
    as one ascending numpy array per block read: after every newline that is
    not inside a double-quoted field (``quoted``; JSON Lines has none), and the
    end of a last row without a newline. Raises :class:`PartitionError` for a
    quote that is never closed.

    Each block is scanned on its own, for both quote states at its start, by
    ``threads`` threads; the state carried from the blocks before picks one.
    At most ``2 * threads`` blocks are in memory at once."""
    from concurrent.futures import ThreadPoolExecutor

    scratch = _Scratch()
    scanned = [0]

    def answers():
        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="bytenite-nb-rows-scan") as pool:
            pending: collections.deque = collections.deque()
            eof = False
            while True:
                while not eof and len(pending) < 2 * max(1, threads):
                    data = stream.read(block)
                    if not data:
                        eof = True
                        break
                    pending.append(pool.submit(_block_ends, data, scanned[0], quoted, scratch))
                    scanned[0] += len(data)
                if not pending:
                    return
                yield pending.popleft().result()

    yield from _carry_quote_state(answers(), name, lambda: scanned[0])


def _blocks_read(stream, block: int):
    """The bytes of ``stream``, ``block`` at a time, read into one reused buffer
    where the stream can (a fresh block per read pays its page faults every
    time, in a Dask worker as much as the scan of it); each block is used up
    before the next is read.

    >>> import io
    >>> [bytes(b) for b in _blocks_read(io.BytesIO(b"abcde"), 2)]
    [b'ab', b'cd', b'e']
    """
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while data := stream.read(block):
            yield data
        return
    buffer = bytearray(block)
    view = memoryview(buffer)
    while True:
        filled = 0
        while filled < block:  # a short read is not the end of the stream
            n = readinto(view[filled:])
            if not n:
                break
            filled += n
        if not filled:
            return
        yield view[:filled]
        if filled < block:
            return


def _last_quote(arr) -> int:
    """The offset of the last double quote in ``arr``, or -1; looked for from the end."""
    import numpy as np

    end = len(arr)
    while end > 0:
        start = max(0, end - 2**16)
        hits = np.flatnonzero(arr[start:end] == 0x22)
        if len(hits):
            return start + int(hits[-1])
        end = start
    return -1


def byte_cuts(stream, *, per_bytes: int, header: bool, quoted: bool, name: str, block: int = SCAN_BLOCK):
    """``(header_bytes, [(start, end), ...])`` of a text table cut into chunks of
    whole rows, each ending at the first row end at least ``per_bytes`` past its
    start; the chunks come as an iterator, after ``header_bytes``.

    Only the bytes around each cut are searched for newlines: elsewhere the
    quotes are only counted (whether a cut falls inside a quoted field is the
    parity of the quotes before it), which is several times cheaper than
    finding every row end. Rows are not counted, so the chunks carry byte
    ranges only. Raises :class:`PartitionError` for a quote never closed.

    >>> import io
    >>> data = io.BytesIO(b'h\\n1,"a\\nb"\\n2,c\\n3,d')
    >>> head, cuts = byte_cuts(data, per_bytes=4, header=True, quoted=True, name="t")
    >>> head, list(cuts)
    (2, [(2, 10), (10, 14), (14, 17)])
    """
    import numpy as np

    scratch = _Scratch()

    def quote_count(arr) -> int:
        if not quoted or not len(arr):
            return 0
        counted = rowscan.count_byte(arr, 0x22)
        if counted is not None:
            return counted
        _, hits = scratch.get(len(arr))
        return int(np.count_nonzero(np.equal(arr, 0x22, out=hits)))

    state = {"offset": 0, "inside": False, "last_quote": -1}

    def scan():
        target = 1 if header else per_bytes  # the next cut: the first row end at or after it
        start = 0
        for data in _blocks_read(stream, block):
            arr = np.frombuffer(data, dtype=np.uint8)
            offset, pos = state["offset"], 0
            while pos < len(arr):
                at = max(target - 1 - offset, pos)  # a newline here or later ends a row at or after target
                if at >= len(arr):
                    break
                state["inside"] ^= bool(quote_count(arr[pos:at]) & 1)
                window = 2**16
                while at < len(arr):  # the first newline outside quotes from ``at`` on
                    part = arr[at:at + window]
                    outside_ends, inside_ends, quotes, _ = _block_ends(part, offset + at, quoted, scratch)
                    ends = inside_ends if state["inside"] else outside_ends
                    if len(ends):
                        end = int(ends[0])
                        state["inside"] = False
                        yield start, end
                        start, target, at = end, end + per_bytes, end - offset
                        break
                    state["inside"] ^= bool(quotes & 1)
                    at += len(part)
                    window *= 2
                pos = at
            state["inside"] ^= bool(quote_count(arr[pos:]) & 1)
            if quoted and state["inside"] and (last := _last_quote(arr)) >= 0:
                state["last_quote"] = offset + last
            state["offset"] = offset + len(data)
        if state["inside"]:
            raise PartitionError(f"{name}: a quoted field opened near byte {state['last_quote']} is never closed")
        if state["offset"] > start:
            yield start, state["offset"]

    cuts = scan()
    if not header:
        return 0, cuts
    first = next(cuts, None)
    return (first[1] if first else 0), cuts


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


#: materialise reads a chunk this much at a time when it checks its rows: small,
#: so that numpy's temporaries stay below malloc's mmap threshold (Dask workers
#: hand large blocks back to the system at once, so each would cost fresh page
#: faults; measured 1.5-2x faster than 8 MiB blocks in a worker)
CHECK_BLOCK = 256 * 2**10
#: how many times CHECK_BLOCK materialise reads at once when the compiled check
#: (:mod:`.rowscan`) is built: it makes no temporaries, and fewer, larger reads
#: cost less per byte (numpy still answers for a block holding a bad row)
COMPILED_CHECK_BLOCKS = 4
DELIMITERS = {"csv": ",", "tsv": "\t"}


def row_fields(data, delimiter: str, final: bool = False):
    """``(ends, fields)`` of the whole rows in ``data``, which starts at a row's
    start: the offset just after each row and its number of fields (delimiters
    outside double quotes, plus one). With ``final``, bytes after the last
    newline are a last row too.

    >>> row_fields(b'a,b\\n1,"x,\\ny"\\n2', ",", final=True)
    (array([ 4, 13, 14]), array([2, 2, 1]))
    """
    import numpy as np

    arr = np.frombuffer(data, dtype=np.uint8)
    hits, other = _CHECK_SCRATCH.get(len(arr))
    hits = hits.view(bool)
    np.equal(arr, 0x0A, out=hits)
    hits |= np.equal(arr, 0x22, out=other)
    hits |= np.equal(arr, ord(delimiter), out=other)
    special = np.flatnonzero(hits)
    values = arr[special]
    is_quote = values == 0x22
    outside = (np.cumsum(is_quote, dtype=np.int32) & 1) == 0
    outside &= ~is_quote
    places, is_newline = special[outside], values[outside] == 0x0A
    delimiters_so_far = np.cumsum(~is_newline, dtype=np.int64)
    at_newline = np.flatnonzero(is_newline)
    ends = places[at_newline] + 1
    counts = delimiters_so_far[at_newline]
    last = ends[-1] if len(ends) else 0
    if final and len(arr) > last:
        ends = np.append(ends, len(arr))
        counts = np.append(counts, delimiters_so_far[-1] if len(delimiters_so_far) else 0)
    return ends, np.diff(counts, prepend=0) + 1


_CHECK_SCRATCH = _Scratch()


class _Lines:
    """The 1-based line of a byte offset of a file, counting newlines from the
    start once and then onwards only (offsets asked for in ascending order)."""

    def __init__(self, read_at):
        self.read_at, self.offset, self.newlines = read_at, 0, 0

    def line_at(self, offset: int) -> int:
        while self.offset < offset:
            data = self.read_at(self.offset, min(CHECK_BLOCK, offset - self.offset))
            if not data:
                break
            self.newlines += data.count(b"\n")
            self.offset += len(data)
        return self.newlines + 1


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
    ``CHUNK_INFO`` gives its ``format`` and, with ``rows_per_chunk`` or for
    Parquet, its ``rows`` (first, end); cut by size alone, rows are not
    counted (that would need every row end) and the byte range says what
    the chunk covers. ``check_fields`` (CSV/TSV, on by default): a row with
    another number of fields than the header (or the first row) - an empty
    line too - is a bad record, named by file, line and byte offset; under
    ``on_bad: skip`` it is left out and counted in ``_SUCCESS``.
    ``check_json`` (JSON Lines, off by default: it parses every line) does
    the same for a line that is not valid JSON."""

    schema = {
        "type": "object",
        "properties": {
            "rows_per_chunk": {"type": "integer", "minimum": 1, "description": "At most this many rows per chunk."},
            "chunk_size": {"type": "integer", "minimum": 1,
                           "description": "About this many bytes per chunk (default 64 MiB without rows_per_chunk)."},
            "format": {"enum": list(FORMATS), "description": "The table format (default: from each file's extension)."},
            "header": {"type": "boolean", "default": True,
                       "description": "CSV/TSV: the first line is a header, repeated in every chunk."},
            "check_fields": {"type": "boolean", "default": True,
                             "description": "CSV/TSV: a row with another number of fields than the header "
                                            "(or the first row) is a bad record."},
            "check_json": {"type": "boolean", "default": False,
                           "description": "JSON Lines: a line that is not valid JSON is a bad record "
                                          "(parses every line)."},
            "on_bad": ON_BAD_SCHEMA,
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
                checks = self._checks(source, f, fmt, params)
                for ref in self._plan_text(source, f, fmt, params.get("header", True), per_rows, per_bytes):
                    yield dataclasses.replace(ref, meta={**ref.meta, **checks}) if checks else ref

    def _plan_text(self, source, f, fmt, header, per_rows, per_bytes):
        import numpy as np

        header = header and fmt != "jsonl"
        with source.open(f.url, block_size=SCAN_BLOCK) as stream:
            if not per_rows:  # cut by size alone: no need to find every row end
                header_bytes, cuts = byte_cuts(stream, per_bytes=per_bytes, header=header, quoted=fmt != "jsonl",
                                               name=f.name)
                for start, end in cuts:
                    yield self._text_ref(f, fmt, start, end, header_bytes)
                return
            blocks = row_end_blocks(stream, quoted=fmt != "jsonl", name=f.name)
            header_bytes = 0
            if header:
                first = next(blocks, np.array([], dtype=np.int64))
                header_bytes = int(first[0]) if len(first) else 0
                blocks = _chain([first[1:]], blocks)
            start, first_row = header_bytes, 0
            for end, rows in cut_points(blocks, header_bytes, per_rows, per_bytes):
                yield self._text_ref(f, fmt, start, end, header_bytes, [first_row, first_row + rows])
                start, first_row = end, first_row + rows

    @staticmethod
    def _checks(source, f, fmt, params) -> dict:
        """What materialise checks of every row: ``_check`` holds the number of
        fields a CSV/TSV row must have (the header's, or the first row's) and
        the delimiter, or that JSON Lines must parse; ``_on_bad`` the policy."""
        policy = BadRecords.for_params(params).policy  # refuses an unknown policy while planning
        if fmt == "jsonl":
            check = {"json": True} if params.get("check_json") else None
        elif params.get("check_fields", True):
            # the first row only: small reads (a whole scan block would fetch 16 MiB for a header)
            with source.open(f.url, block_size=2**20) as stream:
                first_end, _ = byte_cuts(stream, per_bytes=1, header=True, quoted=True, name=f.name, block=2**16)
                stream.seek(0)
                first = stream.read(first_end)
            if not first:
                return {}
            delimiter = DELIMITERS[fmt]
            check = {"fields": int(row_fields(first, delimiter, final=True)[1][0]), "delimiter": delimiter}
        else:
            check = None
        return {"_check": check, "_on_bad": policy} if check else {}

    @staticmethod
    def _text_ref(f, fmt, start, end, header_bytes, rows=None) -> ChunkRef:
        meta = {"rows": rows} if rows else {}
        return ChunkRef(url=f.url, start=start, end=end, size=end - start + header_bytes, label=f.name,
                        meta={**meta, "format": fmt, "header_bytes": header_bytes})

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
        if ref.meta.get("_check"):
            with open(dest, "wb") as out:
                if local:
                    with open(path, "rb", buffering=0) as src:
                        got = self._copy_checked(ref, _positioned_reader(src.fileno()), out, header,
                                                 os.fstat(src.fileno()).st_size,
                                                 lines=_Lines(lambda at, n: os.pread(src.fileno(), n, at)))
                else:
                    with fs.open(path, "rb") as src:
                        got = self._copy_checked(ref, lambda at, n: (src.seek(at), src.read(n))[1], out, header,
                                                 fs.size(path))
            return got
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
            raise _changed(ref, ref.start + got)
        return header + got

    @staticmethod
    def _copy_checked(ref: ChunkRef, read_at, out, header: int, size: int, lines: "_Lines | None" = None) -> int:
        """Copy the header and the chunk's rows into ``out``, a block of whole rows
        at a time, checking each row; a bad row fails the chunk or, under
        ``on_bad: skip``, is left out and counted. Returns the bytes written.
        ``read_at(offset, n)`` may reuse one buffer: what it returned is used up
        before it is called again. Bytes after the last newline are a row only
        at the end of the file (``size``): a range ending mid-row (a preview
        reads only the start of a chunk) stops after its last whole row."""
        check, bad = ref.meta["_check"], BadRecords(ref.meta.get("_on_bad", "fail"))
        lines = lines or _Lines(lambda at, n: bytes(read_at(at, n)))
        written = out.write(read_at(0, header)) if header else 0
        block = CHECK_BLOCK * (COMPILED_CHECK_BLOCKS if rowscan.available() and "fields" in check else 1)
        pos, want = ref.start, block
        while pos < ref.end:
            n = min(want, ref.end - pos)
            data = read_at(pos, n)
            if len(data) != n:
                raise _changed(ref, pos + len(data))
            final = pos + n == ref.end == size
            clean = _clean_rows(data, check, final)
            if clean:  # every row has its fields: the common case, no row-by-row answer needed
                written += out.write(data[:clean])
                pos += clean
                want = block
                continue
            if "fields" in check:
                ends, fields = row_fields(data, check["delimiter"], final)
                wrong = (fields != check["fields"]).nonzero()[0].tolist()
            else:
                ends, wrong = _json_lines(data, final)
            if not len(ends):
                if pos + n == ref.end:  # the range ends mid-row
                    raise _changed(ref, pos)
                want *= 2  # a row longer than the block: read more at once
                continue
            kept = 0
            for i in wrong:
                row_start, row_end = (int(ends[i - 1]) if i else 0), int(ends[i])
                reason = ("invalid JSON" if "json" in check else
                          f"ragged row: {int(fields[i])} fields, {'the header has' if header else 'the first row has'} "
                          f"{check['fields']}")
                bad.add(reason, file=ref.label, line=lines.line_at(pos + row_start), offset=pos + row_start,
                        chunk=ref.index, record=bytes(data[row_start:row_end]))
                written += out.write(data[kept:row_start])
                kept = row_end
            written += out.write(data[kept:int(ends[-1])])
            pos += int(ends[-1])
            want = block
        return written


def _clean_rows(data, check: dict, final: bool) -> int:
    """The end of the whole rows of ``data`` when the compiled check
    (:mod:`.rowscan`) finds that every one has its fields (with ``final``, the
    bytes after the last newline are a row too); 0 when that check is not
    built, finds a bad row or finds no row end: numpy's row-by-row answer then
    says which rows, and where."""
    if "fields" not in check:
        return 0
    scan = rowscan.check_rows(data, check["delimiter"], check["fields"])
    if scan is None or scan.first_bad >= 0:
        return 0
    end = scan.end
    if final and len(data) > end:
        if scan.trailing_delimiters + 1 != check["fields"]:
            return 0
        end = len(data)
    return end


def _positioned_reader(fd: int):
    """``read_at(offset, n)`` for a local file: positioned reads into one reused
    buffer (a fresh block per read would cost its page faults every time)."""
    buffers = [bytearray(CHECK_BLOCK)]

    def read_at(offset: int, n: int) -> memoryview:
        if n > len(buffers[0]):
            buffers[0] = bytearray(n)
        view = memoryview(buffers[0])[:n]
        got = os.preadv(fd, [view], offset)
        return view[:got]

    return read_at


def _json_lines(data, final: bool):
    """``(ends, bad)``: the offset after each whole line of ``data`` and the
    indices of the lines that are not valid JSON."""
    import json

    import numpy as np

    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x0A) + 1
    if final and len(data) > (ends[-1] if len(ends) else 0):
        ends = np.append(ends, len(data))
    bad, start = [], 0
    for i, end in enumerate(ends.tolist()):
        try:
            json.loads(bytes(data[start:end]))
        except ValueError:
            bad.append(i)
        start = end
    return ends, bad


def _changed(ref: ChunkRef, at: int) -> PartitionError:
    return PartitionError(f"chunk {ref.index}: {ref.label} ended at byte {at}, expected {ref.end} "
                          "(did the source change after planning?)")
