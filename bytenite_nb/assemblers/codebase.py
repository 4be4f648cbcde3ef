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
from ..transfer import BUFFER, copy_stream, safe_join
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

    def place(self, path: str, chunk: int, member: str) -> bool:
        """True when ``path`` is new (write it), False when a chunk wrote it already
        (compare the bytes); an error when a file and a folder would share a name."""
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
        return path not in self.seen

    def settle(self, path: str, chunk: int, digest: str) -> None:
        """Record the bytes of ``path``, or refuse other bytes than the first chunk's."""
        if path not in self.seen:
            self.seen[path] = (chunk, digest)
            return
        first, first_digest = self.seen[path]
        if first_digest != digest:
            raise AssemblyError(f"chunks {first} and {chunk} both write {path!r}, with different content")


class _Hashing:
    """A reader that hashes what passes through it."""

    def __init__(self, src: BinaryIO):
        self.src, self.digest = src, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.digest.update(data)
        return data

    def readinto(self, buffer) -> int:
        n = self.src.readinto(buffer)
        self.digest.update(memoryview(buffer)[:n])
        return n

    def drain(self) -> str:
        while self.read(BUFFER):
            pass
        return self.digest.hexdigest()


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
                for path, member, src, size in self._members(chunk, f, kind):
                    self._write_file(tree, output_dir, chunk.index, path, member, src, size)
            return None
        name = params.get("output_name") or ("codebase.zip" if mode == "zip" else "codebase.tar")
        target = output_path(output_dir, name)
        if mode == "zip":
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as out:
                for chunk, f, kind in plans:
                    for path, member, src, size in self._members(chunk, f, kind):
                        self._add_to_zip(tree, out, chunk.index, path, member, src, size)
        else:
            compressed = name.lower().endswith((".gz", ".tgz"))
            with tarfile.open(target, "w:gz" if compressed else "w", format=tarfile.PAX_FORMAT) as out:
                for chunk, f, kind in plans:
                    for path, member, src, size in self._members(chunk, f, kind):
                        self._add_to_tar(tree, out, chunk.index, path, member, src, size)
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
                 names_only: bool = False) -> Iterator[tuple[str, str, BinaryIO | None, int]]:
        """``(path in the tree, member as the result names it, its bytes, its size)`` of one result file."""
        where = f"chunk {chunk.index} result {f.name}"
        try:
            if kind == "file":
                path = member_name(where, f.name)
                if names_only:
                    yield path, f.name, None, f.size
                    return
                with f.open() as src:
                    yield path, f.name, src, f.size
            elif kind == "zip":
                with f.open() as stream, zipfile.ZipFile(stream) as zf:
                    for info, path in zip_files(zf, where):
                        if names_only:
                            yield path, info.filename, None, info.file_size
                            continue
                        with zf.open(info) as src:
                            yield path, info.filename, src, info.file_size
            else:
                with f.open() as stream, open_tar_stream(stream, where) as tf:
                    for info, path in tar_files(tf, where):
                        if names_only:
                            yield path, info.name, None, info.size
                            continue
                        with tf.extractfile(info) as src:
                            yield path, info.name, src, info.size
        except UnsafeArchiveError as exc:
            raise UnsafeArchiveError(exc.archive, exc.member, f"{exc.reason}; refusing to rebuild the tree") from exc
        except (zipfile.BadZipFile, tarfile.TarError) as exc:
            raise AssemblyError(f"{where}: not a readable archive: {exc}") from exc

    # -- writing the tree: a path seen before is only hashed and compared

    @staticmethod
    def _write_file(tree: _Tree, output_dir: str, chunk: int, path: str, member: str, src: BinaryIO,
                    size: int) -> None:
        reader = _Hashing(src)
        if tree.place(path, chunk, member):
            try:
                dest = safe_join(output_dir, path)
            except UnsafePathError as exc:
                raise UnsafeArchiveError(f"chunk {chunk}", member, str(exc)) from exc
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as out:
                copy_stream(reader, out)
        tree.settle(path, chunk, reader.drain())

    @staticmethod
    def _add_to_zip(tree, out: zipfile.ZipFile, chunk, path, member, src, size) -> None:
        reader = _Hashing(src)
        if tree.place(path, chunk, member):
            with out.open(path, "w", force_zip64=size > 2**31) as dst:
                copy_stream(reader, dst)
        tree.settle(path, chunk, reader.drain())

    @staticmethod
    def _add_to_tar(tree, out: tarfile.TarFile, chunk, path, member, src, size) -> None:
        reader = _Hashing(src)
        if tree.place(path, chunk, member):
            info = tarfile.TarInfo(path)
            info.size, info.mode = size, 0o644
            out.addfile(info, reader)
        tree.settle(path, chunk, reader.drain())
