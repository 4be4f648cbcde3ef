"""ByteNite partitioner and assembler engines: folders that plug in where a
job names a partitioner or an assembler.

An engine folder looks like an app folder (``manifest.json``, ``app/``,
optional ``schema.json``) with ``"type": "partitioner"`` or
``"type": "assembler"``; it runs as a process, or in the image its manifest
names. A job names one by path, by tag (``name``, ``name@1``, ``name@1.2``,
see :mod:`bytenite_nb.folders`) or as ``{"folder": "path or tag",
"container": false}``; :meth:`bytenite_nb.registry.Registry.resolve` turns
those into the classes here::

    {"partitioner": "engines/split-csv", "assembler": {"folder": "merge@1", "container": false}, ...}
"""

from __future__ import annotations

from .assembler import EngineAssembler
from .partitioner import EnginePartitioner

#: the engine class for each kind of component
CLASSES = {"partitioner": EnginePartitioner, "assembler": EngineAssembler}

__all__ = ["CLASSES", "EngineAssembler", "EnginePartitioner"]
