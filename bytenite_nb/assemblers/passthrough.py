"""``passthrough``: every result file to the destination, one folder per chunk."""

from __future__ import annotations

from .base import EMPTY_SCHEMA, Assembler, chunk_folder, output_path


class Passthrough(Assembler):
    """Every result file of every chunk goes to the destination, under a
    folder per chunk (``chunk_0000/result.txt``, ``chunk_0001/result.txt``...),
    so names never collide."""

    schema = EMPTY_SCHEMA

    def assemble(self, results, output_dir, params):
        count = len(results)
        for chunk in results:
            folder = chunk_folder(chunk.index, count)
            for f in chunk.files:
                f.copy_to(output_path(output_dir, f"{folder}/{f.name}"))
