"""``json-objects``: the objects of a JSON document (or JSON Lines) in chunks.

Planning streams each document once with :class:`~.json_scan.StructureScanner`
to find the array or object at the JSON Pointer and the byte offset of every
comma between its elements; chunks are byte ranges of whole elements, and
each notes a comma about every :data:`READ_BLOCK` bytes (``cuts``). On the
worker a chunk is read batch by batch between those commas, with no scan of
its own, every element checked (with simdjson or orjson, else :mod:`json`: see
:func:`check_json`; one by one only in a batch that fails), and written as a
JSON array (``[`` + the elements' own bytes + ``]``; for an object's
members, a JSON object) or as JSON Lines. The text of the document
around the array travels in the first and last chunk's ``CHUNK_INFO``, so the
``json-objects`` assembler can put the document back together. Memory is
bounded by the scan block and the chunk, never by the document.
"""

from __future__ import annotations

import bisect
import json
import os
import threading

from ..bad_records import ON_BAD_SCHEMA, BadRecords
from ..exceptions import BadRecordError, PartitionError
from .base import ChunkRef, Partitioner, Source
from .json_scan import (CLOSE_ARRAY, CLOSE_OBJECT, COLON, COMMA, OPEN_ARRAY, OPEN_OBJECT, WHITESPACE,
                        StructureScanner, element_splits, is_blank, parse_pointer)
from .rows import cut_points, row_end_blocks

try:
    import simdjson as _simdjson
except ImportError:  # optional speed-ups: json alone gives the same answers
    _simdjson = None
try:
    import orjson as _orjson
except ImportError:
    _orjson = None

DEFAULT_CHUNK_SIZE = 64 * 2**20
SCAN_BLOCK = 4 * 2**20  # numpy temporaries of the scan: a few times this
READ_BLOCK = 4 * 2**20  # the worker reads, checks (parses) and writes a chunk this much at a time
KEYS_IN_INFO = 20  # a chunk of at most this many members lists their keys
TEXT_IN_INFO = 1 * 2**20  # the text around the array, in CHUNK_INFO up to this size
SMALL_SKELETON = 64 * 2**20  # the text around the array, checked in memory up to this size
FORMATS = ("json", "jsonl")
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def check_json(data: bytes) -> None:
    """Raise ValueError unless ``data`` is one JSON text. Checked first by
    simdjson when installed (pysimdjson: it validates without making Python
    objects, ten times as fast), else orjson; when that refuses it, by
    :mod:`json`, which says why (and takes what the fast parsers do not:
    integers beyond 64 bits, NaN, lone surrogates, 1e400). What a fast parser
    takes, :mod:`json` takes too.

    >>> check_json(b'[1, {"a": 123456789012345678901234567890}]')
    >>> check_json(b'[1, tru]')
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: Expecting value: line 1 column 5 (char 4)
    """
    if _fast_check is not None:
        try:
            _fast_check(data)
            return
        except (ValueError, RuntimeError):  # simdjson: RuntimeError for a big integer
            pass
    json.loads(data)


def _simdjson_check(data: bytes) -> None:
    parser = getattr(_parsers, "simdjson", None)
    if parser is None:  # one a thread, reused: its buffers are made once (twice as fast as a new one each time)
        parser = _parsers.simdjson = _simdjson.Parser()
    document = parser.parse(data)  # the whole text validated; values stay unread
    del document  # the parser can be used again once its document is gone


def _orjson_check(data: bytes) -> None:
    import gc

    collecting = gc.isenabled()
    gc.disable()  # the values are dropped at once: no cycles to collect, and collecting would double the time
    try:
        _orjson.loads(data)
    finally:
        if collecting:
            gc.enable()


_parsers = threading.local()
_fast_check = _simdjson_check if _simdjson is not None else _orjson_check if _orjson is not None else None


def input_format(name: str, given: str | None = None) -> str:
    """``given``, else ``jsonl`` for ``.jsonl``/``.ndjson`` files and ``json`` otherwise.

    >>> input_format("a.ndjson"), input_format("a.json"), input_format("a.txt", "jsonl")
    ('jsonl', 'json', 'jsonl')
    """
    return given or EXTENSIONS.get(os.path.splitext(name)[1].lower(), "json")


class _Target:
    """What planning learns of the container at the pointer."""

    opened = closed = -1
    kind = ""


def _read(stream, start: int, end: int) -> bytes:
    stream.seek(start)
    return stream.read(end - start)


def _key(peek, start: int, colon: int, name: str) -> str:
    raw = peek(start, colon)
    try:
        key = json.loads(raw)
    except ValueError as exc:
        raise BadRecordError(f"invalid JSON: an object key that does not parse ({exc})", file=name,
                             offset=start) from None
    if not isinstance(key, str):
        raise BadRecordError("invalid JSON: an object key that is not a string", file=name, offset=start)
    return key


def separator_blocks(stream, pointer: str, name: str, target: _Target, peek, block: int = SCAN_BLOCK):
    """Scan the document read from ``stream`` and yield, block by block, numpy
    arrays of the offsets where the elements of the container at ``pointer``
    end (its commas, then its closing bracket); ``target`` learns where it
    opens and closes and its kind. The rest of the document is scanned too, so
    unbalanced brackets or an unclosed string anywhere fail. ``peek(start, end)``
    reads a few bytes (object keys on the way)."""
    import numpy as np

    tokens = parse_pointer(pointer)
    want = len(tokens) + 1  # the level of the target container
    scanner = StructureScanner(name=name)
    # The containers on the way, innermost last: [kind, level, index, member start, child matches].
    path: list[list] = []
    saw_root = False
    while True:
        data = stream.read(block)
        if not data:
            break
        if not saw_root and not is_blank(data):
            saw_root = True
        if target.closed >= 0:
            scanner.feed(data, max_level=0)
            continue
        positions, codes, levels = scanner.feed(data, max_level=want)
        i = 0
        n = len(positions)
        while i < n:
            if target.opened >= 0:  # inside the target: its commas, then its closing bracket
                rest_codes = codes[i:]
                closing = np.flatnonzero((rest_codes == CLOSE_ARRAY) | (rest_codes == CLOSE_OBJECT))
                stop = i + int(closing[0]) if len(closing) else n
                seps = positions[i:stop][codes[i:stop] == COMMA]
                if stop < n:
                    target.closed = int(positions[stop])
                    seps = np.append(seps, target.closed)
                if len(seps):
                    yield seps
                i = stop + 1
                if target.closed >= 0:
                    break
                continue
            pos, code, level = int(positions[i]), int(codes[i]), int(levels[i])
            i += 1
            depth = len(path)
            if level > depth + 1:
                continue
            opening = code in (OPEN_ARRAY, OPEN_OBJECT)
            if level == depth + 1:
                if not opening or not (depth == 0 or path[-1][4]):
                    continue
                kind = "array" if code == OPEN_ARRAY else "object"
                if level == want:
                    target.opened, target.kind = pos, kind
                    continue
                path.append([kind, level, 0, pos + 1, False])
                _match_child(path[-1], tokens, pointer, name)
                continue
            if level < depth:
                continue  # cannot happen: the closing bracket of an inner container comes first
            frame = path[-1]
            if frame[4]:  # the child on the path ended without opening a container
                raise PartitionError(_scalar(pointer, tokens, frame[1], name))
            if code in (CLOSE_ARRAY, CLOSE_OBJECT):
                raise PartitionError(f"{name}: the JSON Pointer {pointer!r} does not exist: "
                                     f"{_missing(frame, tokens)}")
            if code == COMMA:
                frame[2] += 1
                frame[3] = pos + 1
                _match_child(frame, tokens, pointer, name)
            elif code == COLON and frame[0] == "object" and frame[3] >= 0:
                frame[4] = _key(peek, frame[3], pos, name) == tokens[frame[1] - 1]
                frame[3] = -1
    scanner.finish()
    if scanner.depth != 0:
        raise BadRecordError("invalid JSON: the document ends before its brackets close", file=name,
                             offset=scanner.offset)
    if target.opened < 0:
        if not path and saw_root and not tokens:
            raise PartitionError(f"{name}: the JSON Pointer {pointer!r} points at a scalar value, not an array "
                                 "or an object")
        if not saw_root:
            raise BadRecordError("invalid JSON: the document is empty", file=name, offset=0)
        raise PartitionError(f"{name}: the JSON Pointer {pointer!r} does not exist")


def _marked(blocks, marks: list[int], step: int | None = None):
    """Pass on ``blocks`` (arrays of the offsets where elements end), noting in
    ``marks`` the first of them at least ``step`` (the worker's read block)
    bytes past the last one noted: the worker checks and copies the elements in
    between at once, with no scan of its own.

    >>> import numpy as np
    >>> marks = []
    >>> _ = list(_marked([np.array([3, 9, 12]), np.array([17, 30])], marks, step=8))
    >>> marks
    [9, 17, 30]
    """
    import numpy as np

    step = step or READ_BLOCK
    at = step
    for ends in blocks:
        while True:
            i = int(np.searchsorted(ends, at))
            if i >= len(ends):
                break
            marks.append(int(ends[i]))
            at = marks[-1] + step
        yield ends


def _match_child(frame: list, tokens: list[str], pointer: str, name: str) -> None:
    """Does the child that starts now (after the bracket or a comma) lie on the pointer's path?"""
    token = tokens[frame[1] - 1]
    if frame[0] == "array":
        if not (token == "0" or (token.isdigit() and token.isascii() and token[0] != "0")):
            raise PartitionError(f"{name}: the JSON Pointer {pointer!r} does not exist: {token!r} is not an "
                                 "index of an array")
        frame[4] = frame[2] == int(token)
    else:
        frame[4] = False  # known at the colon


def _scalar(pointer: str, tokens: list[str], level: int, name: str) -> str:
    if level == len(tokens):
        return f"{name}: the JSON Pointer {pointer!r} points at a scalar value, not an array or an object"
    at = "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens[:level])
    return f"{name}: the JSON Pointer {pointer!r} does not exist: {at!r} is a scalar value"


def _missing(frame: list, tokens: list[str]) -> str:
    token = tokens[frame[1] - 1]
    if frame[0] == "array":
        return f"index {token} is past the end of an array of {frame[2] + 1} elements"
    return f"no member {token!r}"


class JsonObjects(Partitioner):
    """Fan out the elements of the array (or the members of the object) at
    ``pointer`` (a JSON Pointer: ``""`` is the whole document, ``/items``,
    ``/data/0/rows``) of JSON documents, or the lines of JSON Lines files
    (``format``, default from the extension: ``.jsonl``/``.ndjson``), in
    chunks of ``per_chunk`` elements and/or about ``chunk_size`` bytes (64 MiB
    by default). Each chunk is written as ``output``: ``json`` (a JSON array of
    its elements, the elements' own bytes; for members, a JSON object) or
    ``jsonl`` (one value per line; a member as a one-member object). The
    document is streamed: one larger than memory works. Each element is
    checked: invalid JSON fails naming the file and byte offset, or with
    ``on_bad: skip`` is left out and counted. ``CHUNK_INFO`` gives the
    ``pointer``, ``elements`` (first, end), ``kind``, for a few members
    their ``keys``, and ``cuts`` (offsets of commas between elements where the
    worker splits its reading). ``json-objects`` -> ``identity`` -> the ``json-objects``
    assembler gives the document back byte for byte (``concat`` for JSON
    Lines)."""

    schema = {
        "type": "object",
        "properties": {
            "pointer": {"type": "string", "default": "",
                        "description": "JSON Pointer to the array or object to fan out ('' = the whole document)."},
            "per_chunk": {"type": "integer", "minimum": 1, "description": "At most this many elements per chunk."},
            "chunk_size": {"type": "integer", "minimum": 1,
                           "description": "About this many bytes per chunk (default 64 MiB without per_chunk)."},
            "output": {"enum": list(FORMATS), "description":
                       "Each chunk as a JSON array/object (json) or JSON Lines (jsonl); default: the input's format."},
            "format": {"enum": list(FORMATS), "description": "The input (default: from each file's extension)."},
            "on_bad": ON_BAD_SCHEMA,
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        pointer = params.get("pointer", "")
        parse_pointer(pointer)
        per_count = params.get("per_chunk")
        per_bytes = params.get("chunk_size") or (None if per_count else DEFAULT_CHUNK_SIZE)
        for n, f in enumerate(source.files):
            fmt = input_format(f.name, params.get("format"))
            common = {"format": fmt, "output": params.get("output") or fmt, "on_bad": params.get("on_bad", "fail"),
                      "document": n}
            if fmt == "jsonl":
                yield from self._plan_lines(source, f, common, per_count, per_bytes)
            else:
                yield from self._plan_document(source, f, pointer, common, per_count, per_bytes)

    def _plan_lines(self, source, f, common, per_count, per_bytes):
        with source.open(f.url, block_size=SCAN_BLOCK) as stream:
            start, first = 0, 0
            for end, count in cut_points(row_end_blocks(stream, quoted=False, name=f.name), 0, per_count, per_bytes):
                yield ChunkRef(url=f.url, start=start, end=end, size=end - start, label=f.name,
                               meta={**common, "elements": [first, first + count]})
                start, first = end, first + count

    def _plan_document(self, source, f, pointer, common, per_count, per_bytes):
        target = _Target()
        refs: list[ChunkRef] = []
        with source.open(f.url, block_size=SCAN_BLOCK) as stream, source.open(f.url) as keys:
            def peek(a, b):
                return _read(keys, a, b)

            marks: list[int] = []
            blocks = _marked(separator_blocks(stream, pointer, f.name, target, peek, block=SCAN_BLOCK), marks)
            # Offsets from the first element on, so that chunk_size counts the first chunk's bytes right.
            relative = (ends - (target.opened + 1) for ends in blocks)
            start, first = None, 0
            for end, count in cut_points(relative, 0, per_count, per_bytes):
                end += target.opened + 1
                if start is None:
                    start = target.opened + 1
                refs.append(self._element_ref(f, common, pointer, target, start, end, first, count, peek))
                start, first = end + 1, first + count
            for ref in refs:  # where the worker may check and copy the chunk a batch at a time
                ref.meta["cuts"] = marks[bisect.bisect_left(marks, ref.start):bisect.bisect_left(marks, ref.end)]
            if len(refs) == 1 and is_blank(peek(refs[0].start, refs[0].end)):  # an empty array or object
                refs[0].meta["elements"] = [0, 0]
                refs[0].meta.pop("keys", None)
                refs[0].meta.pop("first_key", None)
            spans = {"prefix": (0, target.opened + 1), "suffix": (target.closed, f.size)}
            _check_skeleton(keys, spans, target, f.name)
            self._stash_text(source, keys, refs, spans)
        yield from refs

    def _element_ref(self, f, common, pointer, target, start, end, first, count, peek) -> ChunkRef:
        meta = {**common, "pointer": pointer, "kind": target.kind, "elements": [first, first + count]}
        if target.kind == "object" and count <= KEYS_IN_INFO and end - start <= TEXT_IN_INFO:
            members = _split(peek(start, end), start, f.name)
            meta["keys"] = [_member_key(m, a, f.name) for m, a in members if not is_blank(m)]
        elif target.kind == "object":
            meta["first_key"] = _member_key(peek(start, min(end, start + 65536)), start, f.name)
        return ChunkRef(url=f.url, start=start, end=end, size=end - start + 2, label=f.name, meta=meta)

    @staticmethod
    def _stash_text(source, stream, refs, spans: dict) -> None:
        """The text before and after the container, for the assembler: in the first
        and last chunk's ``CHUNK_INFO``, or copied into the job's workspace when large."""
        for ref, key in ((refs[0], "prefix"), (refs[-1], "suffix")):
            start, end = spans[key]
            if end - start <= TEXT_IN_INFO:
                ref.meta[key] = _read(stream, start, end).decode("utf-8")
            elif source.workspace is not None:
                import fsspec

                url = f"{source.workspace}/json-objects/{ref.meta['document']}-{key}.json"
                with fsspec.open(url, "wb", **source.location.storage_options) as out:
                    for data in _ranges(stream, [(start, end)]):
                        out.write(data)
                ref.meta[key + "_url"] = url

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """The chunk's elements, each checked, as a JSON array (or object) or as JSON Lines."""
        from fsspec.core import url_to_fs

        if os.path.lexists(dest):
            os.unlink(dest)
        meta = ref.meta
        bad = BadRecords(meta.get("on_bad", "fail"))
        fs, path = url_to_fs(ref.url, **(storage_options or {}))
        with fs.open(path, "rb") as src, open(dest, "wb") as out:
            src.seek(ref.start)
            writer = _ChunkWriter(meta, bad, ref, out)
            writer.begin()
            if meta.get("format") == "jsonl":
                _lines(src, ref, writer)
            elif "cuts" in meta and meta.get("elements") != [0, 0]:
                _batches(src, ref, writer, meta["cuts"])
            else:
                _elements(src, ref, writer)
            writer.end()
        return os.path.getsize(dest)


def _split(data: bytes, offset: int, name: str) -> list[tuple[bytes, int]]:
    """The elements of ``data`` (the inside of a container at ``offset``), each with its offset."""
    cuts = element_splits(data, offset=offset, name=name)
    out, start = [], 0
    for cut in [*cuts, len(data)]:
        out.append((data[start:cut], offset + start))
        start = cut + 1
    return out


def _member_key(member: bytes, offset: int, name: str) -> str:
    try:
        key, _ = json.JSONDecoder().raw_decode(member.lstrip(WHITESPACE).decode("utf-8", "replace"))
        if not isinstance(key, str):
            raise ValueError("not a string")
    except ValueError:
        raise BadRecordError("invalid JSON: a member without a string key", file=name, offset=offset) from None
    return key


def _ranges(stream, spans, block: int = READ_BLOCK):
    """The bytes of ``spans`` ((start, end) pairs, or bytes given as they are) of ``stream``, in blocks."""
    for span in spans:
        if isinstance(span, bytes):
            yield span
            continue
        start, end = span
        stream.seek(start)
        while start < end:
            data = stream.read(min(block, end - start))
            if not data:
                return
            start += len(data)
            yield data


class _Chained:
    """A read-only stream of several pieces, for ijson."""

    def __init__(self, pieces):
        self.pieces, self.rest = pieces, b""

    def read(self, size: int = -1) -> bytes:
        while not self.rest:
            self.rest = next(self.pieces, None)
            if self.rest is None:
                self.rest = b""
                return b""
        out, self.rest = self.rest[:size], self.rest[size:]
        return out


def _check_skeleton(stream, spans: dict, target: _Target, name: str) -> None:
    """The document without the inside of the container must be valid JSON:
    read with :mod:`json` when small (the error names its byte), streamed
    with ijson otherwise."""
    (p0, p1), (s0, s1) = spans["prefix"], spans["suffix"]
    empty = b"[]" if target.kind == "array" else b"{}"
    if (p1 - p0) + (s1 - s0) <= SMALL_SKELETON:
        prefix = _read(stream, p0, p1)
        try:
            json.loads(prefix[:-1] + empty + _read(stream, s0 + 1, s1))
        except ValueError as exc:
            pos = getattr(exc, "pos", 0)
            offset = pos if pos < len(prefix) else target.closed + pos - len(prefix)
            raise BadRecordError(f"invalid JSON: {getattr(exc, 'msg', exc)}", file=name, offset=offset) from None
        return
    import ijson

    try:
        for _ in ijson.parse(_Chained(_ranges(stream, [(p0, p1 - 1), empty, (s0 + 1, s1)]))):
            pass
    except ijson.JSONError as exc:
        raise BadRecordError(f"invalid JSON before or after the elements at the pointer: {exc}",
                             file=name) from None


class _ChunkWriter:
    """Writes checked elements to ``out`` in the chunk's output form."""

    def __init__(self, meta: dict, bad: BadRecords, ref: ChunkRef, out):
        self.jsonl = meta.get("output") == "jsonl"
        self.members = meta.get("kind") == "object"
        self.brackets = (b"{", b"}") if self.members else (b"[", b"]")
        self.bad, self.ref, self.out, self.written = bad, ref, out, 0

    def begin(self) -> None:
        if not self.jsonl:
            self.out.write(self.brackets[0])

    def end(self) -> None:
        if not self.jsonl:
            self.out.write(self.brackets[1])

    def raw(self, data: bytes) -> None:
        """The inside of an empty container, kept as it is (whitespace)."""
        if not self.jsonl:
            self.out.write(data)

    def batch(self, data: bytes, offset: int) -> None:
        """Write the elements in ``data`` (whole elements and the commas between
        them, from byte ``offset`` of the source): checked all at once, one by one
        when one of them is bad."""
        try:
            if is_blank(data):
                raise ValueError("no value")
            check_json(self.brackets[0] + data + self.brackets[1])
        except ValueError:
            good = [(e, at) for e, at in _split(data, offset, self.ref.label) if self._good(e, at)]
        else:
            if not self.jsonl:
                if self.written:
                    self.out.write(b",")
                self.out.write(data)  # the elements' own bytes, commas and whitespace included
                self.written += 1
                return
            good = _split(data, offset, self.ref.label)
        for element, _ in good:
            self._write_one(element)

    def _good(self, element: bytes, offset: int) -> bool:
        try:
            if is_blank(element):
                raise ValueError("no value between two commas")
            check_json(self.brackets[0] + element + self.brackets[1])
            return True
        except ValueError as exc:
            skip = len(element) - len(element.lstrip(WHITESPACE))
            self.bad.add(f"invalid JSON: {getattr(exc, 'msg', exc)}", file=self.ref.label, offset=offset + skip,
                         chunk=self.ref.index, record=element)
            return False

    def _write_one(self, element: bytes) -> None:
        if self.jsonl:
            # A newline in valid JSON is whitespace between tokens (strings escape theirs).
            value = element.strip(WHITESPACE).translate(None, b"\r\n")
            self.out.write(b"{" + value + b"}\n" if self.members else value + b"\n")
            return
        if self.written:
            self.out.write(b",")
        self.out.write(element)
        self.written += 1

    def line(self, line: bytes, number: int, offset: int) -> None:
        """One line of JSON Lines input (its newline included); blank lines stay in JSON Lines output."""
        if is_blank(line):
            if self.jsonl:
                self.out.write(line)
            return
        try:
            check_json(line)
        except ValueError as exc:
            self.bad.add(f"invalid JSON: {getattr(exc, 'msg', exc)}", file=self.ref.label, line=number,
                         offset=offset, chunk=self.ref.index, record=line)
            return
        if self.jsonl:
            self.out.write(line)
            return
        if self.written:
            self.out.write(b",")
        self.out.write(line.rstrip(b"\r\n"))
        self.written += 1


def _blocks(src, ref: ChunkRef):
    left = ref.end - ref.start
    while left > 0:
        data = src.read(min(READ_BLOCK, left))
        if not data:
            raise PartitionError(f"chunk {ref.index}: {ref.label} ended {left} bytes before byte {ref.end} "
                                 "(did the source change after planning?)")
        left -= len(data)
        yield data


def _batches(src, ref: ChunkRef, writer: _ChunkWriter, cuts: list[int]) -> None:
    """Hand the writer the elements between the commas at ``cuts`` (planned), batch by batch."""
    start = ref.start
    for stop in [*cuts, ref.end]:
        data = _read_exactly(src, stop - start, ref)
        writer.batch(data, start)
        if stop < ref.end and _read_exactly(src, 1, ref) != b",":
            raise PartitionError(f"chunk {ref.index}: {ref.label} has no comma at byte {stop} "
                                 "(did the source change after planning?)")
        start = stop + 1


def _read_exactly(src, size: int, ref: ChunkRef) -> bytes:
    data = src.read(size)
    while len(data) < size:
        more = src.read(size - len(data))
        if not more:
            raise PartitionError(f"chunk {ref.index}: {ref.label} ended before byte {ref.end} "
                                 "(did the source change after planning?)")
        data += more
    return data


def _elements(src, ref: ChunkRef, writer: _ChunkWriter) -> None:
    """Read the chunk's byte range in blocks; hand whole elements to the writer in batches."""
    scanner = StructureScanner(depth=1, offset=ref.start, name=ref.label)
    pending, pending_at = bytearray(), ref.start
    for data in _blocks(src, ref):
        positions, codes, _ = scanner.feed(data, max_level=1)
        closing = (codes == CLOSE_ARRAY) | (codes == CLOSE_OBJECT)
        if closing.any():
            raise BadRecordError("invalid JSON: a bracket closes the array early", file=ref.label,
                                 offset=int(positions[closing][0]), chunk=ref.index)
        pending += data
        commas = positions[codes == COMMA]
        if len(commas):
            cut = int(commas[-1]) - pending_at
            writer.batch(bytes(pending[:cut]), pending_at)
            del pending[: cut + 1]
            pending_at += cut + 1
    scanner.finish()
    if scanner.depth != 1:
        raise BadRecordError("invalid JSON: brackets do not balance", file=ref.label, offset=ref.end,
                             chunk=ref.index)
    if ref.meta.get("elements") == [0, 0]:
        writer.raw(bytes(pending))
    else:
        writer.batch(bytes(pending), pending_at)


def _lines(src, ref: ChunkRef, writer: _ChunkWriter) -> None:
    """Read the chunk's lines in blocks; check and write each."""
    number, offset, pending = ref.meta["elements"][0] + 1, ref.start, b""
    for data in _blocks(src, ref):
        lines = (pending + data).split(b"\n")
        pending = lines.pop()
        for line in lines:
            writer.line(line + b"\n", number, offset)
            number, offset = number + 1, offset + len(line) + 1
    if pending:
        writer.line(pending, number, offset)
