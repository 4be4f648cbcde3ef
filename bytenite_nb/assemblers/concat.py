"""``concat``: all results, in chunk order, into one file."""

from __future__ import annotations

import fnmatch
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..transfer import BUFFER, combine_crc32c, copy_range, current_checksum, new_checksum
from ..schema import SAFE_NAME
from ..exceptions import AssemblyError
from .base import Assembler, ResultFile, output_path


@dataclass(frozen=True)
class Tail:
    """A result file from byte ``skip`` on (after its header line)."""

    file: ResultFile
    skip: int

    @property
    def size(self) -> int:
        return self.file.size - self.skip


#: a header line longer than this is taken for a file that has none
MAX_HEADER = 1 * 2**20


def header_length(f: ResultFile) -> int:
    """The length in bytes of the first line of ``f``, its newline included; a
    ``"``-quoted field may hold newlines (as CSV writes them).

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(path, "wb").write(b'a,"b\\nc"\\n1,2\\n')
    >>> header_length(ResultFile(name="t.csv", size=14, url="file://" + path, local_path=path))
    8
    """
    quoted, seen = False, 0
    with f.open() as src:
        while seen < MAX_HEADER:
            block = src.read(65536)
            if not block:
                return seen  # one line, no newline at its end: all header
            for i, byte in enumerate(block):
                if byte == 0x22:  # '"'
                    quoted = not quoted
                elif byte == 0x0A and not quoted:
                    return seen + i + 1
            seen += len(block)
    raise AssemblyError(f"{f.name}: no end of a header line in its first {MAX_HEADER // 2**20} MiB "
                        "(is it a table with a header?)")


def _drop_repeated_headers(parts: list, results) -> list:
    """``parts`` with the header line of every file but the first one left out,
    each checked to be the same as the first."""
    chunk_of = {id(f): chunk.index for chunk in results for f in chunk.files}
    out, first = [], None
    for part in parts:
        if isinstance(part, bytes):
            out.append(part)
            continue
        length = header_length(part)
        with part.open() as src:
            header = src.read(length)
        if first is None:
            first = (header, part, chunk_of.get(id(part)))
            out.append(Tail(part, 0))
            continue
        if header != first[0]:
            raise AssemblyError(
                f"chunk {chunk_of.get(id(part))} ({part.name}): its header {header[:200]!r} differs from "
                f"chunk {first[2]}'s ({first[1].name}: {first[0][:200]!r})")
        out.append(Tail(part, length))
    return out


class Concat(Assembler):
    """Concatenate the result files of every chunk, in chunk order (and in name
    order within a chunk), into one output file ``output_name`` (default:
    ``output`` with the extension of the first result, e.g. ``output.txt``).
    ``pattern`` keeps only the result files whose name matches a glob;
    ``separator`` is written between chunks. ``header: true`` is for tables
    (CSV, TSV): only the first file's header line is kept, and every other
    file's header must be the same (a header is the first line, read
    CSV-aware: a quoted field may hold a newline), so ``rows`` -> ``identity``
    -> ``concat`` gives back the input byte for byte."""

    schema = {
        "type": "object",
        "properties": {
            "output_name": {**SAFE_NAME, "description": "Name of the output file."},
            "pattern": {"type": "string", "description": "Only result files matching this glob."},
            "separator": {"type": "string", "default": "",
                          "description": "Text written between chunks."},
            "header": {"type": "boolean", "default": False,
                       "description": "The results are tables with a header line: keep the first one only."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        pattern = params.get("pattern")
        separator = params.get("separator", "").encode()
        # The output, in order: result files, and the separator between chunks.
        parts: list = []
        previous_chunk = None
        for chunk in results:
            for f in chunk.files:
                if pattern and not fnmatch.fnmatch(f.name, pattern):
                    continue
                if separator and previous_chunk is not None and previous_chunk != chunk.index:
                    parts.append(separator)
                previous_chunk = chunk.index
                parts.append(f)
        if params.get("header"):
            parts = _drop_repeated_headers(parts, results)
        files = [p.file if isinstance(p, Tail) else p for p in parts if not isinstance(p, bytes)]
        name = params.get("output_name")
        if not name:
            name = "output" + (os.path.splitext(files[0].name)[1] if files else "")
        path = output_path(output_dir, name)
        algorithm = current_checksum()
        if all(f.local_path for f in files):
            parts = [p if isinstance(p, (bytes, Tail)) else Tail(p, 0) for p in parts]
            return {name: _write_local(path, parts, algorithm)}
        digest = new_checksum(algorithm)  # computed on the way: the output is never read back
        with open(path, "wb") as out:
            for part in parts:
                if isinstance(part, bytes):
                    out.write(part)
                    digest.update(part)
                    continue
                tail = part if isinstance(part, Tail) else Tail(part, 0)
                with tail.file.open() as src:
                    src.seek(tail.skip)
                    while data := src.read(BUFFER):
                        out.write(data)
                        digest.update(data)
        return {name: digest.hexdigest()}


#: local outputs at least this large are written by several threads at once,
#: each copying its own byte range (two threads on two cores: 1.25x faster)
PARALLEL_MIN = 64 * 2**20


def _write_local(path: str, parts: list, algorithm: str) -> str:
    """Write ``parts`` (local result files and separator bytes) into ``path``; return its checksum.

    The output's layout is known before a byte moves (every staged result has
    its size), so each thread writes its own range of the file. crc32c
    values of consecutive ranges combine into the crc32c of the whole; sha256
    cannot be combined, so it is one range.
    """
    sizes = [len(p) if isinstance(p, bytes) else p.size for p in parts]  # p: bytes or Tail
    total = sum(sizes)
    threads = min(os.cpu_count() or 1, 4) if algorithm == "crc32c" and total >= PARALLEL_MIN else 1
    bounds = [total * i // threads for i in range(threads + 1)]
    # Each range: the (part, start, end) pieces that fill it, in order.
    ranges: list[list[tuple]] = [[] for _ in range(threads)]
    position = 0
    for part, size in zip(parts, sizes):
        for r in range(threads):
            lo, hi = max(position, bounds[r]), min(position + size, bounds[r + 1])
            if lo < hi:
                ranges[r].append((part, lo - position, hi - position))
        position += size
    with open(path, "wb") as out:
        out.truncate(total)

    def write_range(r: int) -> str:
        digest = new_checksum(algorithm)
        with open(path, "r+b") as out:
            out.seek(bounds[r])
            for part, start, end in ranges[r]:
                if isinstance(part, bytes):
                    out.write(part[start:end])
                    digest.update(part[start:end])
                else:
                    copy_range(part.file.local_path, out, part.skip + start, part.skip + end, digest)
        return digest.hexdigest()

    if threads == 1:
        return write_range(0)
    with ThreadPoolExecutor(threads, thread_name_prefix="bytenite-nb-concat") as pool:
        sums = list(pool.map(write_range, range(threads)))
    checksum = sums[0]
    for r in range(1, threads):
        checksum = combine_crc32c(checksum, sums[r], bounds[r + 1] - bounds[r])
    return checksum
