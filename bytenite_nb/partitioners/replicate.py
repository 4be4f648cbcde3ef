"""``replicate``: the same data N times (ByteNite's fan-out replica)."""

from __future__ import annotations

import dataclasses

from .base import Partitioner, Source
from .passthrough import Passthrough


class Replicate(Partitioner):
    """Every chunk ``num_replicas`` times: the whole source, once per replica.

    For redundancy (run the same work on several workers) or fan-out jobs
    whose replicas differ only by ``CHUNK_NUMBER`` (e.g. one image per seed).
    """

    schema = {
        "type": "object",
        "properties": {
            "num_replicas": {
                "type": "integer",
                "minimum": 1,
                "default": 2,
                "description": "How many copies of the source to make.",
            },
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        n = params.get("num_replicas", 2)
        base = Passthrough().plan(source, {})
        return [
            dataclasses.replace(ref, meta={**ref.meta, "replica": r})
            for ref in base
            for r in range(n)
        ]
