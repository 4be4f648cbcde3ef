"""``codebase``: a source tree in chunks of whole files - per file, per module,
or in groups of about ``target_size`` bytes - each chunk a zip archive that
keeps the files' paths relative to the tree's root.

The tree is a folder (local or on an object store), or a zip or tar archive
(``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``) given as the source itself. An
archive is listed by the planning task, which refuses unsafe members before
any chunk exists (see :mod:`bytenite_nb.archives`); each chunk then names
the archive and its members, and the worker that runs it writes a zip of
those members, read from the archive.

Which files: ``.gitignore`` files (at the root and in any folder, with
negation, as git reads them: a file inside an ignored folder stays ignored),
then ``include`` and ``exclude`` (gitwildmatch patterns, relative to the
root); ``.git/`` folders never. ``.gitignore`` files themselves are part of
the tree.

Modules (``by: module``): a file at the root is a module of its own (its
name); a file in a folder belongs to its top-level folder, unless that
folder is not a Python package (no ``__init__.py``) and the file is inside
one deeper down: then to the outermost such package (``src/mypkg``).
"""

from __future__ import annotations

import heapq
import math
import os
import posixpath
import zipfile
from dataclasses import dataclass

from ..archives import (DEFAULT_MAX_EXPANDED, DEFAULT_MAX_RATIO, Budget, archive_kind, copy_members, open_tar_stream,
                        tar_files, zip_files)
from ..exceptions import PartitionError, UnsafePathError
from .base import INFO_NAMES, ChunkRef, Partitioner, Source

#: CHUNK_INFO lists at most this many file names (``file_count`` says how many there are)
FILE_LIST_CAP = INFO_NAMES
#: a .gitignore larger than this is not read as one
GITIGNORE_LIMIT = 2**20

_GLOBS = {"type": "array", "items": {"type": "string", "minLength": 1}}


@dataclass(frozen=True)
class TreeFile:
    """One file of the tree: its path from the root, its size, and its URL
    (None for a member of an archive)."""

    name: str
    size: int
    url: str | None = None


class IgnoreRules:
    """What the tree's ``.gitignore`` files leave out, read as git reads them.

    >>> rules = IgnoreRules({"": ["*.log", "build/"], "pkg": ["!keep.log"]})
    >>> [rules.ignored(p) for p in ("a.log", "pkg/keep.log", "build/x.py", "pkg/mod.py")]
    [True, False, True, False]
    """

    def __init__(self, gitignores: dict[str, list[str]]):
        import pathspec

        self.specs = {folder: pathspec.GitIgnoreSpec.from_lines(lines) for folder, lines in gitignores.items()}

    def ignored(self, path: str) -> bool:
        parts = path.split("/")
        # a folder git ignores hides everything in it, whatever rules deeper down say
        for depth in range(1, len(parts)):
            if self._decide(parts[:depth], folder=True):
                return True
        return self._decide(parts, folder=False)

    def _decide(self, parts: list[str], folder: bool) -> bool:
        result = False
        for depth in range(len(parts)):  # each .gitignore above the path, the deepest last (it wins)
            spec = self.specs.get("/".join(parts[:depth]))
            if spec is not None:
                found = spec.check_file("/".join(parts[depth:]) + ("/" if folder else ""))
                if found.include is not None:
                    result = found.include
        return result


def module_of(name: str, packages: set[str]) -> str:
    """The module a file belongs to (see the module's docstring).

    >>> module_of("setup.py", set()), module_of("docs/a/b.md", set()), module_of("src/pkg/x/y.py", {"src/pkg"})
    ('setup.py', 'docs', 'src/pkg')
    """
    parts = name.split("/")
    if len(parts) == 1:
        return name
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        if folder in packages:
            return folder
    return parts[0]


def balanced_groups(files: list[TreeFile], target_size: int) -> list[list[TreeFile]]:
    """Files in groups of about ``target_size`` bytes, files kept whole: as many
    groups as the total needs, each file (largest first, then by name) into the
    group holding the fewest bytes so far (the lowest numbered on a tie);
    groups keep name order inside.

    >>> fs = [TreeFile("a", 5), TreeFile("b", 4), TreeFile("c", 3), TreeFile("d", 2)]
    >>> [[f.name for f in g] for g in balanced_groups(fs, 7)]
    [['a', 'd'], ['b', 'c']]
    """
    total = sum(f.size for f in files)
    count = max(1, min(len(files), math.ceil(total / target_size)))
    heap = [(0, i) for i in range(count)]
    groups: list[list[TreeFile]] = [[] for _ in range(count)]
    for f in sorted(files, key=lambda f: (-f.size, f.name)):
        held, i = heapq.heappop(heap)
        groups[i].append(f)
        heapq.heappush(heap, (held + f.size, i))
    return [sorted(g, key=lambda f: f.name) for g in groups if g]


class Codebase(Partitioner):
    """Shard a source tree - a folder, or a zip or tar archive given as the
    source - into chunks of whole files: ``by`` ``file`` (one per file),
    ``module`` (the default: each top-level folder or Python package, each
    file at the root on its own) or ``size`` (balanced groups of about
    ``target_size`` bytes). Honours ``.gitignore`` files (root and nested),
    ``include``/``exclude`` patterns (gitwildmatch) and skips ``.git/``.
    Each chunk is a zip keeping relative paths; its ``CHUNK_INFO`` gives the
    ``module``, ``files`` (the first 200 names), ``file_count`` and
    ``total_size``. Archive members that could escape the tree (``..``,
    absolute names, links, devices) or expand past ``max_expanded`` bytes or
    ``max_ratio``:1 are refused before anything is written."""

    schema = {
        "type": "object",
        "properties": {
            "by": {"enum": ["file", "module", "size"], "default": "module",
                   "description": "One chunk per file, per module (top-level folder or Python package), "
                                  "or per group of about target_size bytes."},
            "target_size": {"type": "integer", "minimum": 1, "default": 1048576,
                            "description": "Bytes per chunk with by: size (files are kept whole)."},
            "include": {**_GLOBS, "description": "Only files matching one of these patterns (.gitignore syntax)."},
            "exclude": {**_GLOBS, "description": "Leave out files matching one of these patterns (.gitignore syntax)."},
            "gitignore": {"type": "boolean", "default": True, "description": "Leave out what .gitignore files say."},
            "max_expanded": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_EXPANDED,
                             "description": "An archive source may unpack to at most this many bytes."},
            "max_ratio": {"type": "number", "minimum": 1, "default": DEFAULT_MAX_RATIO,
                          "description": "Refuse archive members (over 1 MiB) compressed more than this ratio."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        archive = self._archive_of(source)
        if archive is not None:
            files, gitignores = self._list_archive(source, archive, params)
        else:
            files = [TreeFile(f.name, f.size or 0, f.url) for f in source.files
                     if ".git" not in f.name.split("/")]
            gitignores = {}
            if params.get("gitignore", True):
                for f in files:
                    if posixpath.basename(f.name) == ".gitignore":
                        with source.open(f.url) as stream:
                            gitignores[posixpath.dirname(f.name)] = _lines(stream.read(GITIGNORE_LIMIT))
        kept = self._select(files, gitignores, params)
        if archive is None and source.location.is_local:
            _refuse_links(kept)
        if not kept and source.files:
            raise PartitionError(f"dataSource: no file of {source.location.url} is left after .gitignore, "
                                 "include and exclude")
        for module, group in self._group(kept, params):
            yield self._chunk(module, group, archive)

    # -- what the tree holds

    @staticmethod
    def _archive_of(source: Source):
        """The source's file when the source is one archive (not a folder holding one)."""
        if len(source.files) != 1 or source.location.url is None:
            return None
        f = source.files[0]
        if archive_kind(f.name) and f.url.rstrip("/") == source.location.url.rstrip("/"):
            return f
        return None

    def _list_archive(self, source: Source, archive, params: dict):
        name = archive.name
        budget = Budget(name, params.get("max_expanded", DEFAULT_MAX_EXPANDED),
                        params.get("max_ratio", DEFAULT_MAX_RATIO))
        want_gitignores = params.get("gitignore", True)
        files: list[TreeFile] = []
        gitignores: dict[str, list[str]] = {}
        with source.open(archive.url) as stream:
            if archive_kind(name) == "zip":
                try:
                    zf = zipfile.ZipFile(stream)
                except zipfile.BadZipFile as exc:
                    raise PartitionError(f"dataSource: {name} is not a readable zip archive: {exc}") from exc
                with zf:
                    found = list(zip_files(zf, name))
                    for info, member in found:  # every member checked before any is read
                        budget.add(info.filename, info.file_size, info.compress_size)
                    for info, member in found:
                        if ".git" in member.split("/"):
                            continue
                        files.append(TreeFile(member, info.file_size))
                        if want_gitignores and posixpath.basename(member) == ".gitignore":
                            with zf.open(info) as src:
                                gitignores[posixpath.dirname(member)] = _lines(src.read(GITIGNORE_LIMIT))
            else:
                with open_tar_stream(stream, name) as tf:
                    for info, member in tar_files(tf, name):
                        budget.add(info.name, info.size)
                        budget.check_stream_ratio(info.name, archive.size)
                        if ".git" in member.split("/"):
                            continue
                        files.append(TreeFile(member, info.size))
                        if want_gitignores and posixpath.basename(member) == ".gitignore":
                            gitignores[posixpath.dirname(member)] = _lines(
                                tf.extractfile(info).read(GITIGNORE_LIMIT))
        files.sort(key=lambda f: f.name)
        return files, gitignores

    @staticmethod
    def _select(files: list[TreeFile], gitignores: dict[str, list[str]], params: dict) -> list[TreeFile]:
        import pathspec

        rules = IgnoreRules(gitignores) if gitignores else None
        include = pathspec.GitIgnoreSpec.from_lines(params["include"]) if params.get("include") else None
        exclude = pathspec.GitIgnoreSpec.from_lines(params["exclude"]) if params.get("exclude") else None
        return [f for f in files
                if not (rules and rules.ignored(f.name))
                and (include is None or include.match_file(f.name))
                and not (exclude and exclude.match_file(f.name))]

    # -- chunks

    @staticmethod
    def _group(files: list[TreeFile], params: dict):
        by = params.get("by", "module")
        packages = {posixpath.dirname(f.name) for f in files if posixpath.basename(f.name) == "__init__.py"}
        if by == "file":
            return [(module_of(f.name, packages), [f]) for f in files]
        if by == "size":
            return [(None, g) for g in balanced_groups(files, params.get("target_size", 2**20))]
        modules: dict[str, list[TreeFile]] = {}
        for f in files:
            modules.setdefault(module_of(f.name, packages), []).append(f)
        return sorted(modules.items())

    @staticmethod
    def _chunk(module: str | None, files: list[TreeFile], archive) -> ChunkRef:
        names = tuple(f.name for f in files)
        total = sum(f.size for f in files)
        label = module if module is not None else (names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}")
        meta = {"module": module, "files": list(names[:FILE_LIST_CAP]), "file_count": len(names),
                "total_size": total}
        if archive is None:
            return ChunkRef(members=tuple(f.url for f in files), names=names, size=total, label=label, meta=meta)
        meta.update(archive=archive.name, archive_kind=archive_kind(archive.name))
        return ChunkRef(url=archive.url, names=names, size=total, label=label, meta=meta)

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """A chunk of an archive source: a zip of its members, read from the
        archive (a tar is read front to back); members are checked again, and
        none may give more bytes than it declared. Other chunks as usual."""
        kind = ref.meta.get("archive_kind")
        if not kind:
            return super().materialise(ref, dest, storage_options)
        from fsspec.core import url_to_fs

        name = ref.meta.get("archive") or ref.url
        wanted = set(ref.names)
        if os.path.lexists(dest):
            os.unlink(dest)
        fs, path = url_to_fs(ref.url, **(storage_options or {}))
        with fs.open(path, "rb") as stream, \
                zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as out:
            wanted = copy_members(stream, kind, name, wanted, out)
        if wanted:
            os.unlink(dest)
            raise PartitionError(f"chunk {ref.index}: {name} has no member {sorted(wanted)[0]!r} "
                                 "(did the source change after planning?)")
        return os.path.getsize(dest)


def _refuse_links(files: list[TreeFile]) -> None:
    """A symlink in a local tree could point anywhere: refused, naming it (``exclude`` leaves it out)."""
    for f in files:
        path = f.url.removeprefix("file://")
        if os.path.islink(path):
            raise UnsafePathError(f"dataSource: {f.name} is a symbolic link (to {os.readlink(path)!r}); "
                                  "the tree is read as regular files only: leave it out with exclude")


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8", errors="replace").splitlines()
