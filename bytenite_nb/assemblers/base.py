"""The assembler spec: fan the committed chunk results back in.

An assembler gets the committed results in chunk order and writes the job's
outputs into a local ``output_dir``; the engine then publishes that folder to
the destination and writes ``_SUCCESS`` last. An assembler that already knows
the checksum of an output (it hashed the bytes on the way, see
:func:`~bytenite_nb.transfer.new_checksum` and
:func:`~bytenite_nb.transfer.copy_range`) may return ``{name: checksum}`` to
spare the engine a second read.

>>> class Count(Assembler):
...     '''Write how many result files there are.'''
...     def assemble(self, results, output_dir, params):
...         n = sum(len(r.files) for r in results)
...         with open(os.path.join(output_dir, "count.txt"), "w") as f:
...             f.write(str(n))
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Sequence

EMPTY_SCHEMA = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True)
class ResultFile:
    """One file an app wrote for one chunk."""

    name: str
    size: int
    url: str
    local_path: str | None = None  # set when staging is on a local filesystem
    storage_options: dict = field(default_factory=dict, compare=False)

    def open(self) -> BinaryIO:
        if self.local_path:
            return open(self.local_path, "rb")
        import fsspec

        return fsspec.open(self.url, "rb", **self.storage_options).open()

    def copy_to(self, dest: str) -> None:
        """Put this file at the local path ``dest``: a hard link when staging is on
        the same filesystem (instant - treat it as read-only), else a copy or a download.

        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> src = os.path.join(folder, "r.txt")
        >>> _ = open(src, "w").write("hi")
        >>> ResultFile(name="r.txt", size=2, url="file://" + src, local_path=src).copy_to(os.path.join(folder, "c.txt"))
        >>> open(os.path.join(folder, "c.txt")).read()
        'hi'
        """
        import shutil

        from ..transfer import link_or_copy

        if self.local_path:
            link_or_copy(self.local_path, dest)
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with self.open() as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 8 * 2**20)


@dataclass(frozen=True)
class ChunkResult:
    """The committed results of one chunk, with what the chunk covered (``info``,
    as an app saw it in ``CHUNK_INFO``)."""

    index: int
    files: tuple[ResultFile, ...]
    info: dict = field(default_factory=dict, compare=False)

    def file(self, name: str) -> ResultFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"chunk {self.index} has no result {name!r}")


def chunk_folder(index: int, count: int) -> str:
    """The folder name that namespaces one chunk's files: ``chunk_0007``.

    >>> chunk_folder(7, 20), chunk_folder(7, 123456)
    ('chunk_0007', 'chunk_000007')
    """
    width = max(4, len(str(max(count - 1, 0))))
    return f"chunk_{index:0{width}d}"


class Assembler:
    """Base class of assemblers: set ``schema``, write a docstring, implement :meth:`assemble`."""

    schema: dict = EMPTY_SCHEMA

    def assemble(self, results: Sequence[ChunkResult], output_dir: str, params: dict) -> dict[str, str] | None:
        raise NotImplementedError


class FunctionAssembler(Assembler):
    """A function ``fn(results, output_dir, params)`` as an assembler."""

    def __init__(self, fn: Callable, schema: dict | None = None):
        self.fn = fn
        self.schema = schema or {"type": "object"}
        self.__doc__ = inspect.getdoc(fn) or ""

    def assemble(self, results, output_dir, params):
        return self.fn(results, output_dir, params)


def as_assembler(obj: Any, schema: dict | None = None) -> Assembler:
    """Adapt a class, an instance or a function to an :class:`Assembler`."""
    if inspect.isclass(obj) and issubclass(obj, Assembler):
        obj = obj()
    if isinstance(obj, Assembler):
        if schema is not None:
            obj.schema = schema
        return obj
    if callable(obj):
        return FunctionAssembler(obj, schema)
    raise TypeError(f"not an assembler: {obj!r}")


def output_path(output_dir: str, name: str) -> str:
    """Where an output called ``name`` goes (refusing names that leave the folder)."""
    from ..transfer import safe_join

    path = safe_join(output_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def source_output_name(template: str, source: str, stem_if_empty: str = "output") -> str:
    """``template`` with placeholders of one source file filled in: ``{name}``
    (its file name), ``{stem}`` (without the extension), ``{ext}`` (the
    extension, with its dot) and ``{dir}`` (its folder within the source,
    empty at the top: ``{dir}/`` then goes too), so that same-named files of
    different folders can keep their folders.

    >>> source_output_name("{dir}/{stem}.vtt", "talks/day1/a.wav"), source_output_name("{dir}/{stem}.vtt", "a.wav")
    ('talks/day1/a.vtt', 'a.vtt')
    >>> source_output_name("{name}{ext}", "x/b.tar.gz")
    'b.tar.gz.gz'
    """
    import posixpath

    folder, base = posixpath.split(source)
    stem, ext = os.path.splitext(base)
    name = template.replace("{dir}/", folder + "/" if folder else "").replace("{dir}", folder)
    return name.replace("{stem}", stem or stem_if_empty).replace("{name}", base).replace("{ext}", ext)


def one_name_per_source(template: str, count: int, component: str, what: str = "sources") -> None:
    """Refuse one fixed output name for ``count`` > 1 sources (they would overwrite each other).

    >>> one_name_per_source("all.vtt", 2, "audio-index")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.AssemblyError: audio-index: 2 sources but one output_name 'all.vtt': use {stem}, {name} or {dir} in it
    """
    from ..exceptions import AssemblyError

    if count > 1 and "{" not in template:
        raise AssemblyError(f"{component}: {count} {what} but one output_name {template!r}: "
                            "use {stem}, {name} or {dir} in it")


def distinct_outputs(pairs, component: str) -> None:
    """Fail when two sources would write one output: ``pairs`` are ``(source, output name)``.
    Called before anything is written, so a collision leaves no partial output.

    >>> distinct_outputs([("talks/a.wav", "a.vtt"), ("b.wav", "b.vtt")], "audio-index")
    >>> distinct_outputs([("x", "a\\\\b.vtt"), ("y", "a/b.vtt")], "audio-index")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.AssemblyError: audio-index: x and y would both write a/b.vtt: give output names that tell them apart
    >>> distinct_outputs([("talks/a.wav", "a.vtt"), ("other/a.wav", "a.vtt")], "audio-index")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.AssemblyError: audio-index: talks/a.wav and other/a.wav would both write a.vtt: give output names that tell them apart
    """
    import posixpath

    from ..exceptions import AssemblyError

    taken: dict[str, str] = {}
    for source, name in pairs:
        key = posixpath.normpath(name.replace("\\", "/"))  # as safe_join writes it: "a.vtt", "./a.vtt" are one file
        if key in taken:
            raise AssemblyError(f"{component}: {taken[key]} and {source} would both write {name}: "
                                "give output names that tell them apart")
        taken[key] = source


def names_by_source(sources, name_of: Callable[[str], str], component: str) -> dict[str, str]:
    """Each source's output name (``name_of(source)``), checked by :func:`distinct_outputs`
    before anything is written.

    >>> names_by_source(["in/a.mov", "b.mp4"], lambda s: s.rsplit("/", 1)[-1] + ".txt", "demo")
    {'in/a.mov': 'a.mov.txt', 'b.mp4': 'b.mp4.txt'}
    """
    names = {source: name_of(source) for source in sources}
    distinct_outputs(names.items(), component)
    return names
