"""``sorted-concat``: a k-way streaming merge of sorted chunk results into one table."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
import tempfile
from bisect import bisect_left, bisect_right
from itertools import islice
from operator import ge as _ge, itemgetter, le as _le
from typing import Callable, Iterator

from ..exceptions import ResultFormatError
from ..schema import SAFE_NAME
from ..transfer import current_checksum, new_checksum
from .base import Assembler, output_path
from .tables import EXTENSIONS

#: result file extensions and the format they hold
FORMATS = EXTENSIONS

#: bytes of rows ``sort_chunks`` sorts in memory at once; a larger result is
#: sorted in runs of this size, spilled to a temporary folder, then merged
SORT_BUFFER = 64 * 2**20

#: the most files merged at once: more inputs are merged in groups first
#: (spilled), so the open files stay well below the usual limit of 1024
MERGE_FAN_IN = 128

#: bytes read from a CSV, TSV or JSON Lines result at a time (per input):
#: small, so that the blocks of 64 results stay in the CPU's cache (merging
#: 64 results, 32 KiB blocks were 1.35x faster than 256 KiB ones)
BLOCK = 32 * 2**10

#: rows read from a Parquet file at a time (per input)
PARQUET_BATCH = 4096

_READ_BUFFER = 0  # unbuffered: blocks of BLOCK bytes are read at once
_NEG_INF = float("-inf")


class SortedConcat(Assembler):
    """Merge result tables that are each sorted by the ``by`` columns into one
    sorted file ``output_name`` (default: ``output`` with the results'
    extension), streaming: a block of rows per result (:data:`BLOCK` bytes)
    is in memory at a time.

    Formats: CSV (``.csv``), TSV (``.tsv``), JSON Lines (``.jsonl``,
    ``.ndjson``) and Parquet (``.parquet``), from the results' extension unless
    ``format`` says. Every result file of every chunk is merged (those matching
    ``pattern`` if given); an empty file is a result without rows. CSV and TSV
    results start with a header, which must be the same in all of them: the
    output has it once. Rows are copied byte for byte; CSV quoting follows
    RFC 4180 (a quoted field may hold delimiters, doubled quotes and newlines).

    Comparison: a ``by`` column is compared as numbers when ``types`` says
    ``number``, or, when ``types`` does not name it, when the column's value in
    the first row of every result parses as a number (JSON: is a number);
    otherwise as text, by code point (the order of ``LC_ALL=C sort``). An empty
    value (an empty field, JSON ``null``, a Parquet null) sorts before every
    other. A text value in a number column is an error that names the chunk,
    the file and the row. Parquet columns compare by their own type.
    ``descending`` reverses the order of every ``by`` column. Equal keys keep
    chunk order (and file order within a chunk, row order within a file).

    Each result must already be sorted: a row out of order is an error that
    names the chunk, the file and the row, found while merging. With
    ``sort_chunks`` every result is sorted first, in runs of at most
    ``sort_buffer`` bytes that are spilled to a temporary folder, so a result
    larger than memory can be sorted. Memory holds a block of each file being
    merged, at most :data:`MERGE_FAN_IN` of them (more are merged in groups,
    spilled, first), and with ``sort_chunks`` one run being sorted.

    >>> import os, tempfile
    >>> from bytenite_nb.assemblers import ChunkResult, ResultFile
    >>> folder = tempfile.mkdtemp()
    >>> def result(index, text):
    ...     path = os.path.join(folder, f"{index}.csv")
    ...     _ = open(path, "w").write(text)
    ...     return ChunkResult(index, (ResultFile("part.csv", len(text), "file://" + path, path),))
    >>> results = [result(0, "name,n\\nb,2\\nd,10\\n"), result(1, "name,n\\na,3\\nc,9\\n")]
    >>> _ = SortedConcat().assemble(results, folder, {"by": "n"})
    >>> print(open(os.path.join(folder, "output.csv")).read(), end="")
    name,n
    b,2
    a,3
    c,9
    d,10
    """

    schema = {
        "type": "object",
        "properties": {
            "by": {
                "anyOf": [{"type": "string", "minLength": 1},
                          {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}],
                "description": "The column (or columns, most significant first) every result is sorted by.",
            },
            "descending": {"type": "boolean", "default": False,
                           "description": "Largest first (for every `by` column)."},
            "sort_chunks": {"type": "boolean", "default": False,
                            "description": "Sort each result first (with bounded memory) instead of "
                                           "requiring it to be sorted."},
            "output_name": {**SAFE_NAME, "description": "Name of the output file."},
            "format": {"enum": ["csv", "tsv", "jsonl", "parquet"],
                       "description": "Format of the results (default: from their extension)."},
            "pattern": {"type": "string", "description": "Only result files matching this glob."},
            "types": {
                "type": "object", "additionalProperties": {"enum": ["number", "string"]},
                "description": "How a `by` column compares: `number` or `string` (default: numbers when "
                               "the first row of every result holds a number there).",
            },
            "sort_buffer": {"type": "integer", "minimum": 1, "default": SORT_BUFFER,
                            "description": "With `sort_chunks`: bytes of rows sorted in memory at once; "
                                           "larger results are sorted in runs spilled to disk."},
        },
        "required": ["by"],
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        by = [params["by"]] if isinstance(params["by"], str) else list(params["by"])
        pattern = params.get("pattern")
        inputs = [_Input.of(chunk.index, f) for chunk in results for f in sorted(chunk.files, key=lambda f: f.name)
                  if not pattern or fnmatch.fnmatch(f.name, pattern)]
        fmt = params.get("format") or _format_of(inputs)
        name = params.get("output_name") or "output" + (os.path.splitext(inputs[0].name)[1] if inputs else "")
        path = output_path(output_dir, name)
        inputs = [i for i in inputs if i.size]  # an empty file: a result without rows (nor header)
        # Spilled runs and group merges go next to the output folder (the engine's
        # staging, on a disk with room for the output), never into it.
        spill_parent = os.path.dirname(os.path.abspath(output_dir))
        with tempfile.TemporaryDirectory(prefix="sorted-concat-spill-", dir=spill_parent) as spill:
            merge = _ParquetMerge(by, params, spill) if fmt == "parquet" else _TextMerge(fmt, by, params, spill)
            checksum = merge.run(inputs, path)
        return {name: checksum} if checksum else None


def _format_of(inputs: list[_Input]) -> str:
    fmt = None
    for i in inputs:
        this = FORMATS.get(os.path.splitext(i.name)[1].lower())
        if this is None:
            raise ResultFormatError(f"{i.label}: no table format for this extension (expected one of "
                                    f"{', '.join(sorted(FORMATS))}); set `format` or `pattern`")
        if fmt is not None and this != fmt:
            raise ResultFormatError(f"{i.label}: a {this} result among {fmt} results; set `pattern`")
        fmt = this
    return fmt or "csv"


class _Input:
    """One file to merge: a chunk's result, or a run or group merge spilled to disk."""

    __slots__ = ("chunk", "name", "size", "open", "spilled")

    def __init__(self, chunk: int, name: str, size: int, opener: Callable, spilled: bool = False):
        self.chunk, self.name, self.size, self.open, self.spilled = chunk, name, size, opener, spilled

    @classmethod
    def of(cls, chunk: int, f) -> "_Input":
        if f.local_path:
            return cls(chunk, f.name, f.size, lambda: open(f.local_path, "rb", buffering=_READ_BUFFER))
        return cls(chunk, f.name, f.size, f.open)

    @classmethod
    def spill_file(cls, path: str, like: "_Input") -> "_Input":
        return cls(like.chunk, like.name, os.path.getsize(path),
                   lambda: open(path, "rb", buffering=_READ_BUFFER), spilled=True)

    @property
    def label(self) -> str:
        return f"chunk {self.chunk}, file {self.name!r}"


class _Spill:
    """Numbered files in the spill folder."""

    def __init__(self, folder: str):
        self.folder = folder
        self.count = 0

    def path(self, suffix: str) -> str:
        self.count += 1
        return os.path.join(self.folder, f"{self.count:06d}{suffix}")


class _Merge:
    """What the text and Parquet merges share: sorting runs, merging in groups."""

    suffix = ""

    def __init__(self, by: list[str], params: dict, spill: str):
        self.by = by
        self.descending = bool(params.get("descending", False))
        self.sort_chunks = bool(params.get("sort_chunks", False))
        self.sort_buffer = int(params.get("sort_buffer", SORT_BUFFER))
        self.types = dict(params.get("types") or {})
        self.spill = _Spill(spill)

    def sources(self, inputs: list[_Input]) -> list[_Input]:
        """The inputs ready to merge: sorted runs (with ``sort_chunks``), at most
        :data:`MERGE_FAN_IN` of them (merging consecutive groups first keeps equal
        keys in input order)."""
        if self.sort_chunks:
            inputs = [run for i in inputs for run in self.sorted_runs(i)]
        while len(inputs) > MERGE_FAN_IN:
            grouped = []
            for start in range(0, len(inputs), MERGE_FAN_IN):
                group = inputs[start:start + MERGE_FAN_IN]
                if len(group) == 1:
                    grouped.append(group[0])
                    continue
                path = self.spill.path(self.suffix)
                self.write(group, path, header=None)
                grouped.append(_Input.spill_file(path, group[0]))
            inputs = grouped
        return inputs

    def sorted_runs(self, source: _Input) -> list[_Input]:
        """``source`` sorted: in runs of about ``sort_buffer`` bytes, each sorted in
        memory and spilled to a file (merged later with all the others)."""
        runs: list[_Input] = []
        pieces: list = []
        size = 0
        for piece, piece_size in self.pieces(source):
            pieces.append(piece)
            size += piece_size
            if size >= self.sort_buffer:
                runs.append(self.spill_run(pieces, source))
                pieces, size = [], 0
        if pieces:
            runs.append(self.spill_run(pieces, source))
        return runs

    def batches(self, source: _Input) -> Iterator[tuple[list, list]]:
        """``(keys, rows)`` of ``source``, a block at a time, in file order."""
        raise NotImplementedError

    def checked_batches(self, source: _Input) -> Iterator[tuple[list, list]]:
        """:meth:`batches`, checking that a result's keys are in order (spilled
        files are)."""
        check, descending = not source.spilled, self.descending
        rows = 0
        last = None
        for keys, items in self.batches(source):
            if not keys:
                continue
            # one pass in C: is every key at or after the one before?
            if check and (not all(map(_ge if descending else _le, keys, islice(keys, 1, None))) or
                          (last is not None and (keys[0] > last if descending else keys[0] < last))):
                previous = last
                for n, key in enumerate(keys):
                    if previous is not None and (key > previous if descending else key < previous):
                        raise self.out_of_order(source, rows + n + 1, key, previous)
                    previous = key
            last = keys[-1]
            rows += len(keys)
            yield keys, items

    def merged(self, sources: list[_Input]) -> Iterator[list]:
        """The rows of every source in order, a list at a time.

        Each input holds one block of rows. Every round finds the bound: the
        smallest of the last keys of the blocks of inputs that may hold more
        rows. Rows before the bound are taken from every block; rows equal to it
        from the inputs in order, up to the first input that may hold more of
        them (so equal keys keep input order). The rows taken are put in order by
        one stable sort of their already sorted runs, in C.
        """
        descending = self.descending
        feeds = [self.checked_batches(s) for s in sources]
        keys: list[list] = [[] for _ in feeds]
        items: list[list] = [[] for _ in feeds]
        pos = [0] * len(feeds)
        more = [True] * len(feeds)
        after, before = (_after_descending, _before_descending) if descending else (bisect_right, bisect_left)
        while True:
            for i, feed in enumerate(feeds):
                if more[i] and pos[i] == len(keys[i]):
                    keys[i], items[i] = next(feed, ([], []))
                    pos[i] = 0
                    more[i] = bool(keys[i])
            active = [i for i in range(len(feeds)) if pos[i] < len(keys[i])]
            if not active:
                return
            lasts = [keys[i][-1] for i in active if more[i]]
            bound = (max(lasts) if descending else min(lasts)) if lasts else None
            taken_keys: list = []
            taken: list = []
            runs = 0
            closed = True
            for i in active:
                k, p = keys[i], pos[i]
                if bound is None:
                    cut = len(k)
                elif closed:
                    cut = after(k, bound, p)
                    closed = not (more[i] and cut == len(k))
                else:
                    cut = before(k, bound, p)
                if cut > p:
                    taken_keys += k[p:cut]
                    taken += items[i][p:cut]
                    pos[i] = cut
                    runs += 1
            if runs > 1:
                order = sorted(range(len(taken)), key=taken_keys.__getitem__, reverse=descending)
                taken = list(map(taken.__getitem__, order))
            yield taken

    def pieces(self, source: _Input) -> Iterator[tuple]:
        for keys, items in self.batches(source):
            yield (keys, items), sum(map(len, items))

    def display(self, key):
        return key

    def out_of_order(self, source: _Input, row: int, key, previous) -> ResultFormatError:
        order = "descending" if self.descending else "ascending"
        return ResultFormatError(
            f"{source.label}: row {row} is out of order: its key {_show(self.display(key))} comes after "
            f"{_show(self.display(previous))} (not sorted {order} by {', '.join(self.by)}); sort the results "
            f"or set `sort_chunks`")


def _after_descending(keys: list, bound, lo: int) -> int:
    """The first index from ``lo`` of a descending list whose key is below ``bound``."""
    hi = len(keys)
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[mid] < bound:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _before_descending(keys: list, bound, lo: int) -> int:
    """The first index from ``lo`` of a descending list whose key is not above ``bound``."""
    hi = len(keys)
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[mid] > bound:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _show(key) -> str:
    if isinstance(key, tuple) and len(key) == 1:
        key = key[0]
    if isinstance(key, bytes):
        return repr(key.decode("utf-8", "replace"))
    return repr(key)


# -- CSV, TSV, JSON Lines ---------------------------------------------------------------------


class _Unterminated(Exception):
    """A quoted field that the file ends inside."""


class _NotANumber(ValueError):
    pass


def _number(value):
    """A CSV field (bytes) or JSON value as a number; empty sorts first.

    >>> _number(b"12"), _number(b"-1.5e3"), _number(b""), _number(7)
    (12, -1500.0, -inf, 7)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value:
            raise _NotANumber(value)
        return value
    if value is None:
        return _NEG_INF
    if not isinstance(value, (bytes, str)):
        raise _NotANumber(value)
    try:
        return int(value)  # exact for integers of any size
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        if not value.strip():
            return _NEG_INF
        raise _NotANumber(value) from None
    if number != number:  # nan has no place in an order
        raise _NotANumber(value)
    return number


def _json_text(value):
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    raise _NotANumber(value)


def _parses_as_number(value) -> bool | None:
    """True or False; None for an empty value (no evidence either way)."""
    if value is None or (isinstance(value, (bytes, str)) and not value.strip()):
        return None
    if isinstance(value, str) and not isinstance(value, bool):
        return False  # a JSON string: text, whatever it holds
    try:
        _number(value)
    except _NotANumber:
        return False
    return True


class _TextMerge(_Merge):
    """CSV, TSV (records of delimited fields, a header first) and JSON Lines."""

    def __init__(self, fmt: str, by: list[str], params: dict, spill: str):
        super().__init__(by, params, spill)
        self.fmt = fmt
        self.has_header = fmt != "jsonl"
        self.delimiter = b"\t" if fmt == "tsv" else b","
        self.suffix = "." + fmt
        self.key_of: Callable = None  # set by run(): needs the header and the first rows

    # reading

    def records(self, stream) -> Iterator:
        """``(raw bytes, fields)`` for every record of ``stream``: fields a list of
        bytes (CSV, TSV) or a JSON value."""
        if self.fmt == "jsonl":
            return ((line, json.loads(line)) for line in stream if line.strip())
        return _delimited_records(stream, self.delimiter)

    def head(self, source: _Input):
        """The header (raw, fields) and the first record's fields of a result (None when absent)."""
        with source.open() as stream:
            # lines from an unbuffered file would be read a byte at a time
            records = self.records(io.BufferedReader(stream) if isinstance(stream, io.RawIOBase) else stream)
            try:
                header = next(records, (None, None)) if self.has_header else (None, None)
                first = next(records, (None, None))[1]
            except _Unterminated:
                raise ResultFormatError(f"{source.label}: the file ends inside a quoted field") from None
            except (ValueError, UnicodeDecodeError, csv.Error) as exc:
                raise ResultFormatError(f"{source.label}: cannot read the first rows: {exc}") from None
        return header, first

    def batches(self, source: _Input) -> Iterator[tuple[list, list]]:
        """Blocks of whole records (without their line break) and their keys."""
        skip_header = self.has_header and not source.spilled
        row = 0
        carry = b""
        with source.open() as stream:
            while True:
                data = stream.read(BLOCK)
                final = not data
                if final:
                    if not carry:
                        return
                    data = b"\n"  # ends the last line (of a file without a final line break)
                records, quoted, carry = self.split_records(carry, data)
                if skip_header and records:
                    del records[0]
                    skip_header = False
                if final and carry:
                    raise ResultFormatError(f"{source.label}: row {row + len(records) + 1}: "
                                            f"the file ends inside a quoted field")
                if records:
                    yield self.keys_of(records, quoted, source, row), records
                    row += len(records)
                if final:
                    return

    def split_records(self, carry: bytes, data: bytes) -> tuple[list[bytes], bool, bytes]:
        """The whole records of ``carry + data`` (without line breaks), whether any
        holds a quote, and the rest (an unfinished line or quoted record). The
        block is split as it was read: no copy of it is made."""
        lines = data.split(b"\n")
        rest = lines.pop()
        if not lines:
            return [], False, carry + rest
        if carry:
            lines[0] = carry + lines[0]
        if self.fmt == "jsonl":
            return [line for line in lines if line.strip()], False, rest  # a blank line holds no record
        if b'"' not in data and b'"' not in carry:
            return lines, False, rest
        # A record with quotes ends on the line where they balance (RFC 4180 doubles a quote in a field).
        records = []
        pending: list[bytes] | None = None
        quotes = 0
        for line in lines:
            count = line.count(b'"')
            if pending is None:
                if not count % 2:
                    records.append(line)
                    continue
                pending, quotes = [line], count
            else:
                pending.append(line)
                quotes += count
                if not quotes % 2:
                    records.append(b"\n".join(pending))
                    pending = None
        if pending is not None:
            rest = b"\n".join(pending) + b"\n" + rest
        return records, True, rest

    def fields(self, record: bytes):
        """A record's fields (bytes), or its JSON value."""
        if self.fmt == "jsonl":
            return json.loads(record)
        if b'"' in record:
            return _parse(record, self.delimiter.decode())
        return record.rstrip(b"\r").split(self.delimiter)

    def keys_of(self, records: list[bytes], quoted: bool, source: _Input, before: int) -> list:
        """The keys of ``records``: a column at a time, in list comprehensions."""
        try:
            if self.fmt == "jsonl":
                return list(map(self.key_of, map(json.loads, records)))
            if quoted:
                rows = [self.fields(r) for r in records]
                columns = [[row[i] for row in rows] for i in self.columns]
            else:
                d = self.delimiter
                columns = [[r.partition(d)[0] for r in records] if i == 0 else [r.split(d, i + 1)[i] for r in records]
                           for i in self.columns]
                columns = [[v.rstrip(b"\r") for v in c] if i == self.last_column else c
                           for i, c in zip(self.columns, columns)]
            columns = [_numbers(c) if n else c for c, n in zip(columns, self.numeric)]
            return columns[0] if len(columns) == 1 else list(zip(*columns))
        except (IndexError, KeyError, TypeError, ValueError, UnicodeDecodeError, csv.Error):
            pass
        for n, record in enumerate(records):  # find the row at fault, and say what is wrong with it
            try:
                fields = self.fields(record)
            except (ValueError, UnicodeDecodeError, csv.Error) as exc:
                raise ResultFormatError(f"{source.label}: row {before + n + 1}: cannot read it: {exc}") from None
            try:
                self.key_of(fields)
            except (IndexError, KeyError, TypeError, _NotANumber) as exc:
                raise self.bad_value(source, before + n + 1, fields, exc) from None
        raise AssertionError("a block failed but none of its rows")

    def bad_value(self, source: _Input, row: int, fields, exc: Exception) -> ResultFormatError:
        if self.fmt == "jsonl":
            if not isinstance(fields, dict):
                return ResultFormatError(f"{source.label}: row {row} is not a JSON object")
            missing = [c for c in self.by if c not in fields]
            if missing:
                return ResultFormatError(f"{source.label}: row {row} has no {', '.join(map(repr, missing))}")
            values = {c: fields[c] for c in self.by}
        else:
            if len(fields) <= max(self.columns):
                return ResultFormatError(f"{source.label}: row {row} has {len(fields)} fields, "
                                         f"fewer than the header says")
            values = {c: fields[i].decode("utf-8", "replace") for c, i in zip(self.by, self.columns)}
        kinds = ", ".join(f"{c} as {'numbers' if n else 'text'}" for c, n in zip(self.by, self.numeric))
        return ResultFormatError(
            f"{source.label}: row {row}: {values!r} cannot be compared ({kinds}; a number column must hold "
            f"numbers, a text column text); set `types` to say how each `by` column compares")

    # planning

    def plan(self, inputs: list[_Input]) -> bytes | None:
        """Check the headers, choose how each ``by`` column compares, and return the
        output's header (None for JSON Lines and when every result is empty)."""
        heads = [(i, *self.head(i)) for i in inputs]
        header_raw = header_fields = None
        if self.has_header:
            for source, (raw, fields), _ in heads:
                if raw is None:
                    continue
                if header_fields is None:
                    header_raw, header_fields, first = raw, fields, source
                    missing = [c for c in self.by if c.encode() not in fields]
                    if missing:
                        raise ResultFormatError(
                            f"{source.label}: no column {', '.join(map(repr, missing))} in its header "
                            f"({', '.join(f.decode('utf-8', 'replace') for f in fields)})")
                elif fields != header_fields:
                    raise ResultFormatError(
                        f"{source.label}: its header {_names(fields)} differs from the header of "
                        f"{first.label}, {_names(header_fields)}")
            if header_raw is None:
                return None
            if header_raw[-1:] != b"\n":
                header_raw += b"\n"
        self.columns = [header_fields.index(c.encode()) for c in self.by] if header_fields else []
        self.last_column = len(header_fields) - 1 if header_fields else -1
        self.numeric = []
        for n, column in enumerate(self.by):
            kind = self.types.get(column)
            if kind is None:
                evidence = []
                for _, _, first_fields in heads:
                    if first_fields is None:
                        continue
                    try:
                        value = first_fields[self.columns[n]] if self.has_header else first_fields.get(column)
                    except (IndexError, AttributeError):
                        continue  # found (and named) when the row is read
                    evidence.append(_parses_as_number(value))
                kind = "number" if True in evidence and False not in evidence else "string"
            self.numeric.append(kind == "number")
        self.key_of = self.key_function()
        return header_raw

    def key_function(self) -> Callable:
        """``fields -> key``: C-speed item getters wherever a column is text."""
        if self.fmt == "jsonl":
            getters = [(c, _number if n else _json_text) for c, n in zip(self.by, self.numeric)]
            if len(getters) == 1:
                (column, convert), = getters
                return lambda record: convert(record[column])
            return lambda record: tuple([convert(record[c]) for c, convert in getters])
        if not any(self.numeric):
            return itemgetter(*self.columns)  # bytes for one column, a tuple of bytes for more
        if len(self.columns) == 1:
            (column,) = self.columns
            return lambda fields: _number(fields[column])
        pairs = [(i, _number if n else None) for i, n in zip(self.columns, self.numeric)]
        return lambda fields: tuple([convert(fields[i]) if convert else fields[i] for i, convert in pairs])

    # writing

    def run(self, inputs: list[_Input], path: str) -> str | None:
        """Write the merged rows of ``inputs`` into ``path``; return its checksum."""
        header = self.plan(inputs)
        if self.has_header and header is None:  # no result has rows, nor a header
            open(path, "wb").close()
            return None
        sources = self.sources(inputs)
        digest = new_checksum(current_checksum())
        with open(path, "wb") as out:
            self.write_rows(sources, out, header, digest)
        return digest.hexdigest()

    def write(self, sources: list[_Input], path: str, header) -> None:
        with open(path, "wb") as out:
            self.write_rows(sources, out, header, None)

    def write_rows(self, sources: list[_Input], out, header: bytes | None, digest) -> None:
        if header:
            out.write(header)
            if digest is not None:
                digest.update(header)
        for rows in self.merged(sources):
            data = b"\n".join(rows)
            out.write(data)
            out.write(b"\n")
            if digest is not None:
                digest.update(data)
                digest.update(b"\n")

    def spill_run(self, pieces: list[tuple], source: _Input) -> _Input:
        keys = [k for piece_keys, _ in pieces for k in piece_keys]
        rows = [r for _, piece_rows in pieces for r in piece_rows]
        order = sorted(range(len(keys)), key=keys.__getitem__, reverse=self.descending)  # stable
        path = self.spill.path(self.suffix)
        with open(path, "wb") as out:
            for start in range(0, len(order), 8192):
                out.write(b"\n".join(map(rows.__getitem__, order[start:start + 8192])) + b"\n")
        return _Input.spill_file(path, source)


def _numbers(values: list) -> list:
    try:
        return list(map(int, values))  # the common case, in C
    except (ValueError, TypeError):
        return list(map(_number, values))


def _names(fields: list[bytes]) -> str:
    return "(" + ", ".join(f.decode("utf-8", "replace") for f in fields) + ")"


def _delimited_records(stream, delimiter: bytes) -> Iterator[tuple[bytes, list[bytes]]]:
    """``(raw, fields)`` of every record: a line without a quote is split as it is
    (the common case, fast); a record with quotes ends on the line where the
    quotes balance (RFC 4180: a quote inside a quoted field is doubled) and is
    parsed by :mod:`csv`.

    >>> import io
    >>> list(_delimited_records(io.BytesIO(b'a,b\\n"x,\\n""y"" z",w\\n'), b","))
    [(b'a,b\\n', [b'a', b'b']), (b'"x,\\n""y"" z",w\\n', [b'x,\\n"y" z', b'w'])]
    """
    text_delimiter = delimiter.decode()
    pending: list[bytes] | None = None
    quotes = 0
    for line in stream:
        if pending is None:
            if b'"' not in line:
                yield line, line.rstrip(b"\r\n").split(delimiter)
                continue
            quotes = line.count(b'"')
            if not quotes % 2:
                yield line, _parse(line, text_delimiter)
                continue
            pending = [line]
        else:
            pending.append(line)
            quotes += line.count(b'"')
            if not quotes % 2:
                raw = b"".join(pending)
                pending = None
                yield raw, _parse(raw, text_delimiter)
    if pending is not None:
        raise _Unterminated()


def _parse(raw: bytes, delimiter: str) -> list[bytes]:
    # Lines as a file opened with newline="" gives them: csv needs a line break
    # inside a quoted field to end its line.
    (fields,) = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter=delimiter, strict=True)
    return [f.encode("utf-8") for f in fields]


# -- Parquet ------------------------------------------------------------------------------------


class _ParquetMerge(_Merge):
    """Parquet results: record batches of a few thousand rows per input at a time."""

    suffix = ".parquet"

    def plan(self, inputs: list[_Input]):
        import pyarrow.parquet as pq

        schema = first = None
        for source in inputs:
            with source.open() as stream:
                try:
                    this = pq.ParquetFile(stream).schema_arrow
                except Exception as exc:
                    raise ResultFormatError(f"{source.label}: not a Parquet file: {exc}") from None
            if schema is None:
                schema, first = this, source
                missing = [c for c in self.by if c not in schema.names]
                if missing:
                    raise ResultFormatError(f"{source.label}: no column {', '.join(map(repr, missing))} "
                                            f"(it has {', '.join(schema.names)})")
            elif not this.equals(schema, check_metadata=False):
                raise ResultFormatError(f"{source.label}: its schema ({_schema_text(this)}) differs from "
                                        f"the schema of {first.label} ({_schema_text(schema)})")
        self.schema = schema

    def batches(self, source: _Input) -> Iterator[tuple[list, list]]:
        import pyarrow.parquet as pq

        with source.open() as stream:
            for batch in pq.ParquetFile(stream).iter_batches(batch_size=PARQUET_BATCH):
                columns = [batch.column(c).to_pylist() for c in self.by]
                # (False, None) sorts a null before every value
                yield list(zip(*[[(v is not None, v) for v in values] for values in columns])), batch.to_pylist()

    def display(self, key):
        return tuple(v for _, v in key)

    def run(self, inputs: list[_Input], path: str) -> None:
        """Write the merged rows of ``inputs`` into ``path`` (the engine computes the checksum)."""
        self.plan(inputs)
        if self.schema is None:
            raise ResultFormatError("no Parquet result to merge: every chunk's result is missing or empty")
        self.write(self.sources(inputs), path, header=None)
        return None

    def write(self, sources: list[_Input], path: str, header) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with pq.ParquetWriter(path, self.schema) as writer:
            pending: list = []
            for rows in self.merged(sources):
                pending += rows
                if len(pending) >= PARQUET_BATCH * 4:
                    writer.write_table(pa.Table.from_pylist(pending, schema=self.schema))
                    pending = []
            if pending:
                writer.write_table(pa.Table.from_pylist(pending, schema=self.schema))

    def pieces(self, source: _Input) -> Iterator[tuple]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with source.open() as stream:
            for batch in pq.ParquetFile(stream).iter_batches(batch_size=PARQUET_BATCH):
                yield pa.Table.from_batches([batch]), batch.nbytes

    def spill_run(self, tables: list, source: _Input) -> _Input:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pa.concat_tables(tables)
        order = "descending" if self.descending else "ascending"
        # Nulls sort first ascending and last descending, as in the merge; the sort is stable.
        nulls = "at_end" if self.descending else "at_start"
        indices = pc.sort_indices(table, sort_keys=[(c, order, nulls) for c in self.by])
        path = self.spill.path(self.suffix)
        pq.write_table(table.take(indices), path)
        return _Input.spill_file(path, source)


def _schema_text(schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)
