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
#: CHUNK_INFO lists at most this many member names (``names_total`` says how many there are)
INFO_NAMES = 200


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
            return self.label or "(no data)"  # data of the partitioner's own (a regrouped chunk) or none
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

    def info(self) -> dict:
        """What an app, an assembler and a preview learn of this chunk (``CHUNK_INFO``):
        its number, what it covers, its byte range or member names (the first 200), and whatever
        its partitioner put in ``meta`` (a row range, a time window, a key...). ``index`` is
        always the chunk's number in the job (``CHUNK_NUMBER``): an ``index`` in ``meta`` does
        not replace it.

        >>> ChunkRef(index=2, url="file:///d/in.csv", start=10, end=20, meta={"rows": [5, 9]}).info()
        {'index': 2, 'covers': 'file:///d/in.csv[10:20]', 'url': 'file:///d/in.csv', 'start': 10, 'end': 20, 'rows': [5, 9]}
        >>> ChunkRef(index=7, meta={"index": 0, "position": 0}).info()["index"]
        7
        """
        out: dict = {"index": self.index, "covers": self.describe()}
        if self.url is not None:
            out.update(url=self.url, start=self.start, end=self.end)
        if self.names:
            # capped: CHUNK_INFO travels in an environment variable, which has a size limit
            out["names"] = list(self.names[:INFO_NAMES])
            if len(self.names) > INFO_NAMES:
                out["names_total"] = len(self.names)
        if self.label:
            out["label"] = self.label
        out.update(self.meta)
        # set again after meta: a partitioner's own numbering (e.g. a chunk's position in
        # its file) must not pass for the job-wide chunk number apps and assemblers rely on
        out["index"] = self.index
        return out

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

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """Write the bytes of chunk ``ref`` to the local file ``dest`` on the worker
        that runs it; return the size. A byte range is read with ranged reads
        (positioned reads for local files), member files become a zip archive, a
        chunk without data an empty file. A partitioner whose chunks need
        rewriting (a header to repeat, brackets around JSON objects) overrides it.

        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "in.txt"), "w").write("hello world")
        >>> ref = ChunkRef(index=0, url="file://" + os.path.join(folder, "in.txt"), start=6, end=11)
        >>> Partitioner().materialise(ref, os.path.join(folder, "data.bin")), open(os.path.join(folder, "data.bin")).read()
        (5, 'world')
        """
        import os
        import zipfile

        from fsspec.core import url_to_fs

        from ..exceptions import PartitionError
        from ..transfer import copy_range, copy_stream, safe_join

        options = storage_options or {}
        if os.path.lexists(dest):
            os.unlink(dest)  # never write through a link an earlier attempt's app made
        if ref.members:
            with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for url, name in zip(ref.members, ref.names or [os.path.basename(m) for m in ref.members]):
                    safe_join("/", name)  # refuse member names that would escape on extraction
                    fs, path = url_to_fs(url, **options)
                    with fs.open(path, "rb") as src, zf.open(name, "w", force_zip64=True) as out:
                        copy_stream(src, out)
            return os.path.getsize(dest)
        if ref.url is None:
            open(dest, "wb").close()
            return 0
        fs, path = url_to_fs(ref.url, **options)
        want = None if ref.end is None else ref.end - ref.start
        with open(dest, "wb") as out:
            if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
                try:
                    got = copy_range(path, out, ref.start, ref.end)
                except OSError as exc:
                    raise PartitionError(f"chunk {ref.index}: cannot read {ref.describe()}: {exc}") from exc
            else:
                with fs.open(path, "rb") as src:
                    if ref.start:
                        src.seek(ref.start)
                    got = copy_stream(src, out, want)
        if want is not None and got != want:
            raise PartitionError(
                f"chunk {ref.index}: {ref.url} ended at offset {ref.start + got}, expected bytes up to {ref.end} "
                "(did the source change after planning?)")
        return got


    def release(self, ref: ChunkRef, storage_options: dict | None = None) -> None:
        """Free what only chunk ``ref``'s materialise needed, once its results are
        committed (a committed chunk is never run again for its job). Nothing by
        default; a partitioner that wrote data of its own at planning (the spill
        pieces of ``key`` and ``date-range``) removes it, so that it does not
        wait, taking disk and page cache, for the end of the job.

        >>> Partitioner().release(ChunkRef(index=0))  # nothing to free
        """


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
