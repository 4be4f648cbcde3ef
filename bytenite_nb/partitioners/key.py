"""``key``: table rows regrouped by key columns, spilled to staging (see :mod:`.regroup`).

The key of a row is the text of its ``columns``: a CSV/TSV field as written
(without its quotes), a JSON Lines value by :func:`.regroup.json_text`, a
Parquet value as a string (pyarrow's cast; null is empty); several columns
are joined with the unit separator ``\\x1f``.

``buckets: N`` puts a row in bucket ``fnv1a_64(UTF-8 bytes of the key) % N``
(:func:`fnv1a_64`, 64-bit FNV-1a: offset basis ``0xcbf29ce484222325``, prime
``0x100000001b3``): the same key lands in the same bucket on every run,
machine and Python version, whatever ``PYTHONHASHSEED``.
"""

from __future__ import annotations

from ..exceptions import FieldError
from .regroup import COMMON_PROPERTIES, Regroup

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
SEPARATOR = "\x1f"


def fnv1a_64(data: bytes) -> int:
    """64-bit FNV-1a of ``data``: the hash of ``buckets``.

    >>> hex(fnv1a_64(b"")), hex(fnv1a_64(b"a")), fnv1a_64("paris".encode()) % 64
    ('0xcbf29ce484222325', '0xaf63dc4c8601ec8c', 0)
    """
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv1a_64_array(texts):
    """:func:`fnv1a_64` of the UTF-8 bytes of every string of a pyarrow string
    array (null: empty), as a numpy uint64 array, computed column-wise.

    >>> import pyarrow as pa
    >>> [hex(h) for h in fnv1a_64_array(pa.array(["", "a", None]))]
    ['0xcbf29ce484222325', '0xaf63dc4c8601ec8c', '0xcbf29ce484222325']
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pc.fill_null(texts.cast(pa.large_string()), "")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    n = len(texts)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset:texts.offset + n + 1]
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8) if texts.buffers()[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")  # the longest first: step j works on a prefix
    starts = offsets[:-1][order]
    sorted_lengths = lengths[order]
    h = np.full(n, FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(FNV_PRIME)
    longest = int(sorted_lengths[0]) if n else 0
    active = n
    with np.errstate(over="ignore"):
        for j in range(longest):
            while active and sorted_lengths[active - 1] <= j:
                active = int(np.searchsorted(-sorted_lengths, -j, side="left"))
            h[:active] = (h[:active] ^ data[starts[:active] + j].astype(np.uint64)) * prime
    out = np.empty(n, dtype=np.uint64)
    out[order] = h
    return out


def key_texts(values: dict, columns: list[str]):
    """The key of every row as one pyarrow string array (see the module's docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for c in columns:
        v = values[c]
        if not pa.types.is_string(v.type) and not pa.types.is_large_string(v.type):
            v = pc.cast(v, pa.string())
        parts.append(pc.fill_null(v.cast(pa.string()), ""))
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, SEPARATOR)


class Key(Regroup):
    """Regroup table rows (CSV, TSV, JSON Lines, Parquet; rows in any order) by
    their key ``columns``, in one of three ways:

    - ``buckets: N``: a chunk per bucket ``fnv1a_64(UTF-8 key) % N`` (64-bit
      FNV-1a; the same key is in the same bucket on every run and machine);
      ``CHUNK_INFO`` has ``bucket`` and ``buckets``; empty buckets make no chunk;
    - ``distinct: true``: a chunk per distinct key, ordered by key;
      ``CHUNK_INFO`` has ``key`` (column -> text);
    - ``ranges: [[low, high], ...]``: a chunk per range ``low <= key < high``
      (one key column; ``null`` is unbounded); numbers compare as numbers,
      strings by Unicode code points; a row in no range is a bad record
      (``on_bad``); ``CHUNK_INFO`` has ``range``.

    The key is the column's text (CSV as written, JSON Lines strings as they
    are, numbers as Python writes them), several columns joined by ``\\x1f``.
    Rows are spilled to staging, bytes as they were, then each chunk is one
    table with one header; chunks in bucket, key or range order."""

    schema = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                        "description": "The key columns."},
            "buckets": {"type": "integer", "minimum": 1,
                        "description": "Hash the key into this many buckets (64-bit FNV-1a of its UTF-8 text)."},
            "distinct": {"type": "boolean", "description": "One chunk per distinct key."},
            "ranges": {"type": "array", "minItems": 1,
                       "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                 "items": {"type": ["number", "string", "null"]}},
                       "description": "Key ranges [low, high): one chunk each (null: unbounded)."},
            **COMMON_PROPERTIES,
            "on_bad": {"enum": ["fail", "skip"], "default": "fail",
                       "description": "a row in no range: fail the job, or skip it (counted in _SUCCESS)"},
        },
        "required": ["columns"],
        "additionalProperties": False,
    }

    def columns(self, params: dict) -> list[str]:
        return list(params["columns"])

    def plan(self, source, params):
        ways = [w for w in ("buckets", "distinct", "ranges") if params.get(w)]
        if len(ways) != 1:
            raise FieldError("params.partitioner", "give exactly one of buckets, distinct or ranges"
                             + (f" (got {', '.join(ways)})" if ways else ""))
        if "ranges" in ways:
            check_ranges(params["ranges"], params["columns"])
        return super().plan(source, params)

    def assign(self, values, params, report):
        texts = key_texts(values, self.columns(params))
        if params.get("buckets"):
            import numpy as np

            n = params["buckets"]
            buckets = (fnv1a_64_array(texts) % np.uint64(n)).astype(np.int64)
            return buckets, [(b, {"bucket": b, "buckets": n}) for b in range(n)]
        if params.get("distinct"):
            return _distinct(texts, values, self.columns(params))
        return _in_ranges(texts, values[params["columns"][0]], params["ranges"], report)


def check_ranges(ranges: list, columns: list[str]) -> None:
    """Ranges must be of one column, of one kind (numbers or strings) and not overlap.

    >>> check_ranges([[0, 10], [5, 20]], ["x"])
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.FieldError: params.partitioner.ranges: [0, 10] and [5, 20] overlap
    """
    field = "params.partitioner.ranges"
    if len(columns) != 1:
        raise FieldError(field, "ranges need exactly one key column")
    kinds = {type(b) is str for r in ranges for b in r if b is not None}
    if len(kinds) > 1:
        raise FieldError(field, "bounds must be all numbers or all strings")
    for low, high in ranges:
        if low is not None and high is not None and not low < high:
            raise FieldError(field, f"[{low}, {high}] is empty: low must be below high")
    ordered = sorted(ranges, key=lambda r: _low_key(r[0]))
    for a, b in zip(ordered, ordered[1:]):
        if a[1] is None or b[0] is None or b[0] < a[1]:
            raise FieldError(field, f"{a} and {b} overlap")


def _low_key(low):
    return (0, 0) if low is None else (1, low)


def _distinct(texts, values, columns):
    import numpy as np
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(texts)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    _, first = np.unique(codes, return_index=True)
    keys = key_texts  # the text of each column of one row of the group
    groups = []
    for row in first.tolist():
        key = {c: keys({c: values[c].slice(row, 1)}, [c])[0].as_py() for c in columns}
        groups.append((tuple(key.values()), {"key": key}))
    # codes index the dictionary; np.unique's order is the dictionary's, one entry per code
    return codes, groups


def _in_ranges(texts, raw, ranges, report):
    import numpy as np
    import pyarrow as pa

    numeric = not any(type(b) is str for r in ranges for b in r if b is not None)
    ordered = sorted(range(len(ranges)), key=lambda i: _low_key(ranges[i][0]))
    if numeric:
        if pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type):
            keys = np.array(raw.to_pylist(), dtype=object)
        else:
            keys = np.array([_number(t) for t in texts.to_pylist()], dtype=object)
    else:
        keys = np.array(texts.to_pylist(), dtype=object)
    codes = np.full(len(keys), -1, dtype=np.int64)
    for row, key in enumerate(keys.tolist()):
        if key is None:
            report(row, f"key {texts[row].as_py()!r} is not a number")
            continue
        for i in ordered:
            low, high = ranges[i]
            if (low is None or low <= key) and (high is None or key < high):
                codes[row] = i
                break
        else:
            report(row, f"key {key!r} is in none of the ranges")
    groups = [((ordered.index(i),), {"range": list(ranges[i])}) for i in range(len(ranges))]
    return codes, groups


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return None
