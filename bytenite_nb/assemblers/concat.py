"""``concat``: all results, in chunk order, into one file."""

from __future__ import annotations

import fnmatch
import os

from ..transfer import BUFFER, copy_range, new_checksum
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
        digest = new_checksum()  # computed on the way: the output is never read back
        with open(path, "wb") as out:
            for part in parts:
                if isinstance(part, bytes):
                    out.write(part)
                    digest.update(part)
                elif part.local_path:
                    copy_range(part.local_path, out, digest=digest)
                else:
                    with part.open() as src:
                        while data := src.read(BUFFER):
                            out.write(data)
                            digest.update(data)
        return {name: digest.hexdigest()}
