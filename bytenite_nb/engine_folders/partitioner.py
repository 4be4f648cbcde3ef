"""A ByteNite partitioner engine folder as a :class:`~bytenite_nb.partitioners.Partitioner`.

The engine gets the source files in ``SOURCE_DIR`` (read-only), writes its
chunks into ``CHUNKS_DIR`` as ``data_0.bin``, ``data_1.bin``, ... and reads
its params from ``PARTITIONER_PARAMS`` (JSON). Its chunks are moved into the
job's staging area (``Source.workspace``) and become the job's chunks, in
number order.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading

from fsspec.core import url_to_fs

from ..exceptions import AppError, PartitionError, UnsafePathError
from ..transfer import link_or_copy, list_tree, safe_join
from ..partitioners.base import ChunkRef, Partitioner, Source
from .folder import EngineFolderSpec
from .run import EngineFolder, run_engine

CHUNK_NAME = re.compile(r"^data_(0|[1-9][0-9]*)\.bin$")
_previews: list[str] = []  # preview folders, removed at exit unless discarded earlier
_previews_lock = threading.Lock()


class EnginePartitioner(EngineFolderSpec, Partitioner):
    """A partitioner engine folder (``type: partitioner``), run as a process or in its image.

    >>> EnginePartitioner("engines/split-csv", container=False).to_spec()
    {'folder': 'engines/split-csv', 'container': False}
    """

    kind = "partitioner"

    def plan(self, source: Source, params: dict) -> list[ChunkRef]:
        m = self.manifest
        what = f"partitioner engine {m.tag}"
        work = tempfile.mkdtemp(prefix="bytenite-nb-partitioner-")
        try:
            source_dir = os.path.join(work, "source")
            chunks_dir = os.path.join(work, "chunks")
            os.mkdir(source_dir)
            os.mkdir(chunks_dir)
            # Hard links only where the engine cannot write through them (a read-only mount).
            fill_source_dir(source, source_dir, link=self.image is not None)
            try:
                run_engine(m, self.image, [EngineFolder("SOURCE_DIR", source_dir),
                                           EngineFolder("CHUNKS_DIR", chunks_dir, writable=True)],
                           "PARTITIONER_PARAMS", params, what)
            except AppError as exc:
                raise PartitionError(str(exc)) from exc
            chunks = chunk_files(chunks_dir, what)
            return publish_chunks(chunks_dir, chunks, source.workspace, source.location.storage_options)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def fill_source_dir(source: Source, folder: str, *, link: bool = False) -> None:
    """Put every source file into ``folder`` under its name relative to the source
    (copies, or hard links with ``link`` - only for a folder the engine cannot
    write to; names that would leave the folder are refused)."""
    for f in source.files:
        dest = safe_join(folder, f.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fs, path = url_to_fs(f.url, **source.location.storage_options)
        if source.location.is_local and link:
            link_or_copy(path, dest)
        elif source.location.is_local:
            shutil.copyfile(path, dest)
        else:
            fs.get_file(path, dest)


def chunk_files(chunks_dir: str, what: str) -> list[tuple[str, int]]:
    """The engine's chunk files ``(name, size)`` in number order; every other
    file, a gap in the numbers or a symlink is an error naming it."""
    try:
        files = list_tree(chunks_dir, what=f"{what}: CHUNKS_DIR")
    except UnsafePathError as exc:
        raise PartitionError(str(exc)) from exc
    numbered = []
    for name, size in files:
        m = CHUNK_NAME.match(name)
        if not m:
            raise PartitionError(f"{what}: CHUNKS_DIR holds {name!r}; chunks must be named data_0.bin, data_1.bin, ...")
        numbered.append((int(m.group(1)), name, size))
    numbered.sort()
    for expected, (number, name, _) in enumerate(numbered):
        if number != expected:
            raise PartitionError(f"{what}: CHUNKS_DIR has {name!r} but no data_{expected}.bin; "
                                 "chunks must be numbered 0, 1, 2, ... without gaps")
    return [(name, size) for _, name, size in numbered]


def publish_chunks(chunks_dir: str, chunks: list[tuple[str, int]], workspace: str | None,
                   storage_options: dict) -> list[ChunkRef]:
    """Move the chunk files into ``workspace`` (a private temporary folder for a
    preview) and return references to them."""
    if workspace is None:
        workspace = "file://" + tempfile.mkdtemp(prefix="bytenite-nb-preview-chunks-")
        with _previews_lock:
            _previews.append(workspace[len("file://"):])
    fs, root = url_to_fs(workspace, **storage_options)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    root = root.rstrip("/")
    if local:
        # A re-planned job replaces the chunks of an earlier, interrupted plan.
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
    refs = []
    for name, size in chunks:
        src = os.path.join(chunks_dir, name)
        dest = f"{root}/{name}"
        if local:
            shutil.move(src, dest)
        else:
            fs.put_file(src, dest)
        refs.append(ChunkRef(url=fs.unstrip_protocol(dest), start=0, end=None, size=size, label=name))
    return refs


def discard_previews(refs) -> int:
    """Remove the chunk copies that a preview plan (one without a workspace)
    made for ``refs``; return how many preview folders went. A process that
    lives on after showing a preview (the Jupyter server) calls this once it
    is done with the references; otherwise the copies stay until it exits.

    >>> discard_previews([ChunkRef(url="file:///data/in.txt", start=0, end=10)])  # not a preview's
    0
    """
    folders = {os.path.dirname(r.url[len("file://"):]) for r in refs if (r.url or "").startswith("file://")}
    removed = 0
    with _previews_lock:
        for folder in folders:
            if folder in _previews:
                _previews.remove(folder)
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed


@atexit.register
def _remove_previews() -> None:
    with _previews_lock:
        for folder in _previews:
            shutil.rmtree(folder, ignore_errors=True)
        _previews.clear()
