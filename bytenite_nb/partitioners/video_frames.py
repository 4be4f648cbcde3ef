"""``video-frames``: a video in chunks of frames or seconds.

Planning reads the video's packet headers with PyAV's demuxer (no frame is
decoded) and finds the *clean cuts*: keyframes of closed GOPs (see
:mod:`bytenite_nb.video_packets`). By default each chunk runs from one clean
cut to the first one at least ``frames_per_chunk`` frames (or
``seconds_per_chunk`` seconds) later, and the worker that runs it writes its
packets by stream copy: every frame stays bit for bit what it was, so
``video-stitch`` gives the source back.

With ``exact: true`` every chunk has exactly the frames asked for: the worker
copies the whole GOPs inside the chunk and re-encodes only the fragments at
its two ends (decoding from the keyframe before each), so the cost of
exactness is a GOP or two per chunk, not the whole video.
"""

from __future__ import annotations

from ..exceptions import FieldError
from ..media import media_input
from ..video_packets import PacketSpan, VideoIndex, copy_packets, plan_cuts, scan, span_of
from .base import ChunkRef, Partitioner, Source

DEFAULT_SECONDS = 10.0


def chunk_meta(index: VideoIndex, position: int, start: int, end: int, exact: bool) -> dict:
    """The CHUNK_INFO of frames ``[start, end)`` of a video (see the media conventions).

    >>> from fractions import Fraction
    >>> idx = VideoIndex("a.mp4", "h264", 4, 2, 2.0, Fraction(1, 2), [0, 1, 2, 3], [0, 1, 2, 3], [1] * 4, [0, 2], 4)
    >>> chunk_meta(idx, 1, 2, 4, False)
    {'source': 'a.mp4', 'position': 1, 'start': 1.0, 'end': 2.0, 'fps': 2.0, 'start_frame': 2, 'end_frame': 4, \
'exact': False, 'width': 4, 'height': 2, 'codec': 'h264'}
    """
    return {"source": index.name, "position": position, "start": index.frame_time(start), "end": index.frame_time(end),
            "fps": index.fps, "start_frame": start, "end_frame": end, "exact": exact, "width": index.width,
            "height": index.height, "codec": index.codec}


def frames_wanted(params: dict, fps: float, field: str = "params.partitioner") -> tuple[int | None, float | None]:
    """``(frames_per_chunk, seconds_per_chunk)`` from the params: one of them (10 seconds
    when neither is given); with ``exact``, seconds become a whole number of frames.

    >>> frames_wanted({"seconds_per_chunk": 2, "exact": True}, 25.0)
    (50, None)
    """
    frames, seconds = params.get("frames_per_chunk"), params.get("seconds_per_chunk")
    if frames is not None and seconds is not None:
        raise FieldError(f"{field}.seconds_per_chunk", "give frames_per_chunk or seconds_per_chunk, not both")
    if frames is None and seconds is None:
        seconds = DEFAULT_SECONDS
    if params.get("exact") and frames is None:
        if fps <= 0:
            raise FieldError(f"{field}.seconds_per_chunk", "the video does not give its frame rate: "
                                                           "use frames_per_chunk with exact: true")
        frames, seconds = max(1, round(seconds * fps)), None
    return frames, seconds


class VideoFrames(Partitioner):
    """Every video of the source in chunks of frames_per_chunk frames or
    seconds_per_chunk seconds (10 seconds by default). By default chunks are
    cut at keyframes by stream copy (no re-encoding; a chunk runs to the
    first keyframe at least that far on, so it may be longer); exact: true
    gives every chunk exactly that many frames (the last one the rest) by
    re-encoding only the partial GOPs at its ends (H.264, with libx264 at
    exact_crf). Chunks are MP4 (MPEG-TS when exact), video and audio. Each
    chunk's CHUNK_INFO gives source, position (in its source), start and end
    (seconds), fps, start_frame, end_frame (excluded), exact, width, height
    and codec. A file FFmpeg cannot read, without video or truncated fails
    the job naming it."""

    schema = {
        "type": "object",
        "properties": {
            "frames_per_chunk": {"type": "integer", "minimum": 1, "description": "Frames in each chunk."},
            "seconds_per_chunk": {"type": "number", "exclusiveMinimum": 0,
                                  "description": f"Seconds in each chunk ({DEFAULT_SECONDS:g} unless "
                                                 "frames_per_chunk is given)."},
            "exact": {"type": "boolean", "default": False,
                      "description": "Exactly that many frames per chunk: re-encode the partial GOPs at the cuts."},
            "exact_crf": {"type": "integer", "minimum": 0, "maximum": 51, "default": 16,
                          "description": "Quality (libx264 CRF) of the frames re-encoded at the cuts."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        exact = bool(params.get("exact"))
        for f in source.files:
            with media_input(f.url, source.location.storage_options) as stream:
                index = scan(stream, f.name)
            frames, seconds = frames_wanted(params, index.fps)
            if exact:
                from ..video_exact import exact_plan

                for position, (start, end, pieces) in enumerate(exact_plan(index, frames, f.name)):
                    meta = chunk_meta(index, position, start, end, True)
                    meta["pieces"] = pieces
                    yield ChunkRef(url=f.url, size=sum(index.sizes[start:end]), label=_label(f.name, start, end),
                                   meta={**meta, "exact_crf": params.get("exact_crf", 16)})
                continue
            for position, (start, end) in enumerate(plan_cuts(index, frames, seconds)):
                meta = chunk_meta(index, position, start, end, False)
                meta["packets"] = span_of(index, start, end).to_meta()
                yield ChunkRef(url=f.url, size=sum(index.sizes[start:end]), label=_label(f.name, start, end),
                               meta=meta)

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """Write the chunk's frames to ``dest``: packets copied, or (exact) copied and re-encoded.
        A byte range on the reference (what a plan preview asks for) gives a stream-copied
        chunk's beginning, about that many bytes of it; an exact chunk ignores it and is
        always written whole (its re-encoded frames are made from whole GOPs)."""
        import os

        name = ref.meta["source"]
        with media_input(ref.url, storage_options) as stream:
            if ref.meta.get("exact"):
                from ..video_exact import write_exact

                write_exact(stream, dest, name, ref.meta["pieces"], crf=ref.meta.get("exact_crf", 16))
            else:
                copy_packets(stream, dest, name, PacketSpan.from_meta(ref.meta["packets"]),
                             max_bytes=None if ref.end is None else ref.end - ref.start)
        return os.path.getsize(dest)


def _label(name: str, start: int, end: int) -> str:
    return f"{name} frames {start}-{end}"


__all__ = ["VideoFrames", "chunk_meta", "frames_wanted"]
