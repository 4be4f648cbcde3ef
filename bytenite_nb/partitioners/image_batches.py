"""``image-batches``: images in batches, for inference.

The images come from a folder or a prefix, or from one zip or tar archive
given as the source: its members are listed (and checked: no name leaving
the tree, no link, no zip bomb - see :mod:`bytenite_nb.archives`) by the
planning task, and the worker that runs a chunk copies its members out of
the archive. Every chunk is a zip of its images, whatever their number.
"""

from __future__ import annotations

import os
import zipfile

from ..archives import DEFAULT_MAX_EXPANDED, DEFAULT_MAX_RATIO, Budget, archive_kind, copy_members, list_members
from ..exceptions import PartitionError
from ..images import matches
from .base import ChunkRef, Partitioner, Source

DEFAULT_IMAGES_PER_CHUNK = 32


def batches(sizes: list[int], per_chunk: int | None, max_bytes: int | None) -> list[tuple[int, int]]:
    """Runs ``[start, end)`` of images in order, each at most ``per_chunk`` images and at
    most ``max_bytes`` bytes (an image larger than ``max_bytes`` on its own).

    >>> batches([5, 5, 5, 20, 1], None, 10)
    [(0, 2), (2, 3), (3, 4), (4, 5)]
    >>> batches([1, 1, 1], 2, None)
    [(0, 2), (2, 3)]
    """
    out, start, held = [], 0, 0
    for i, size in enumerate(sizes):
        full = (per_chunk is not None and i - start >= per_chunk) or \
               (max_bytes is not None and i > start and held + size > max_bytes)
        if full:
            out.append((start, i))
            start, held = i, 0
        held += size
    if start < len(sizes):
        out.append((start, len(sizes)))
    return out


class ImageBatches(Partitioner):
    """Images in batches for inference: from a folder or a prefix, or from a
    zip or tar archive given as the source, the images whose name matches
    pattern (by default, every name with an image extension Pillow knows), in
    name order, images_per_chunk to a chunk (32 unless max_bytes is given)
    and/or at most max_bytes bytes (an image larger than that on its own).
    Every chunk is a zip of its images, keeping their relative names; its
    CHUNK_INFO lists the names (the first 200) and gives count and bytes.
    Archive members that could escape the tree (.., absolute names, links,
    devices) or expand past max_expanded bytes or max_ratio:1 are refused
    before anything is written."""

    schema = {
        "type": "object",
        "properties": {
            "images_per_chunk": {"type": "integer", "minimum": 1,
                                 "description": f"Images in each chunk ({DEFAULT_IMAGES_PER_CHUNK} unless max_bytes "
                                                "is given)."},
            "max_bytes": {"type": "integer", "minimum": 1,
                          "description": "At most this many bytes of images in each chunk."},
            "pattern": {"type": "string",
                        "description": "Only images whose name matches this glob (e.g. '*.jpg'); by default "
                                       "every name with an image extension."},
            "max_expanded": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_EXPANDED,
                             "description": "An archive source may unpack to at most this many bytes."},
            "max_ratio": {"type": "number", "minimum": 1, "default": DEFAULT_MAX_RATIO,
                          "description": "Refuse archive members (over 1 MiB) compressed more than this ratio."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        per_chunk, max_bytes = params.get("images_per_chunk"), params.get("max_bytes")
        if per_chunk is None and max_bytes is None:
            per_chunk = DEFAULT_IMAGES_PER_CHUNK
        pattern = params.get("pattern")
        archive = _archive_of(source)
        if archive is not None:
            kind = archive_kind(archive.name)
            budget = Budget(archive.name, params.get("max_expanded", DEFAULT_MAX_EXPANDED),
                            params.get("max_ratio", DEFAULT_MAX_RATIO))
            with source.open(archive.url) as stream:
                members = list_members(stream, kind, archive.name, budget, archive.size)
            images = sorted((name, size, None) for name, size in members if matches(name, pattern))
        else:
            images = sorted((f.name, f.size or 0, f.url) for f in source.files if matches(f.name, pattern))
        if not images and source.files:
            raise PartitionError(f"dataSource: no image of {source.location.url} matches "
                                 f"{pattern or 'an image extension'}")
        for start, end in batches([size for _, size, _ in images], per_chunk, max_bytes):
            group = images[start:end]
            names = tuple(name for name, _, _ in group)
            total = sum(size for _, size, _ in group)
            meta = {"count": len(group), "bytes": total}
            label = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
            if archive is None:
                yield ChunkRef(members=tuple(url for _, _, url in group), names=names, size=total, label=label,
                               meta=meta)
            else:
                meta.update(archive=archive.name, archive_kind=archive_kind(archive.name))
                yield ChunkRef(url=archive.url, names=names, size=total, label=label, meta=meta)

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """A chunk of an archive source: a zip of its members copied out of the archive
        (checked again). Other chunks: the base zip of member files."""
        kind = ref.meta.get("archive_kind")
        if not kind:
            return super().materialise(ref, dest, storage_options)
        from fsspec.core import url_to_fs

        name = ref.meta.get("archive") or ref.url
        if os.path.lexists(dest):
            os.unlink(dest)
        fs, path = url_to_fs(ref.url, **(storage_options or {}))
        with fs.open(path, "rb") as stream, \
                zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as out:
            missing = copy_members(stream, kind, name, set(ref.names), out)
        if missing:
            os.unlink(dest)
            raise PartitionError(f"chunk {ref.index}: {name} has no member {sorted(missing)[0]!r} "
                                 "(did the source change after planning?)")
        return os.path.getsize(dest)


def _archive_of(source: Source):
    """The source's file when the source is one archive (not a folder holding one)."""
    if len(source.files) != 1 or source.location.url is None:
        return None
    f = source.files[0]
    if archive_kind(f.name) and f.url.rstrip("/") == source.location.url.rstrip("/"):
        return f
    return None


__all__ = ["ImageBatches", "batches"]
