"""``zip``: every result in one archive (ByteNite's zipper)."""

from __future__ import annotations

import shutil
import zipfile

from ..schema import SAFE_NAME
from .base import Assembler, chunk_folder, output_path


class Zip(Assembler):
    """Put every result file of every chunk into one zip archive,
    ``results_archive.zip`` by default, under a folder per chunk
    (``chunk_0000/result.txt``) so names never collide."""

    schema = {
        "type": "object",
        "properties": {
            "archive_name": {**SAFE_NAME, "default": "results_archive.zip", "description": "Name of the archive."},
            "compression": {"enum": ["deflated", "stored"], "default": "deflated",
                            "description": "deflated (smaller) or stored (faster)."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        name = params.get("archive_name", "results_archive.zip")
        method = zipfile.ZIP_STORED if params.get("compression") == "stored" else zipfile.ZIP_DEFLATED
        count = len(results)
        with zipfile.ZipFile(output_path(output_dir, name), "w", compression=method, allowZip64=True) as zf:
            for chunk in results:
                folder = chunk_folder(chunk.index, count)
                for f in chunk.files:
                    with f.open() as src, zf.open(f"{folder}/{f.name}", "w", force_zip64=f.size > 2**31) as dst:
                        shutil.copyfileobj(src, dst, 8 * 2**20)
