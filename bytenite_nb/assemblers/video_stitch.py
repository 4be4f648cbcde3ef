"""``video-stitch``: chunk videos back into one video, by stream copy.

The chunks' result videos are joined in chunk order by FFmpeg's concat
demuxer with ``-c copy``: nothing is decoded or re-encoded, so after
``video-frames`` -> identity -> ``video-stitch`` every frame is what it was,
and the frame count and the duration are the source's. Chunks of several
source videos (by their CHUNK_INFO ``source``) give one output each.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

from ..exceptions import ResultFormatError
from ..images import matches
from ..media import run_ffmpeg
from ..schema import SAFE_NAME
from .base import Assembler, names_by_source, one_name_per_source, output_path, source_output_name

DEFAULT_OUTPUT_NAME = "{stem}.mp4"
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".m2ts", ".avi", ".flv", ".mpg", ".mpeg")


def video_result(chunk, pattern: str | None = None):
    """The one video among a chunk's results: the file matching ``pattern``, else its only
    file, else its only file with a video extension.

    >>> from bytenite_nb.assemblers import ChunkResult, ResultFile
    >>> files = (ResultFile("log.txt", 1, "file:///r/log.txt"), ResultFile("out.mp4", 9, "file:///r/out.mp4"))
    >>> video_result(ChunkResult(0, files)).name
    'out.mp4'
    """
    files = sorted(chunk.files, key=lambda f: f.name)
    if pattern:
        found = [f for f in files if matches(f.name, pattern)]
    elif len(files) == 1:
        found = files
    else:
        found = [f for f in files if f.name.lower().endswith(VIDEO_EXTENSIONS)]
    if len(found) != 1:
        names = ", ".join(f.name for f in files) or "no result files"
        what = f"matching {pattern!r}" if pattern else "video"
        raise ResultFormatError(f"chunk {chunk.index}: expected one {what} result, found {len(found)} ({names})")
    return found[0]


def concat_list(paths: list[str], durations: list[float | None] | None = None) -> str:
    """The concat demuxer's list of ``paths`` (quotes escaped its way), with each file's
    duration where known: the next file then starts where this one's video ends, not
    where its last audio frame does.

    >>> print(concat_list(["/t/a.mp4", "/t/it's.mp4"], [2.0, None]), end="")
    file '/t/a.mp4'
    duration 2.0
    file '/t/it'\\''s.mp4'
    """
    lines = []
    for path, duration in zip(paths, durations or [None] * len(paths)):
        lines.append("file '" + path.replace("'", "'\\''") + "'\n")
        if duration is not None:
            lines.append(f"duration {duration!r}\n")
    return "".join(lines)


def video_duration(path: str, label: str | None = None) -> float | None:
    """Seconds of a file's first video stream, from its header (None when it does not say);
    a file FFmpeg cannot read fails naming ``label`` (``chunk 3: out.mp4``), else the file."""
    from ..media import open_container

    with open_container(path, label or os.path.basename(path)) as container:
        if not container.streams.video:
            return None
        video = container.streams.video[0]
        return float(video.duration * video.time_base) if video.duration else None


def local_copies(files: list, folder: str) -> list[str]:
    """Local paths of result files: staged files where they are, others downloaded into ``folder``."""
    out = []
    for i, f in enumerate(files):
        if f.local_path:
            out.append(os.path.abspath(f.local_path))
            continue
        dest = os.path.join(folder, f"{i:06d}{os.path.splitext(f.name)[1]}")
        f.copy_to(dest)
        out.append(dest)
    return out


def concat_copy(paths: list[str], dest: str, name: str, extra: list[str] = (),
                labels: list[str] | None = None) -> None:
    """Join the videos ``paths`` into ``dest`` by stream copy (FFmpeg's concat demuxer);
    ``labels`` name them in errors (the local copies' names mean nothing to a user)."""
    with tempfile.TemporaryDirectory(prefix="bnb-concat-") as tmp:
        listing = os.path.join(tmp, "list.txt")
        with open(listing, "w", encoding="utf-8") as out:
            with ThreadPoolExecutor(4) as pool:  # headers only: the waits overlap
                durations = pool.map(video_duration, paths, labels or [None] * len(paths))
                out.write(concat_list(paths, list(durations)))
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", listing, "-map", "0", "-c", "copy", *extra, dest], name=name)


def result_labels(chunks: list, files: list) -> list[str]:
    """How errors name each chunk's result: ``chunk 3: out.mp4``.

    >>> from bytenite_nb.assemblers import ChunkResult, ResultFile
    >>> result_labels([ChunkResult(3, ())], [ResultFile("out.mp4", 9, "file:///r/out.mp4")])
    ['chunk 3: out.mp4']
    """
    return [f"chunk {chunk.index}: {f.name}" for chunk, f in zip(chunks, files)]


def by_source(results) -> dict[str, list]:
    """Chunk results grouped by their CHUNK_INFO ``source``, each in chunk order.

    >>> from bytenite_nb.assemblers import ChunkResult
    >>> {k: [c.index for c in v] for k, v in by_source([ChunkResult(0, (), {"source": "a.mp4"}),
    ...  ChunkResult(1, (), {"source": "b.mp4"}), ChunkResult(2, (), {"source": "a.mp4"})]).items()}
    {'a.mp4': [0, 2], 'b.mp4': [1]}
    """
    groups: dict[str, list] = {}
    for chunk in results:
        groups.setdefault(chunk.info.get("source", ""), []).append(chunk)
    return groups


class VideoStitch(Assembler):
    """The chunks' result videos joined in chunk order by stream copy
    (FFmpeg's concat demuxer, -c copy): no decoding, so after video-frames ->
    identity -> video-stitch the frames, their count and the duration are the
    source's. Each chunk gives one video result (its only file, its only file
    with a video extension, or the one matching pattern); all must share
    codec and size. One output per source video (CHUNK_INFO source),
    output_name may use {stem}, {name}, {ext} and {dir} of the source ({stem}.mp4 by
    default; the container follows the extension)."""

    schema = {
        "type": "object",
        "properties": {
            "output_name": {**SAFE_NAME, "default": DEFAULT_OUTPUT_NAME,
                            "description": "Name of each output video; {stem}, {name}, {ext} and {dir} (its folder) are the source's."},
            "pattern": {"type": "string", "description": "The result file of each chunk to join (a glob); by "
                                                         "default its only video."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        groups = by_source(results)
        names = output_names(list(groups), params.get("output_name", DEFAULT_OUTPUT_NAME))
        for source_name, chunks in groups.items():
            files = [video_result(chunk, params.get("pattern")) for chunk in chunks]
            with tempfile.TemporaryDirectory(prefix="bnb-stitch-") as tmp:
                concat_copy(local_copies(files, tmp), output_path(output_dir, names[source_name]),
                            names[source_name], labels=result_labels(chunks, files))


def output_names(sources: list[str], template: str) -> dict[str, str]:
    """The output name of each source video: ``template`` with its ``{stem}`` and ``{name}``;
    two sources of one name (``in/a.mov``, ``out/a.mov``) fail before anything is written.

    >>> output_names(["in/a.mov", "b.mp4"], "{stem}.mp4")
    {'in/a.mov': 'a.mp4', 'b.mp4': 'b.mp4'}
    """
    one_name_per_source(template, len(sources), "video-stitch", "source videos")
    return names_by_source(sources, lambda source: source_output_name(template, source, "video"), "video-stitch")

__all__ = ["VideoStitch", "by_source", "concat_copy", "concat_list", "local_copies", "result_labels", "video_result"]
