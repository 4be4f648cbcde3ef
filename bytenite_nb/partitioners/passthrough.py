"""``passthrough``: the whole source as one chunk."""

from __future__ import annotations

from .base import EMPTY_SCHEMA, ChunkRef, Partitioner, Source, bundle


class Passthrough(Partitioner):
    """The whole source as a single chunk.

    One file is given to the app as it is; several files (a glob or a folder)
    as a zip archive of them; a ``bypass`` source as an empty chunk.
    """

    schema = EMPTY_SCHEMA

    def plan(self, source: Source, params: dict):
        if source.bypass or not source.files:
            return [ChunkRef(size=0, label="(no data)")]
        return [bundle(source.files)]
