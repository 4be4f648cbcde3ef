"""ByteNite partitioner and assembler engines: folders that plug in where a
job names a partitioner or an assembler.

An engine folder looks like an app folder (``manifest.json``, ``app/``,
optional ``schema.json``) with ``"type": "partitioner"`` or
``"type": "assembler"``; it runs as a process, or in the image its manifest
names. A job names one by path, by tag (``name``, ``name@1``, ``name@1.2``,
see :mod:`bytenite_nb.apps.catalog`) or as ``{"folder": "path"}``::

    {"partitioner": "engines/split-csv", "assembler": {"folder": "engines/merge", "container": false}, ...}

>>> # resolve_engine("split-csv@1", "partitioner", base_dir="/path/to/job")
"""

from __future__ import annotations

import os
from typing import Any

from ..apps.catalog import find_folder, is_tag
from ..exceptions import FieldError
from .assembler import EngineAssembler
from .partitioner import EnginePartitioner

CLASSES = {"partitioner": EnginePartitioner, "assembler": EngineAssembler}


def resolve_engine(spec: Any, kind: str, base_dir: str | None = None, *, field: str | None = None):
    """The engine a job's ``partitioner``/``assembler`` field names, or None when
    ``spec`` names no engine folder (a string that is neither a folder nor a
    tag of one). Problems with the folder are :class:`FieldError` naming ``field``.
    """
    field = field or kind
    cls = CLASSES[kind]
    container = None
    if isinstance(spec, dict):
        cls.check_spec(spec, field)
        folder, container = spec["folder"], spec.get("container")
    elif isinstance(spec, str):
        folder = spec
    else:
        return None
    path = folder if os.path.isabs(folder) else os.path.join(base_dir or os.getcwd(), folder)
    if os.path.isfile(os.path.join(path, "manifest.json")):
        engine = cls(folder, base_dir=base_dir, container=container)
    elif is_tag(folder):
        manifest = find_folder(folder, kind, base_dir, field=field)
        if manifest is None:
            if isinstance(spec, dict):
                raise FieldError(f"{field}.folder", f"no {kind} engine folder {folder!r}")
            return None
        engine = cls(manifest.folder, container=container)
    elif isinstance(spec, dict) or (os.sep in folder and ":" not in folder):
        raise FieldError(field, f"{path}: no manifest.json (not a ByteNite {kind} engine folder)")
    else:
        return None
    errors = engine.check(field)
    if errors:
        raise errors[0]
    return engine


__all__ = ["EngineAssembler", "EnginePartitioner", "resolve_engine"]
