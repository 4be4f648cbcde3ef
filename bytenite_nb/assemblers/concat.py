"""``concat``: all results, in chunk order, into one file."""

from __future__ import annotations

import fnmatch
import os

from ..transfer import ParallelDigest, copy_range
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
        with ParallelDigest() as digest, open(path, "wb") as out:
            if all(f.local_path for f in files):
                _copy_local(out, parts, digest)
            else:
                _stream(out, parts, digest)
        return {name: digest.finish()}


def _copy_local(out, parts: list, digest: ParallelDigest) -> None:
    """Local parts: copied in the kernel, in order; the checksum of the whole is
    read beside them, in its own thread."""
    for part in parts:
        if isinstance(part, bytes):
            out.write(part)
            digest.add_bytes(part)
        else:
            digest.add_file(part.local_path)
            copy_range(part.local_path, out)


def _stream(out, parts: list, digest: ParallelDigest) -> None:
    """Parts on an object store: read in order and appended."""
    for part in parts:
        if isinstance(part, bytes):
            out.write(part)
            digest.add_bytes(part)
            continue
        with part.open() as src:
            while True:
                data = src.read(8 * 2**20)
                if not data:
                    break
                out.write(data)
                digest.add_bytes(data)
