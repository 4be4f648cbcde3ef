"""``split-lines``: byte ranges of text files that end on line boundaries."""

from __future__ import annotations

from ..exceptions import PartitionError
from .base import ChunkRef, Partitioner, Source

DEFAULT_CHUNK_SIZE = 64 * 2**20
SCAN_BLOCK = 8 * 2**20
MAX_READ_AHEAD = 8 * 2**20


class SplitLines(Partitioner):
    """Split text files into chunks of about ``chunk_size`` bytes and/or
    ``lines_per_chunk`` lines. Every chunk ends just after a newline (or at the
    end of its file), so no line is ever cut, lost or repeated - even a line
    longer than ``chunk_size``. Chunks never span two files.

    With ``chunk_size`` alone, planning reads only a little around each
    boundary (``read_ahead`` bytes at a time), so it is fast on large objects;
    ``lines_per_chunk`` has to scan the files to count lines.
    """

    schema = {
        "type": "object",
        "properties": {
            "chunk_size": {
                "type": "integer",
                "minimum": 1,
                "description": "Target chunk size in bytes (default 64 MiB when lines_per_chunk is not set).",
            },
            "lines_per_chunk": {
                "type": "integer",
                "minimum": 1,
                "description": "At most this many lines per chunk.",
            },
            "read_ahead": {
                "type": "integer",
                "minimum": 1,
                "default": 65536,
                "description": "Bytes read at a time when looking for a line end.",
            },
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        chunk_size = params.get("chunk_size")
        lines = params.get("lines_per_chunk")
        if chunk_size is None and lines is None:
            chunk_size = DEFAULT_CHUNK_SIZE
        read_ahead = params.get("read_ahead", 65536)
        refs = []
        for f in source.files:
            with source.open(f.url, block_size=read_ahead) as fh:
                size = f.size if f.size is not None else _size_of(fh)
                if lines is None:
                    ranges = split_by_size(fh, size, chunk_size, read_ahead, f.name)
                else:
                    ranges = split_by_lines(fh, size, lines, chunk_size, f.name)
                for start, end in ranges:
                    refs.append(ChunkRef(url=f.url, start=start, end=end, size=end - start, label=f.name))
        return refs


def _size_of(fh) -> int:
    fh.seek(0, 2)
    size = fh.tell()
    fh.seek(0)
    return size


def find_newline(fh, at: int, size: int, read_ahead: int, name: str = "") -> int | None:
    """Offset of the first ``\\n`` at or after ``at``, or None if there is none.

    Reads ``read_ahead`` bytes at a time, doubling up to 8 MiB for long lines.
    """
    fh.seek(at)
    offset = at
    step = read_ahead
    while offset < size:
        block = fh.read(min(step, size - offset))
        if not block:
            raise PartitionError(f"{name}: data ends at offset {offset}, but its size is {size} bytes")
        i = block.find(b"\n")
        if i >= 0:
            return offset + i
        offset += len(block)
        step = min(step * 2, MAX_READ_AHEAD)
    return None


def split_by_size(fh, size: int, chunk_size: int, read_ahead: int, name: str = ""):
    """``(start, end)`` ranges of about ``chunk_size`` bytes, each ending after a newline.

    >>> import io
    >>> split_by_size(io.BytesIO(b"aa\\nbbbbbb\\nc\\n"), 12, 4, 2)
    [(0, 10), (10, 12)]
    """
    ranges = []
    pos = 0
    while pos < size:
        target = pos + chunk_size
        if target >= size:
            end = size
        else:
            nl = find_newline(fh, target - 1, size, read_ahead, name)
            end = size if nl is None else nl + 1
        ranges.append((pos, end))
        pos = end
    return ranges


def split_by_lines(fh, size: int, lines: int, chunk_size: int | None, name: str = ""):
    """``(start, end)`` ranges of at most ``lines`` lines (and, if set, cut at the
    first line end at or after ``chunk_size`` bytes).

    Reads the file once, in blocks; the work is linear in its size.

    >>> import io
    >>> split_by_lines(io.BytesIO(b"a\\nb\\nc\\nd"), 7, 2, None)
    [(0, 4), (4, 7)]
    """
    ranges = []
    start = 0  # offset where the current chunk starts
    count = 0  # line ends in the current chunk so far
    offset = 0  # offset of block[0]
    fh.seek(0)
    while offset < size:
        block = fh.read(min(SCAN_BLOCK, size - offset))
        if not block:
            raise PartitionError(f"{name}: data ends at offset {offset}, but its size is {size} bytes")
        i = 0
        while i < len(block):
            # A line end at block index >= by_size ends the chunk by size; before it, only by count.
            by_size = len(block) if chunk_size is None else max(i, start + chunk_size - 1 - offset)
            pos, found = nth_newline(block, i, min(by_size, len(block)), lines - count)
            if pos < 0:
                count += found
                pos = block.find(b"\n", by_size) if by_size < len(block) else -1
                if pos < 0:
                    break
            ranges.append((start, offset + pos + 1))
            start, count, i = offset + pos + 1, 0, pos + 1
        offset += len(block)
    if start < size:
        ranges.append((start, size))
    return ranges


def nth_newline(block: bytes, i: int, end: int, k: int) -> tuple[int, int]:
    """``(index, k)`` of the ``k``-th newline of ``block[i:end]``, or ``(-1, how many there are)``.

    Counts in windows that double, then halves the last one: the work is about
    the distance to the answer, never the rest of the block (which made
    counting lines quadratic).

    >>> nth_newline(b"a\\nb\\nc\\n", 0, 6, 2), nth_newline(b"a\\nb", 0, 3, 2)
    ((3, 2), (-1, 1))
    """
    if k <= 16:  # a few: find them one by one
        pos = i - 1
        for found in range(k):
            pos = block.find(b"\n", pos + 1, end)
            if pos < 0:
                return -1, found
        return pos, k
    seen = 0  # newlines in block[i:lo]
    lo, width = i, max(64, 2 * k)
    while True:
        hi = min(end, lo + width)
        n = block.count(b"\n", lo, hi)
        if seen + n >= k:
            break
        seen += n
        if hi >= end:
            return -1, seen
        lo, width = hi, width * 2
    while hi - lo > 64:  # the k-th newline is in block[lo:hi]
        mid = (lo + hi) // 2
        n = block.count(b"\n", lo, mid)
        if seen + n >= k:
            hi = mid
        else:
            seen, lo = seen + n, mid
    pos = lo - 1
    for _ in range(k - seen):
        pos = block.find(b"\n", pos + 1, hi)
    return pos, k
