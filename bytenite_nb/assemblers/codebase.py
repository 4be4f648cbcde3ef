"""``codebase``: a source tree rebuilt from its chunks' results.

Each result file that is a zip archive (by its content) or is named
``*.tar``, ``*.tar.gz`` or ``*.tgz`` is unpacked into the tree, keeping its
members' paths; any other result file is a file of the tree under its own
name (``unpack: false`` takes every result as a plain file). So the
``codebase`` partitioner -> ``identity`` -> ``codebase`` gives the tree back,
and an app may return either an archive or the files it rewrote.

Every member name is checked before it is written (no ``..``, no absolute
name, no link or device: the error names the chunk and the member), and two
chunks giving the same path with different bytes are refused, naming both
chunks; the same bytes twice are written once.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from typing import BinaryIO, Iterator

from ..archives import member_name, open_tar_stream, tar_files, zip_files
from ..exceptions import AssemblyError, UnsafeArchiveError, UnsafePathError
from ..schema import SAFE_NAME
from ..transfer import BUFFER, safe_join
from .base import Assembler, ChunkResult, ResultFile, output_path

TAR_NAMES = (".tar", ".tar.gz", ".tgz")


def is_zip(f: ResultFile) -> bool:
    """Whether a result file is a zip archive (read from its first bytes and its end).

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "r.bin")
    >>> with zipfile.ZipFile(path, "w") as zf:
    ...     zf.writestr("a.py", "x = 1")
    >>> is_zip(ResultFile("r.bin", os.path.getsize(path), "file://" + path, path))
    True
    """
    with f.open() as src:
        if src.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            return False
        src.seek(0)
        return zipfile.is_zipfile(src)


class _Tree:
    """Where each path of the rebuilt tree came from, to refuse conflicts."""

    def __init__(self):
        self.seen: dict[str, tuple[int, str]] = {}  # path -> (chunk, sha256)
        self.folders: set[str] = set()

    def claim(self, path: str, chunk: int, digest: str, member: str) -> bool:
        """True when ``path`` is new; False for the same bytes again; an error for other bytes."""
        if path in self.folders:
            raise AssemblyError(f"chunk {chunk}: {member!r} writes the file {path!r}, which another chunk "
                                "made a folder")
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in self.seen:
                raise AssemblyError(f"chunk {chunk}: {member!r} needs the folder {folder!r}, which chunk "
                                    f"{self.seen[folder][0]} wrote as a file")
            self.folders.add(folder)
        if path not in self.seen:
            self.seen[path] = (chunk, digest)
            return True
        first, first_digest = self.seen[path]
        if first_digest != digest:
            raise AssemblyError(f"chunks {first} and {chunk} both write {path!r}, with different content")
        return False


class Codebase(Assembler):
    """Rebuild the source tree from every chunk's results: zip and tar results
    are unpacked keeping their paths, other result files are files of the
    tree. ``archive``: ``none`` writes the files themselves, ``zip`` or
    ``tar`` one archive ``output_name`` (``.tar.gz``/``.tgz`` compressed).
    Refuses names that escape the tree, links and devices (naming the chunk
    and member), and two chunks writing one path with different bytes."""

    schema = {
        "type": "object",
        "properties": {
            "archive": {"enum": ["none", "zip", "tar"], "default": "none",
                        "description": "The tree as files (none), or as one zip or tar archive."},
            "output_name": {**SAFE_NAME, "description": "Name of the archive (default codebase.zip or "
                                                        "codebase.tar; .tar.gz compresses)."},
            "unpack": {"type": "boolean", "default": True,
                       "description": "Unpack zip and tar results (else every result file is a file of the tree)."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        mode = params.get("archive", "none")
        unpack = params.get("unpack", True)
        # names are checked for every result first: an unsafe one fails the job before any file is written
        plans = [(chunk, f, self._kind(chunk, f, unpack)) for chunk in results
                 for f in sorted(chunk.files, key=lambda f: f.name)]
        for chunk, f, kind in plans:
            for _ in self._members(chunk, f, kind, names_only=True):
                pass
        tree = _Tree()
        if mode == "none":
            for chunk, f, kind in plans:
                for path, member, src in self._members(chunk, f, kind):
                    self._write_file(tree, output_dir, chunk.index, path, member, src)
            return None
        name = params.get("output_name") or ("codebase.zip" if mode == "zip" else "codebase.tar")
        target = output_path(output_dir, name)
        if mode == "zip":
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as out:
                for chunk, f, kind in plans:
                    for path, member, src in self._members(chunk, f, kind):
                        self._add_to_zip(tree, out, output_dir, chunk.index, path, member, src)
        else:
            compressed = name.lower().endswith((".gz", ".tgz"))
            with tarfile.open(target, "w:gz" if compressed else "w", format=tarfile.PAX_FORMAT) as out:
                for chunk, f, kind in plans:
                    for path, member, src in self._members(chunk, f, kind):
                        self._add_to_tar(tree, out, output_dir, chunk.index, path, member, src)
        return None

    # -- reading results

    @staticmethod
    def _kind(chunk: ChunkResult, f: ResultFile, unpack: bool) -> str:
        if not unpack:
            return "file"
        if f.name.lower().endswith(TAR_NAMES):
            return "tar"
        return "zip" if is_zip(f) else "file"

    @staticmethod
    def _members(chunk: ChunkResult, f: ResultFile, kind: str,
                 names_only: bool = False) -> Iterator[tuple[str, str, BinaryIO | None]]:
        """``(path in the tree, member as the result names it, its bytes)`` of one result file."""
        where = f"chunk {chunk.index} result {f.name}"
        try:
            if kind == "file":
                path = member_name(where, f.name)
                if names_only:
                    yield path, f.name, None
                    return
                with f.open() as src:
                    yield path, f.name, src
            elif kind == "zip":
                with f.open() as stream, zipfile.ZipFile(stream) as zf:
                    for info, path in zip_files(zf, where):
                        if names_only:
                            yield path, info.filename, None
                            continue
                        with zf.open(info) as src:
                            yield path, info.filename, src
            else:
                with f.open() as stream, open_tar_stream(stream, where) as tf:
                    for info, path in tar_files(tf, where):
                        if names_only:
                            yield path, info.name, None
                            continue
                        with tf.extractfile(info) as src:
                            yield path, info.name, src
        except UnsafeArchiveError as exc:
            raise UnsafeArchiveError(exc.archive, exc.member, f"{exc.reason}; refusing to rebuild the tree") from exc
        except (zipfile.BadZipFile, tarfile.TarError) as exc:
            raise AssemblyError(f"{where}: not a readable archive: {exc}") from exc

    # -- writing the tree

    @staticmethod
    def _spool(output_dir: str, src: BinaryIO) -> tuple[str, str]:
        """The bytes of a member in a temporary file of the output folder, and their sha256."""
        digest = hashlib.sha256()
        tmp = os.path.join(output_dir, f".codebase-spool-{os.getpid()}-{id(src)}")
        with open(tmp, "wb") as out:
            while data := src.read(BUFFER):
                digest.update(data)
                out.write(data)
        return tmp, digest.hexdigest()

    def _write_file(self, tree: _Tree, output_dir: str, chunk: int, path: str, member: str, src: BinaryIO) -> None:
        tmp, digest = self._spool(output_dir, src)
        try:
            if tree.claim(path, chunk, digest, member):
                try:
                    dest = safe_join(output_dir, path)
                except UnsafePathError as exc:
                    raise UnsafeArchiveError(f"chunk {chunk}", member, str(exc)) from exc
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _add_to_zip(self, tree, out: zipfile.ZipFile, output_dir, chunk, path, member, src) -> None:
        tmp, digest = self._spool(output_dir, src)
        try:
            if tree.claim(path, chunk, digest, member):
                out.write(tmp, path)
        finally:
            os.unlink(tmp)

    def _add_to_tar(self, tree, out: tarfile.TarFile, output_dir, chunk, path, member, src) -> None:
        tmp, digest = self._spool(output_dir, src)
        try:
            if tree.claim(path, chunk, digest, member):
                info = tarfile.TarInfo(path)
                info.size = os.path.getsize(tmp)
                info.mode = 0o644
                with open(tmp, "rb") as data:
                    out.addfile(info, data)
        finally:
            os.unlink(tmp)

