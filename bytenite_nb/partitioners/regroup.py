"""Regrouping partitioners: rows gathered into chunks by a value they hold.

``key`` and ``date-range`` share this mechanism; a subclass of
:class:`Regroup` only says which columns it reads and which group each row
belongs to (:meth:`Regroup.assign`).

1. **Blocks.** Each input table is cut into blocks of whole rows of about
   ``block_size`` bytes, with the same row-end scan as ``rows`` (a quoted
   field holding newlines is never cut); Parquet by row groups.
2. **Scatter.** Each block is read (pyarrow's CSV and Parquet readers; JSON
   Lines line by line), each row given its group, and the rows of each group
   written to a spill file of their own in ``Source.workspace`` (the job's
   staging area, reachable by every worker, possibly an object store). CSV,
   TSV and JSON Lines rows are copied as the raw bytes they were, never
   re-serialised. When the plan task runs on a Dask worker the blocks are
   scattered in parallel over the cluster (``worker_client``); otherwise
   (``scheduler="sync"``) one after the other in the plan task.
3. **Chunks.** One chunk per group that has rows, in the order of the group
   (bucket number, key, window start). A chunk lists its spill pieces in
   ``meta["pieces"]``; on the worker, :meth:`Regroup.materialise` writes them
   one after the other into one table with one header (Parquet: one Parquet
   file). Memory is bounded by the block size on every worker, never by the
   input size; the spill files go with the job's staging area.

A preview (``job.plan()``, no workspace) reads the blocks the same way but
writes nothing: it counts each group's rows, so it shows every chunk's key
or window and row count; its chunks have no pieces and are not run.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..bad_records import BadRecords, collecting, summary
from ..exceptions import BadRecordError, PartitionError
from .base import ChunkRef, Partitioner, Source
from .rows import SCAN_BLOCK, buffer_row_ends, byte_cuts, table_format

DEFAULT_BLOCK_SIZE = 32 * 2**20
SPILL_FOLDER = "regroup"

#: the params every regrouping partitioner takes
COMMON_PROPERTIES = {
    "format": {"enum": ["csv", "tsv", "jsonl", "parquet"],
               "description": "The table format (default: from each file's extension)."},
    "block_size": {"type": "integer", "minimum": 1024, "maximum": 2**30,
                   "description": "Bytes of input read and scattered at a time by one task (default 32 MiB); "
                                  "bounds the memory of every worker."},
}


@dataclass(frozen=True)
class Block:
    """Whole rows of one input table: a byte range (text) or row groups (Parquet)."""

    number: int
    url: str
    name: str
    format: str
    start: int = 0
    end: int = 0
    header_bytes: int = 0
    row_groups: tuple[int, ...] = ()


@dataclass
class Scattered:
    """What scattering one block gave: per group its rows, bytes and spill piece."""

    block: int
    groups: dict = field(default_factory=dict)   # group id -> {"rows", "bytes", "piece", "info"}
    rows_in: int = 0
    skipped: dict = field(default_factory=dict)  # a bad_records.summary


class Regroup(Partitioner):
    """Base of the partitioners that regroup rows (see the module's docstring).

    A subclass implements :meth:`columns` and :meth:`assign`.
    """

    def columns(self, params: dict) -> list[str]:
        """The columns :meth:`assign` needs."""
        raise NotImplementedError

    def assign(self, values: dict, params: dict, report) -> tuple[list, list]:
        """The group of each row of a block.

        ``values`` maps each of :meth:`columns` to a pyarrow array (CSV/TSV:
        strings as written; JSON Lines and Parquet: their own types). Returns
        ``(codes, groups)``: ``codes`` a numpy int64 array, per row the index
        of its group in ``groups`` or -1 for a row to leave out, and
        ``groups`` a list of ``(group id, info)``: the id orders the chunks and
        is the same for the same group in every block; ``info`` goes into the
        chunk's ``CHUNK_INFO``. ``report(row, reason, record)`` reports a bad
        row (it raises under ``on_bad: fail``)."""
        raise NotImplementedError

    # -- planning ------------------------------------------------------------------

    def plan(self, source: Source, params: dict):
        blocks = list(self._blocks(source, params))
        spill = None
        if source.workspace is not None:
            spill = source.workspace.rstrip("/") + "/" + SPILL_FOLDER
            _clear(spill, source.location.storage_options)  # a re-plan replaces an interrupted one's spills
        results = self._scatter_all(blocks, params, spill, source.location.storage_options)
        bad = BadRecords("skip") if any(r.skipped.get("count") for r in results) else None
        merged: dict[Any, dict] = {}
        headers = {}
        for block, result in zip(blocks, results):
            if bad is not None:
                _report_again(bad, result.skipped)
            if block.header_bytes:
                headers.setdefault(block.format, (block.url, block.header_bytes))
            for gid, part in result.groups.items():
                group = merged.setdefault(gid, {"rows": 0, "bytes": 0, "pieces": [], "info": part["info"]})
                group["rows"] += part["rows"]
                group["bytes"] += part["bytes"]
                if part.get("piece"):
                    group["pieces"].append(part["piece"])
        formats = {b.format for b in blocks}
        if len(formats) > 1:
            raise PartitionError(f"the inputs mix table formats ({', '.join(sorted(formats))}); "
                                 "a regrouped chunk is one table, so give tables of one format")
        fmt = formats.pop() if formats else "csv"
        self._check_headers(source, blocks)
        header_url, header_bytes = headers.get(fmt, (None, 0))
        for gid in sorted(merged):
            group = merged[gid]
            meta = dict(group["info"])
            meta.update(format=fmt, rows=group["rows"], pieces=group["pieces"])
            if header_bytes:
                meta.update(header_url=header_url, header_bytes=header_bytes)
            yield ChunkRef(size=group["bytes"] + header_bytes, label=_label(group["info"]), meta=meta)

    def _blocks(self, source: Source, params: dict):
        per_bytes = params.get("block_size") or DEFAULT_BLOCK_SIZE
        number = 0
        for f in source.files:
            fmt = table_format(f.name, params.get("format"))
            if fmt == "parquet":
                import pyarrow.parquet as pq

                with source.open(f.url) as stream:
                    meta = pq.ParquetFile(stream).metadata
                groups, size = [], 0
                for g in range(meta.num_row_groups):
                    groups.append(g)
                    size += meta.row_group(g).total_byte_size
                    if size >= per_bytes or g == meta.num_row_groups - 1:
                        yield Block(number, f.url, f.name, fmt, row_groups=tuple(groups))
                        number, groups, size = number + 1, [], 0
                continue
            with source.open(f.url, block_size=SCAN_BLOCK) as stream:
                # Only the quotes are counted between cuts: no need to find every row end here.
                header, cuts = byte_cuts(stream, per_bytes=per_bytes, header=fmt != "jsonl",
                                         quoted=fmt != "jsonl", name=f.name)
                for start, end in cuts:
                    yield Block(number, f.url, f.name, fmt, start, end, header)
                    number += 1

    def _check_headers(self, source: Source, blocks: list[Block]) -> None:
        """Tables whose rows are put together must have the very same header line."""
        seen: dict[str, tuple[str, bytes]] = {}
        for block in blocks:
            if not block.header_bytes or block.url in seen:
                continue
            with source.open(block.url) as stream:
                seen[block.url] = (block.name, stream.read(block.header_bytes))
        headers = list(seen.values())
        for name, header in headers[1:]:
            if header != headers[0][1]:
                raise PartitionError(f"{name}: its header line differs from that of {headers[0][0]}; "
                                     "the rows of tables with different columns cannot share a chunk")

    def _scatter_all(self, blocks: list[Block], params: dict, spill: str | None, options: dict) -> list[Scattered]:
        client = _worker_client()
        if client is None or len(blocks) < 2:
            return [scatter_block(self, params, b, spill, options) for b in blocks]
        from distributed import worker_client

        with worker_client() as c:
            futures = c.map(scatter_block, [self] * len(blocks), [params] * len(blocks), blocks,
                            [spill] * len(blocks), [options] * len(blocks), pure=False,
                            key=[f"regroup-scatter-{uuid.uuid4().hex}" for _ in blocks])
            try:
                return c.gather(futures)
            finally:
                c.cancel(futures)

    # -- on the worker ---------------------------------------------------------------

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """One table of the chunk's spill pieces, in block order: the header line
        once, then every piece's rows as they were (Parquet: one Parquet file)."""
        from fsspec.core import url_to_fs

        from ..transfer import copy_stream

        options = storage_options or {}
        if os.path.lexists(dest):
            os.unlink(dest)
        pieces = ref.meta.get("pieces") or []
        if not pieces and ref.meta.get("rows"):
            raise PartitionError(f"chunk {ref.index}: a preview's chunk has no spilled rows; run the job to make them")
        if ref.meta.get("format") == "parquet":
            import pyarrow.parquet as pq

            writer = None
            try:
                for url in pieces:
                    fs, path = url_to_fs(url, **options)
                    try:
                        src = fs.open(path, "rb")
                    except FileNotFoundError:
                        raise _pieces_gone(ref, url) from None
                    with src:
                        table = pq.read_table(src)
                    writer = writer or pq.ParquetWriter(dest, table.schema)
                    writer.write_table(table)
            finally:
                if writer is not None:
                    writer.close()
            return os.path.getsize(dest)
        with open(dest, "wb") as out:
            if ref.meta.get("header_bytes"):
                fs, path = url_to_fs(ref.meta["header_url"], **options)
                with fs.open(path, "rb") as src:
                    out.write(src.read(ref.meta["header_bytes"]))
            for url in pieces:
                fs, path = url_to_fs(url, **options)
                try:
                    src = fs.open(path, "rb")
                except FileNotFoundError:
                    raise _pieces_gone(ref, url) from None
                with src:
                    copy_stream(src, out)
        return os.path.getsize(dest)

    def release(self, ref: ChunkRef, storage_options: dict | None = None) -> None:
        """Remove the chunk's spill pieces: its rows are in its committed results now.

        >>> import os, tempfile
        >>> piece = os.path.join(tempfile.mkdtemp(), "000001.csv")
        >>> _ = open(piece, "w").write("k,1\\n")
        >>> Regroup().release(ChunkRef(index=0, meta={"pieces": ["file://" + piece]}))
        >>> os.path.exists(piece)
        False
        """
        from fsspec.core import url_to_fs

        for url in ref.meta.get("pieces") or []:
            fs, path = url_to_fs(url, **(storage_options or {}))
            try:
                fs.rm_file(path)
            except FileNotFoundError:
                pass


def _pieces_gone(ref: ChunkRef, url: str) -> PartitionError:
    """A chunk whose spilled rows are gone: released when it was committed, and its
    commit lost since (staging lost files), or the staging area cleared."""
    return PartitionError(f"chunk {ref.index}: its regrouped rows ({url}) are gone from staging (they are removed "
                          "once a chunk is committed); run the job again with force to regroup the input")


def _label(info: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in info.items())


def _worker_client():
    """The Dask worker this code runs on, or None (``scheduler="sync"``, a plain process)."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _clear(folder: str, options: dict) -> None:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(folder, **options)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _report_again(bad: BadRecords, skipped: dict) -> None:
    """Count, in the plan task, the rows a scatter task skipped (maybe on another worker)."""
    for record in skipped.get("records", []):
        bad.add(record["reason"], file=record.get("file"), line=record.get("line"), offset=record.get("offset"),
                record=record.get("record"))
    bad.count += skipped.get("count", 0) - len(skipped.get("records", []))


# -- scattering one block ------------------------------------------------------------


def scatter_block(partitioner: Regroup, params: dict, block: Block, spill: str | None,
                  options: dict) -> Scattered:
    """Read one block, give each row its group and write each group's rows to a
    spill file under ``spill`` (None: count only). Runs as a Dask task."""
    with collecting() as found:
        bad = BadRecords.for_params(params)
        if block.format == "parquet":
            result = _scatter_parquet(partitioner, params, block, spill, options, bad)
        else:
            result = _scatter_text(partitioner, params, block, spill, options, bad)
    result.skipped = summary(found)
    out = sum(g["rows"] for g in result.groups.values())
    if out + result.skipped["count"] != result.rows_in:  # every row in exactly one group, or skipped and counted
        raise PartitionError(f"{block.name}: bytes {block.start}-{block.end}: {result.rows_in} rows read but "
                             f"{out} grouped and {result.skipped['count']} skipped")
    return result


def _open(url: str, options: dict):
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(url, **options)
    return fs, path


def _read_range(block: Block, options: dict, start: int, end: int) -> bytes:
    fs, path = _open(block.url, options)
    with fs.open(path, "rb") as src:
        src.seek(start)
        return src.read(end - start)


class _Places:
    """File lines of a block's rows, for messages (counted only when a bad row shows up)."""

    def __init__(self, block: Block, options: dict, data: bytes, starts):
        self.block, self.options, self.data, self.starts = block, options, data, starts
        self._first_line: int | None = None

    def line(self, row: int) -> int:
        if self._first_line is None:
            count, at = 0, 0
            fs, path = _open(self.block.url, self.options)
            with fs.open(path, "rb") as src:
                while at < self.block.start:
                    piece = src.read(min(SCAN_BLOCK, self.block.start - at))
                    if not piece:
                        break
                    count, at = count + piece.count(b"\n"), at + len(piece)
            self._first_line = count + 1
        return self._first_line + self.data.count(b"\n", 0, int(self.starts[row]))

    def offset(self, row: int) -> int:
        return self.block.start + int(self.starts[row])


def _scatter_text(partitioner, params, block, spill, options, bad) -> Scattered:
    import numpy as np

    data = _read_range(block, options, block.start, block.end)
    ends = np.concatenate([np.array([0], dtype=np.int64),
                           buffer_row_ends(data, quoted=block.format != "jsonl", name=block.name)])
    starts, ends = ends[:-1], ends[1:]
    # A blank line is no row (pyarrow's CSV reader skips it too).
    lengths = ends - starts
    arr = np.frombuffer(data, dtype=np.uint8)
    last = arr[np.maximum(ends - 1, 0)] if len(ends) else arr[:0]
    before = arr[np.maximum(ends - 2, 0)] if len(ends) else arr[:0]
    blank = (lengths == 0) | ((lengths == 1) & (last == 0x0A)) | ((lengths == 2) & (before == 0x0D) & (last == 0x0A))
    starts, ends = starts[~blank], ends[~blank]
    places = _Places(block, options, data, starts)

    def report(row: int, reason: str, record=None):
        bad.add(reason, file=block.name, line=places.line(row), offset=places.offset(row),
                record=record if record is not None else data[int(starts[row]):int(ends[row])][:200])

    columns = partitioner.columns(params)
    if block.format == "jsonl":
        values, codes_ok = _jsonl_values(data, starts, ends, columns, report)
    else:
        header = _read_range(block, options, 0, block.header_bytes)
        values = _csv_values(header, data, block, columns, len(starts), places)
        codes_ok = None
    if codes_ok is not None:  # a row already reported as bad JSON is not reported again
        reported, ok = report, codes_ok

        def report(row: int, reason: str, record=None):
            if ok[row]:
                reported(row, reason, record)
    codes, groups = partitioner.assign(values, params, report)
    codes = np.asarray(codes, dtype=np.int64)
    if codes_ok is not None:
        codes[~codes_ok] = -1
    result = Scattered(block=block.number, rows_in=len(starts))
    row_bytes = RowBytes(data, starts, ends) if spill is not None else None
    for g, rows in _rows_by_group(codes, len(groups)):
        gid, info = groups[g]
        if spill is None:  # a preview counts
            size = int((ends[rows] - starts[rows]).sum())
            result.groups[gid] = {"rows": len(rows), "bytes": size, "piece": None, "info": info}
            continue
        piece = row_bytes.gather(rows)
        if piece[-1:] != b"\n":  # the table's last row had no newline; its group's next piece follows it
            piece = bytes(piece)
            piece += b"\r\n" if b"\r\n" in piece else b"\n"
        url = _write_piece(spill, block, g, piece, options, "jsonl" if block.format == "jsonl" else "csv")
        result.groups[gid] = {"rows": len(rows), "bytes": len(piece), "piece": url, "info": info}
    return result


class RowBytes:
    """The rows of a block as one pyarrow binary array over its bytes (no copy):
    gathering a group's rows is then one ``take`` in C++, whatever the rows'
    order. ``starts``/``ends`` are the rows' byte ranges, not overlapping, in
    ascending order; whatever lies between two rows (a blank line) is never taken.

    >>> import numpy as np
    >>> rows = RowBytes(b"a,1\\nb,2\\n\\nc,3\\n", np.array([0, 4, 9]), np.array([4, 8, 13]))
    >>> bytes(rows.gather(np.array([2, 0])))
    b'c,3\\na,1\\n'
    """

    def __init__(self, data, starts, ends):
        import numpy as np
        import pyarrow as pa

        bounds = np.empty(2 * len(starts), dtype=np.int64)
        bounds[0::2], bounds[1::2] = starts, ends
        # Segments run bound to bound: row i is segment 2i, the gap after it 2i+1 (often empty).
        self._array = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), max(len(bounds) - 1, 0),
            [None, pa.py_buffer(bounds if len(bounds) else np.zeros(1, dtype=np.int64)), pa.py_buffer(data)])

    def gather(self, rows) -> memoryview:
        """The bytes of ``rows`` (indices into the rows given), one after the other."""
        import numpy as np
        import pyarrow as pa

        if not len(rows):
            return memoryview(b"")
        taken = self._array.take(pa.array(np.asarray(rows, dtype=np.int64) * 2))
        offsets = np.frombuffer(taken.buffers()[1], dtype=np.int64)[taken.offset:taken.offset + len(taken) + 1]
        return memoryview(taken.buffers()[2])[int(offsets[0]):int(offsets[-1])]


def _csv_values(header: bytes, data: bytes, block: Block, columns: list[str], expected: int, places) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad_rows: list = []

    def on_invalid(row):
        bad_rows.append(row)
        return "error"

    delimiter = "\t" if block.format == "tsv" else ","
    names = next(csv.reader(io.StringIO(header.decode("utf-8", "replace"), newline=""), delimiter=delimiter), [])
    missing = [c for c in columns if c not in names]
    if missing:
        raise PartitionError(f"{block.name}: no column {', '.join(missing)} in its header ({', '.join(names)})")
    try:
        table = pacsv.read_csv(  # the block alone, named by the header (no copy of the block)
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names,
                                           block_size=max(len(data), 1 << 20)),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                              invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(include_columns=columns,
                                                 column_types={c: pa.string() for c in columns},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        if bad_rows:
            row = bad_rows[0]
            at = data.find(row.text.encode())
            raise BadRecordError(f"a row of {row.actual_columns} fields where the header has {row.expected_columns}",
                                 file=block.name, offset=block.start + at if at >= 0 else None) from None
        raise PartitionError(f"{block.name}: cannot read the rows at bytes {block.start}-{block.end}: {exc}") from None
    if table.num_rows != expected:
        raise PartitionError(f"{block.name}: bytes {block.start}-{block.end} hold {expected} rows but the CSV reader "
                             f"found {table.num_rows}")
    return {c: table.column(c).combine_chunks() for c in columns}


def _jsonl_values(data: bytes, starts, ends, columns: list[str], report):
    """The key columns of JSON Lines rows: JSON values, None where missing."""
    import json

    import numpy as np
    import pyarrow as pa

    out = {c: [] for c in columns}
    ok = np.ones(len(starts), dtype=bool)
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        try:
            obj = json.loads(data[s:e])
            if not isinstance(obj, dict):
                raise ValueError(f"a JSON {type(obj).__name__}, not an object")
        except ValueError as exc:
            report(i, f"invalid JSON Lines row: {exc}")
            ok[i] = False
            obj = {}
        for c in columns:
            out[c].append(obj.get(c))
    return {c: pa.array([json_text(v) for v in vs], type=pa.string()) for c, vs in out.items()}, ok


def json_text(value) -> str:
    """The text form of a JSON value used as a key: a string as it is, null as an
    empty string, ``true``/``false``, numbers as Python writes them, arrays and
    objects as compact JSON with sorted keys.

    >>> [json_text(v) for v in ("x", None, True, 3, 2.5, [1, "a"])]
    ['x', '', 'true', '3', '2.5', '[1,"a"]']
    """
    import json

    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _scatter_parquet(partitioner, params, block, spill, options, bad) -> Scattered:
    import numpy as np
    import pyarrow.parquet as pq

    fs, path = _open(block.url, options)
    with fs.open(path, "rb") as src:
        pf = pq.ParquetFile(src)
        table = pf.read_row_groups(list(block.row_groups))
        first_row = sum(pf.metadata.row_group(g).num_rows for g in range(block.row_groups[0]))
    columns = partitioner.columns(params)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise PartitionError(f"{block.name}: no column {', '.join(missing)} in it")

    def report(row: int, reason: str, record=None):
        bad.add(f"row {first_row + row}: {reason}", file=block.name,
                record=record if record is not None else None)

    codes, groups = partitioner.assign({c: table.column(c).combine_chunks() for c in columns}, params, report)
    codes = np.asarray(codes, dtype=np.int64)
    result = Scattered(block=block.number, rows_in=table.num_rows)
    for g, rows in _rows_by_group(codes, len(groups)):
        gid, info = groups[g]
        part = table.take(rows)
        url = None
        if spill is not None:
            import io

            buffer = io.BytesIO()
            pq.write_table(part, buffer)
            url = _write_piece(spill, block, g, buffer.getvalue(), options, "parquet")
        result.groups[gid] = {"rows": len(rows), "bytes": part.nbytes, "piece": url, "info": info}
    return result


def _rows_by_group(codes, n_groups: int):
    """``(group, row indices)`` of every group that has rows, rows in their order."""
    import numpy as np

    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.searchsorted(sorted_codes, np.arange(n_groups + 1))
    for g in range(n_groups):
        rows = order[bounds[g]:bounds[g + 1]]
        if len(rows):
            yield g, rows


def _write_piece(spill: str | None, block: Block, group: int, data: bytes, options: dict, ext: str) -> str | None:
    """Write one group's rows of one block; the name is made of numbers, never of data."""
    if spill is None:
        return None
    fs, root = _open(spill, options)
    folder = f"{root.rstrip('/')}/{block.number:06d}"
    fs.makedirs(folder, exist_ok=True)
    path = f"{folder}/{group:06d}.{ext}"
    with fs.open(path, "wb") as out:
        out.write(data)
    return fs.unstrip_protocol(path)
