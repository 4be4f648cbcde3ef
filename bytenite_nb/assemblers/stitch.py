"""``stitch``: documents put back together in chunk order, without the overlap
``text-size`` gave each chunk."""

from __future__ import annotations

from ..schema import SAFE_NAME
from ..transfer import BUFFER, current_checksum, new_checksum
from .base import Assembler, output_path


class Stitch(Assembler):
    """Join every chunk's results, in chunk order (name order within a chunk),
    into ``output_name``, with ``separator`` between chunks. The first
    ``overlap_bytes`` bytes of each chunk's results (its ``CHUNK_INFO``, set by
    ``text-size`` with ``overlap``) are left out, so ``text-size`` ->
    ``identity`` -> ``stitch`` gives the input back exactly."""

    schema = {
        "type": "object",
        "properties": {
            "output_name": {**SAFE_NAME, "default": "output.txt", "description": "Name of the output file."},
            "separator": {"type": "string", "default": "", "description": "Text written between chunks."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        name = params.get("output_name", "output.txt")
        separator = params.get("separator", "").encode()
        digest = new_checksum(current_checksum())
        with open(output_path(output_dir, name), "wb") as out:
            for n, chunk in enumerate(results):
                if n and separator:
                    out.write(separator)
                    digest.update(separator)
                skip = int(chunk.info.get("overlap_bytes") or 0)
                for f in sorted(chunk.files, key=lambda f: f.name):
                    with f.open() as src:
                        while data := src.read(BUFFER):
                            if skip:
                                dropped = min(skip, len(data))
                                data, skip = data[dropped:], skip - dropped
                            out.write(data)
                            digest.update(data)
        return {name: digest.hexdigest()}
