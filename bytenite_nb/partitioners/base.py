"""The partitioner spec: what a partitioner is given and what it returns.

A partitioner looks at a source and returns chunk *references* - which bytes
of which objects make up each chunk - never the bytes themselves. The engine
numbers the chunks and materialises each one on the worker that runs it.

>>> class Halves(Partitioner):
...     '''Split every file in two byte halves.'''
...     schema = {"type": "object", "properties": {}, "additionalProperties": False}
...     def plan(self, source, params):
...         for f in source.files:
...             mid = f.size // 2
...             yield ChunkRef(url=f.url, start=0, end=mid, label=f.name)
...             yield ChunkRef(url=f.url, start=mid, end=f.size, label=f.name)
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..storage import FileInfo, Location

EMPTY_SCHEMA = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True)
class ChunkRef:
    """A reference to the data of one chunk.

    - ``url`` with ``start``/``end``: a byte range of one object (``end=None``:
      to the end of the object);
    - ``members``: several whole objects, given to the app as a zip archive
      (``names`` are the names inside it);
    - neither: an empty chunk (a ``bypass`` source).
    """

    index: int = -1
    url: str | None = None
    start: int = 0
    end: int | None = None
    members: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    size: int | None = None
    label: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def describe(self) -> str:
        """What the chunk covers, for messages: ``in.txt[0:65536]``."""
        if self.members:
            return f"{len(self.members)} files ({self.names[0]} ...)" if self.names else f"{len(self.members)} files"
        if self.url is None:
            return "(no data)"
        base = self.label or self.url
        if self.start or self.end is not None:
            return f"{base}[{self.start}:{'' if self.end is None else self.end}]"
        return base

    def to_dict(self) -> dict:
        out = {"index": self.index, "size": self.size, "covers": self.describe()}
        if self.url is not None:
            out.update(url=self.url, start=self.start, end=self.end)
        if self.members:
            out.update(members=list(self.members), names=list(self.names))
        if self.label:
            out["label"] = self.label
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ChunkRef":
        return cls(
            index=d["index"],
            url=d.get("url"),
            start=d.get("start") or 0,
            end=d.get("end"),
            members=tuple(d.get("members") or ()),
            names=tuple(d.get("names") or ()),
            size=d.get("size"),
            label=d.get("label", ""),
            meta=d.get("meta") or {},
        )

    def numbered(self, index: int) -> "ChunkRef":
        return dataclasses.replace(self, index=index)


def whole(f: FileInfo) -> ChunkRef:
    """A chunk that is one whole file."""
    return ChunkRef(url=f.url, size=f.size, label=f.name)


def bundle(files: list[FileInfo]) -> ChunkRef:
    """A chunk of one or several whole files (one file stays a plain file)."""
    if len(files) == 1:
        return whole(files[0])
    sizes = [f.size for f in files]
    return ChunkRef(
        members=tuple(f.url for f in files),
        names=tuple(f.name for f in files),
        size=None if None in sizes else sum(sizes),
        label=f"{files[0].name} .. {files[-1].name}",
    )


@dataclass
class Source:
    """What a partitioner sees: the source location and the files it covers.

    ``workspace`` is the URL of a folder, reachable by every worker and kept as
    long as the job's staging area, where a partitioner that makes chunk data
    of its own (rather than references into the source) may write it; None
    when the plan is only a preview.
    """

    location: Location
    files: list[FileInfo]
    workspace: str | None = None

    @property
    def bypass(self) -> bool:
        return self.location.bypass

    def open(self, url: str, block_size: int | None = None):
        """Open one of ``files`` for reading (random access, ranged reads on object stores)."""
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(url, **self.location.storage_options)
        kwargs = {"block_size": block_size} if block_size and not self.location.is_local else {}
        return fs.open(path, "rb", **kwargs)


class Partitioner:
    """Base class of partitioners. Subclasses set ``schema`` (JSON Schema of
    their params), write a docstring (shown by ``bytenite-nb components``) and
    implement :meth:`plan`."""

    schema: dict = EMPTY_SCHEMA

    def plan(self, source: Source, params: dict) -> Iterable[ChunkRef]:
        raise NotImplementedError


class FunctionPartitioner(Partitioner):
    """A plain function ``fn(source, params) -> iterable of ChunkRef`` as a partitioner."""

    def __init__(self, fn: Callable[[Source, dict], Iterable[ChunkRef]], schema: dict | None = None):
        self.fn = fn
        self.schema = schema or {"type": "object"}
        self.__doc__ = inspect.getdoc(fn) or ""

    def plan(self, source: Source, params: dict) -> Iterable[ChunkRef]:
        return self.fn(source, params)


def as_partitioner(obj: Any, schema: dict | None = None) -> Partitioner:
    """Adapt a class, an instance or a function to a :class:`Partitioner`."""
    if inspect.isclass(obj) and issubclass(obj, Partitioner):
        obj = obj()
    if isinstance(obj, Partitioner):
        if schema is not None:
            obj.schema = schema
        return obj
    if callable(obj):
        return FunctionPartitioner(obj, schema)
    raise TypeError(f"not a partitioner: {obj!r}")
