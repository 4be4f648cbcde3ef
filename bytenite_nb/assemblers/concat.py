"""``concat``: all results, in chunk order, into one file."""

from __future__ import annotations

import fnmatch
import os
from concurrent.futures import ThreadPoolExecutor

from ..transfer import BUFFER, combine_crc32c, copy_range, current_checksum, new_checksum
from ..schema import SAFE_NAME
from .base import Assembler, output_path


class Concat(Assembler):
    """Concatenate the result files of every chunk, in chunk order (and in name
    order within a chunk), into one output file ``output_name`` (default:
    ``output`` with the extension of the first result, e.g. ``output.txt``).
    ``pattern`` keeps only the result files whose name matches a glob;
    ``separator`` is written between chunks."""

    schema = {
        "type": "object",
        "properties": {
            "output_name": {**SAFE_NAME, "description": "Name of the output file."},
            "pattern": {"type": "string", "description": "Only result files matching this glob."},
            "separator": {"type": "string", "default": "",
                          "description": "Text written between chunks."},
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
        files = [p for p in parts if not isinstance(p, bytes)]
        name = params.get("output_name")
        if not name:
            name = "output" + (os.path.splitext(files[0].name)[1] if files else "")
        path = output_path(output_dir, name)
        algorithm = current_checksum()
        if all(f.local_path for f in files):
            return {name: _write_local(path, parts, algorithm)}
        digest = new_checksum(algorithm)  # computed on the way: the output is never read back
        with open(path, "wb") as out:
            for part in parts:
                if isinstance(part, bytes):
                    out.write(part)
                    digest.update(part)
                    continue
                with part.open() as src:
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
    sizes = [len(p) if isinstance(p, bytes) else p.size for p in parts]
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
                    copy_range(part.local_path, out, start, end, digest)
        return digest.hexdigest()

    if threads == 1:
        return write_range(0)
    with ThreadPoolExecutor(threads, thread_name_prefix="bytenite-nb-concat") as pool:
        sums = list(pool.map(write_range, range(threads)))
    checksum = sums[0]
    for r in range(1, threads):
        checksum = combine_crc32c(checksum, sums[r], bounds[r + 1] - bounds[r])
    return checksum
