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
        parts = [f for chunk in results for f in chunk.files
                 if not pattern or fnmatch.fnmatch(f.name, pattern)]
        name = params.get("output_name")
        if not name:
            ext = os.path.splitext(parts[0].name)[1] if parts else ""
            name = "output" + ext
        path = output_path(output_dir, name)
        with ParallelDigest() as digest, open(path, "wb") as out:
            previous_chunk = None
            for chunk in results:
                for f in chunk.files:
                    if pattern and not fnmatch.fnmatch(f.name, pattern):
                        continue
                    if separator and previous_chunk is not None and previous_chunk != chunk.index:
                        out.write(separator)
                        digest.add_bytes(separator)
                    previous_chunk = chunk.index
                    if f.local_path:
                        # Copy in the kernel; hash the same part beside it.
                        digest.add_file(f.local_path)
                        copy_range(f.local_path, out)
                    else:
                        with f.open() as src:
                            while True:
                                data = src.read(8 * 2**20)
                                if not data:
                                    break
                                out.write(data)
                                digest.add_bytes(data)
        return {name: digest.finish()}
