"""``video-ladder``: one chunk per target rendition of a video (an encoding ladder).

Each chunk carries the source video - whole, or one segment of about
``segment_seconds`` cut at keyframes by stream copy - and its rendition in
CHUNK_INFO; the app (an ffmpeg command, for instance) transcodes it as the
rendition says, and the ``video-ladder`` assembler packages the results as
HLS. Planning reads the video's packet headers only (no decoding), and a
rendition taller than the source is refused before anything runs.
"""

from __future__ import annotations

import posixpath

from ..exceptions import FieldError, PartitionError
from ..media import media_input
from ..video_packets import VideoIndex, plan_cuts, scan, span_of
from .base import ChunkRef, Partitioner, Source
from .video_frames import VideoFrames, chunk_meta

#: a rendition's name is a folder of the output: plain characters only
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

RENDITION_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN,
                 "description": "Name of the rendition (its folder in the output); '<height>p' by default."},
        "height": {"type": "integer", "minimum": 2, "description": "Height in pixels (width keeps the aspect)."},
        "codec": {"enum": ["h264", "hevc"], "default": "h264", "description": "Video codec to encode with."},
        "bitrate": {"type": ["string", "integer"], "pattern": r"^[0-9]+(\.[0-9]+)?[kKmM]?$",
                    "description": "Target video bitrate (bits/s, or like '800k', '2.5M')."},
        "crf": {"type": "integer", "minimum": 0, "maximum": 51, "description": "Constant quality instead of a bitrate."},
    },
    "required": ["height"],
    "additionalProperties": False,
}


def renditions_of(params: dict, field: str = "params.partitioner.renditions") -> list[dict]:
    """The renditions with their names filled in and checked: each has a bitrate or a crf
    (not both), names are unique.

    >>> renditions_of({"renditions": [{"height": 360, "crf": 28}, {"name": "hd", "height": 720, "bitrate": "3M"}]})
    [{'name': '360p', 'height': 360, 'codec': 'h264', 'crf': 28}, {'name': 'hd', 'height': 720, 'codec': 'h264', \
'bitrate': '3M'}]
    """
    out, seen = [], set()
    for i, r in enumerate(params.get("renditions") or []):
        name = r.get("name") or f"{r['height']}p"
        if ("bitrate" in r) == ("crf" in r):
            raise FieldError(f"{field}[{i}]", f"rendition {name!r} needs a bitrate or a crf (one of them)")
        if name in seen:
            raise FieldError(f"{field}[{i}].name", f"two renditions are named {name!r}")
        seen.add(name)
        rendition = {"name": name, "height": r["height"], "codec": r.get("codec", "h264")}
        rendition.update({k: r[k] for k in ("bitrate", "crf") if k in r})
        out.append(rendition)
    if not out:
        raise FieldError(field, "give at least one rendition")
    return out


def check_heights(renditions: list[dict], index: VideoIndex, field: str = "params.partitioner.renditions") -> None:
    """Refuse a rendition taller than the source: upscaling adds bytes, not picture."""
    for i, r in enumerate(renditions):
        if r["height"] > index.height:
            raise FieldError(f"{field}[{i}].height",
                             f"rendition {r['name']!r} is {r['height']} pixels high, larger than the source "
                             f"{index.name}, which is {index.width}x{index.height}")


def package_folders(names: list[str], where: str) -> dict[str, str]:
    """Where each video's HLS package goes: the output's top for one video, else a
    folder named after the video (``talks/a.mp4`` -> ``talks/a``). Decided from the
    plan, so the layout never depends on which chunks succeeded; two videos of one
    folder name (``a.mp4``, ``a.mov``) are refused before any work.

    >>> package_folders(["a.mp4"], "in/"), package_folders(["a.mp4", "talks/b.mov"], "in/")
    ({'a.mp4': ''}, {'a.mp4': 'a', 'talks/b.mov': 'talks/b'})
    >>> package_folders(["a.mp4", "a.mov"], "in/")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.PartitionError: dataSource: a.mp4 and a.mov would both be packaged in a/: rename one
    """
    if not names:
        raise PartitionError(f"dataSource: no video in {where}")
    if len(names) == 1:
        return {names[0]: ""}
    folders: dict[str, str] = {}
    taken: dict[str, str] = {}
    for name in names:
        folder = posixpath.splitext(name)[0]
        if folder in taken:
            raise PartitionError(f"dataSource: {taken[folder]} and {name} would both be packaged in {folder}/: "
                                 "rename one")
        taken[folder], folders[name] = name, folder
    return folders


class VideoLadder(Partitioner):
    """Resolution-specific fan-out: for each video of the source, one chunk
    per rendition (renditions: a list of {name, height, codec h264|hevc,
    bitrate or crf}), or with segment_seconds, one per rendition and segment
    (segments of about that length, cut at keyframes by stream copy). Each
    chunk holds the source video or segment; its CHUNK_INFO gives rendition
    ({name, height, codec, bitrate or crf}), segment (when segmented), source,
    position, start, end, fps, start_frame, end_frame, width and height of the
    source. The app transcodes the chunk as its rendition says; the
    video-ladder assembler packages the results as HLS, one package per
    video. A rendition taller than a video fails the job naming the
    rendition, the video and its size."""

    schema = {
        "type": "object",
        "properties": {
            "renditions": {"type": "array", "minItems": 1, "items": RENDITION_SCHEMA,
                           "description": "The target renditions."},
            "segment_seconds": {"type": "number", "exclusiveMinimum": 0,
                                "description": "Also cut the video into segments of about this many seconds "
                                               "(at keyframes), one chunk per rendition and segment."},
        },
        "required": ["renditions"],
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        renditions = renditions_of(params)
        seconds = params.get("segment_seconds")
        packages = package_folders([f.name for f in source.files], source.location.url)
        for f in source.files:
            with media_input(f.url, source.location.storage_options) as stream:
                index = scan(stream, f.name)
            check_heights(renditions, index)
            segments = plan_cuts(index, seconds_per_chunk=seconds) if seconds else [(0, index.frames)]
            for rendition in renditions:
                for position, (start, end) in enumerate(segments):
                    meta = chunk_meta(index, position, start, end, False)
                    meta.update(rendition=rendition, package=packages[f.name])
                    label = f"{f.name} {rendition['name']}"
                    if seconds:
                        meta["segment"] = position
                        meta["packets"] = span_of(index, start, end).to_meta()
                        label += f" segment {position}"
                    yield ChunkRef(url=f.url, size=sum(index.sizes[start:end]) if seconds else f.size, label=label,
                                   meta=meta)

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """The whole source, or the segment's packets by stream copy."""
        if "packets" not in ref.meta:
            return super().materialise(ref, dest, storage_options)
        return VideoFrames().materialise(ref, dest, storage_options)


__all__ = ["VideoLadder", "check_heights", "package_folders", "renditions_of"]
