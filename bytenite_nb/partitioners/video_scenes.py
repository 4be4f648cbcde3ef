"""``video-scenes``: one chunk per scene of every video, by shot-change detection.

Planning (a Dask task, never the client) decodes each video once at a small
size and finds the cuts (see :mod:`bytenite_nb.scene_detection`). The worker
that runs a scene cuts its clip with the ``ffmpeg`` program:

- ``exact: false`` (the default): stream copy, no re-encoding. A clip can only
  start at a keyframe, so every cut moves to the keyframe nearest to it; cuts
  that land on the same keyframe (or on the first frame) merge their scenes.
  ``start_frame`` and ``end_frame`` in CHUNK_INFO are the clip's real frames,
  ``cut_frame`` the frame where the detected shot change was.
- ``exact: true``: each clip is re-encoded (H.264, ``crf``; audio AAC) so that
  it starts exactly at its scene's first frame.

Clips keep the source's container (MP4, MOV, Matroska, WebM, MPEG-TS;
Matroska for anything else; MP4 or Matroska when re-encoded) and its first
audio stream when there is one.
"""

from __future__ import annotations

import bisect
import os
import posixpath
from contextlib import contextmanager

from ..exceptions import BadRecordError, PartitionError
from ..media import media_input, run_ffmpeg, whole_output
from ..scene_detection import (DEFAULT_ANALYSIS_WIDTH, DEFAULT_RATIO, DEFAULT_THRESHOLD, DEFAULT_WINDOW,
                               find_cuts, scan)
from .base import ChunkRef, Partitioner, Source

#: muxer a stream-copied clip is written with, by the source's extension
COPY_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts"}


def clip_format(name: str, exact: bool) -> str:
    """The muxer a scene's clip is written with.

    >>> clip_format("a.MP4", False), clip_format("a.avi", False), clip_format("a.webm", True)
    ('mp4', 'matroska', 'matroska')
    """
    fmt = COPY_FORMATS.get(os.path.splitext(name)[1].lower(), "matroska")
    if exact:  # H.264 + AAC: MP4 holds them, and Matroska holds anything
        return "mp4" if fmt in ("mp4", "mov") else "matroska"
    return fmt


def nearest_keyframe(keyframes: list[int], frame: int) -> int:
    """The keyframe nearest to ``frame`` (the earlier one on a tie).

    >>> nearest_keyframe([0, 30, 60], 44), nearest_keyframe([0, 30, 60], 45), nearest_keyframe([0, 30, 60], 46)
    (30, 30, 60)
    """
    i = bisect.bisect_left(keyframes, frame)
    before = keyframes[i - 1] if i > 0 else None
    after = keyframes[i] if i < len(keyframes) else None
    if after is None or (before is not None and frame - before <= after - frame):
        return before
    return after


def scene_bounds(frames: int, cuts: list[int], keyframes: list[int] | None) -> list[tuple[int, int, int]]:
    """The scenes as ``(start_frame, end_frame, cut_frame)``, end excluded: with
    ``keyframes``, every cut moved to its nearest keyframe (scenes that collapse merge).

    >>> scene_bounds(100, [20, 58], None)
    [(0, 20, 0), (20, 58, 20), (58, 100, 58)]
    >>> scene_bounds(100, [20, 58, 62], [0, 30, 60, 90])
    [(0, 30, 0), (30, 60, 20), (60, 100, 58)]
    """
    starts = [(0, 0)]
    for cut in cuts:
        start = nearest_keyframe(keyframes, cut) if keyframes else cut
        if start > starts[-1][0]:
            starts.append((start, cut))
    ends = [s for s, _ in starts[1:]] + [frames]
    return [(s, e, c) for (s, c), e in zip(starts, ends)]


def min_length_frames(params: dict, fps: float) -> int:
    """``min_scene_length`` in frames (it is in seconds when ``min_scene_unit`` is ``seconds``).

    >>> min_length_frames({"min_scene_length": 0.5, "min_scene_unit": "seconds"}, 30.0), min_length_frames({}, 25.0)
    (15, 15)
    """
    length = params.get("min_scene_length", 15)
    if params.get("min_scene_unit", "frames") == "seconds":
        return max(1, round(length * (fps or 25.0)))
    return max(1, int(round(length)))


@contextmanager
def local_source(url: str, storage_options: dict | None):
    """A local path of the video at ``url`` for the ffmpeg program while the block runs:
    the file itself when it is local, else this worker's one download of it
    (:data:`~bytenite_nb.source_cache.SOURCES`), shared by all its scenes."""
    from fsspec.core import url_to_fs

    from ..source_cache import SOURCES

    fs, path = url_to_fs(url, **(storage_options or {}))
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        yield path
        return
    with SOURCES.local_path(fs, path, url) as copy:
        yield copy


class VideoScenes(Partitioner):
    """One chunk per scene of every video of the source (any container and codec
    FFmpeg reads), found by shot-change detection on a small decode while
    planning. A frame starts a scene when its mean absolute luma+chroma
    difference from the previous frame (0-255, on a picture analysis_width
    pixels wide) is at least threshold and at least ratio times the median
    difference on the calmer side around it (beside a fast scene, also a
    clear peak over its neighbours' differences); scenes shorter than
    min_scene_length (frames, or seconds with min_scene_unit: seconds) are
    merged into their neighbours.
    With exact: false (the default) clips are stream copies cut at the keyframe
    nearest each scene change; with exact: true they are re-encoded (H.264 at
    crf, audio AAC) to start exactly at the scene's first frame. CHUNK_INFO
    gives source, position, scene, start and end (seconds), start_frame and
    end_frame (end excluded), cut_frame (where the shot change was detected),
    fps, exact, format (the clip's container) and source_start (the
    source's start time, which ffmpeg seeks from). A file that is not a video,
    or is truncated, fails the job naming it."""

    schema = {
        "type": "object",
        "properties": {
            "threshold": {"type": "number", "minimum": 0, "maximum": 255, "default": DEFAULT_THRESHOLD,
                          "description": "Least mean absolute difference (0-255) between two frames for a cut."},
            "ratio": {"type": "number", "minimum": 1, "default": DEFAULT_RATIO,
                      "description": "A cut's difference must also be this many times the median difference "
                                     "of the frames on its calmer side (fast motion raises that median)."},
            "min_scene_length": {"type": "number", "minimum": 0, "default": 15,
                                 "description": "Shortest scene, in min_scene_unit."},
            "min_scene_unit": {"enum": ["frames", "seconds"], "default": "frames",
                               "description": "Unit of min_scene_length."},
            "exact": {"type": "boolean", "default": False,
                      "description": "Re-encode so each clip starts exactly at its scene's first frame "
                                     "(else stream copy from the nearest keyframe)."},
            "crf": {"type": "integer", "minimum": 0, "maximum": 51, "default": 18,
                    "description": "H.264 quality of re-encoded clips (exact: true); lower is better."},
            "analysis_width": {"type": "integer", "minimum": 16, "maximum": 1920,
                               "default": DEFAULT_ANALYSIS_WIDTH,
                               "description": "Width in pixels of the frames compared while detecting."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        exact = bool(params.get("exact", False))
        for f in source.files:
            with media_input(f.url, source.location.storage_options) as stream:
                found = scan(stream, f.name, params.get("analysis_width", DEFAULT_ANALYSIS_WIDTH))
            cuts = find_cuts(found.diffs, params.get("threshold", DEFAULT_THRESHOLD),
                             params.get("ratio", DEFAULT_RATIO), DEFAULT_WINDOW,
                             min_length_frames(params, found.fps))
            scenes = scene_bounds(found.frames, cuts, None if exact else found.keyframes)
            times = found.times + [found.end]
            for scene, (start, end, cut) in enumerate(scenes):
                meta = {"source": f.name, "position": scene, "scene": scene, "start": times[start],
                        "end": times[end], "start_frame": start, "end_frame": end, "cut_frame": cut,
                        "fps": found.fps, "exact": exact, "format": clip_format(f.name, exact),
                        "source_start": found.start_time}
                if exact:
                    meta["crf"] = params.get("crf", 18)
                size = None if f.size is None else f.size * (end - start) // max(1, found.frames)
                yield ChunkRef(url=f.url, size=size, label=f"{f.name} scene {scene}", meta=meta)

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """Cut the chunk's scene into ``dest`` with ffmpeg (stream copy, or re-encoded when exact)."""
        meta = ref.meta
        name = posixpath.basename(meta["source"])
        frames = meta["end_frame"] - meta["start_frame"]
        step = 1.0 / meta["fps"] if meta["fps"] else 0.0
        # seek half a frame after a keyframe (copy: lands on it) or before the first frame (exact:
        # frames before it are decoded and dropped), so rounding of the time never picks the wrong frame
        offset = meta["start"] - meta.get("source_start", 0.0)
        seek = offset + step / 2 if not meta["exact"] else max(0.0, offset - step / 2)
        # -frames:v counts the video exactly; -t (half a frame over, so rounding never drops the last
        # frame) ends the audio with it
        duration = meta["end"] - meta["start"] + step / 2
        if meta["exact"]:
            # 4:2:0 needs even sides: an odd one gets a one-pixel border rather than losing a row
            coding = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", "veryfast",
                      "-crf", str(meta.get("crf", 18)), "-pix_fmt", "yuv420p", "-c:a", "aac"]
        else:
            coding = ["-c", "copy", "-avoid_negative_ts", "make_zero"]
        try:  # whole_output: a failed cut leaves no half clip at dest
            with local_source(ref.url, storage_options) as src, whole_output(dest) as out:
                run_ffmpeg(["-ss", f"{seek:.6f}", "-i", src, "-map", "0:v:0", "-map", "0:a:0?",
                            "-frames:v", str(frames), "-t", f"{duration:.6f}", *coding, "-f", meta["format"], out],
                           name=name)
                if not os.path.getsize(out):
                    raise PartitionError(f"chunk {ref.index}: ffmpeg wrote no clip for scene {meta['scene']} "
                                         f"of {name}")
        except BadRecordError as exc:
            raise BadRecordError(f"scene {meta['scene']}: {exc.reason}", file=name, chunk=ref.index) from None
        return os.path.getsize(dest)

