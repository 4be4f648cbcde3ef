"""``files``: one chunk per file, or per group of files."""

from __future__ import annotations

import fnmatch

from .base import Partitioner, Source, bundle


class Files(Partitioner):
    """One chunk per matching file of the source, or ``files_per_chunk`` files
    per chunk (given to the app as a zip archive). ``pattern`` keeps only the
    files whose name matches a glob such as ``*.csv``."""

    schema = {
        "type": "object",
        "properties": {
            "files_per_chunk": {
                "type": "integer",
                "minimum": 1,
                "default": 1,
                "description": "Files in each chunk.",
            },
            "pattern": {
                "type": "string",
                "description": "Only files whose name matches this glob (e.g. '*.csv').",
            },
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        files = source.files
        pattern = params.get("pattern")
        if pattern:
            files = [f for f in files if fnmatch.fnmatch(f.name, pattern)
                     or fnmatch.fnmatch(f.name.rsplit("/", 1)[-1], pattern)]
        per = params.get("files_per_chunk", 1)
        return [bundle(files[i:i + per]) for i in range(0, len(files), per)]
