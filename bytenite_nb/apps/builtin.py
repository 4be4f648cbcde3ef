"""Apps that ship with bytenite-nb, registered by name."""

from __future__ import annotations

import os
import shutil

from ..schema import SAFE_NAME


def identity(chunk_path: str, results_dir: str, params: dict) -> None:
    """The chunk, unchanged, as the result (``result.bin``): the identity map.

    A hard link when the chunk and the results share a filesystem (no byte is
    copied; the engine never writes a chunk file in place), a copy otherwise.
    """
    dest = os.path.join(results_dir, params.get("output_name", "result.bin"))
    try:
        os.link(chunk_path, dest)
    except OSError:
        shutil.copyfile(chunk_path, dest)


identity.schema = {
    "type": "object",
    "properties": {"output_name": {**SAFE_NAME, "default": "result.bin", "description": "Name of the result file."}},
    "additionalProperties": False,
}


def noop(chunk_path: str, results_dir: str, params: dict) -> None:
    """Do nothing and produce no result (measures the engine's own overhead)."""


noop.schema = {"type": "object"}
