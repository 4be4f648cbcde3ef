"""Apps that ship with bytenite-nb, registered by name."""

from __future__ import annotations

import os
import shutil

from ..schema import SAFE_NAME


def identity(chunk_path: str, results_dir: str, params: dict) -> None:
    """Copy the chunk unchanged to the results (``result.bin``): the identity map."""
    shutil.copyfile(chunk_path, os.path.join(results_dir, params.get("output_name", "result.bin")))


identity.schema = {
    "type": "object",
    "properties": {"output_name": {**SAFE_NAME, "default": "result.bin", "description": "Name of the result file."}},
    "additionalProperties": False,
}


def noop(chunk_path: str, results_dir: str, params: dict) -> None:
    """Do nothing and produce no result (measures the engine's own overhead)."""


noop.schema = {"type": "object"}
