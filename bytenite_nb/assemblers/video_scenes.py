"""``video-scenes``: the scene clips back into one video per source, in scene
order, keeping all of them or only the selected ones (a highlight reel).

Which scenes are kept:

- with ``select`` (a list of scene numbers): exactly those;
- otherwise every scene whose app kept it. An app drops its scene by writing
  no clip at all, or a JSON result (any ``*.json`` file) holding an object with
  ``"keep": false``; it may hold anything else too (a score, labels).

The clips are joined by FFmpeg's concat demuxer with stream copy, so they must
share codec and size (the clips ``video-scenes`` cuts do, whether copied or
re-encoded; an app that re-encodes must encode every clip alike).
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile

from ..exceptions import AssemblyError, BadRecordError, ResultFormatError
from ..media import open_container, run_ffmpeg
from ..schema import SAFE_NAME
from .base import Assembler, distinct_outputs, output_path, source_output_name

DEFAULT_OUTPUT_NAME = "{name}"
#: output extensions ffmpeg picks its muxer by; any other name is written in the clips' own format
KNOWN_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".avi", ".flv"}


def keep_flag(chunk) -> bool:
    """False when one of the chunk's JSON results holds ``"keep": false``.

    A JSON result that does not parse, or whose ``keep`` is not a boolean, is a
    :class:`ResultFormatError` naming the chunk and the file.
    """
    for f in chunk.files:
        if not f.name.lower().endswith(".json"):
            continue
        try:
            with f.open() as stream:
                doc = json.load(stream)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ResultFormatError(f"chunk {chunk.index}: {f.name} is not valid JSON ({exc})") from None
        if isinstance(doc, dict) and "keep" in doc:
            if not isinstance(doc["keep"], bool):
                raise ResultFormatError(f"chunk {chunk.index}: {f.name}: keep must be true or false, "
                                        f"got {doc['keep']!r}")
            if not doc["keep"]:
                return False
    return True


def clip_of(chunk, pattern: str | None):
    """The chunk's clip: its one result matching ``pattern`` (by default its one
    result that is not JSON), or None when it has none.

    >>> from bytenite_nb.assemblers.base import ChunkResult, ResultFile
    >>> c = ChunkResult(3, (ResultFile("clip.mp4", 9, "file:///c.mp4"), ResultFile("s.json", 2, "file:///s.json")))
    >>> clip_of(c, None).name, clip_of(c, "*.gif")
    ('clip.mp4', None)
    """
    found = [f for f in chunk.files
             if (fnmatch.fnmatch(f.name, pattern) if pattern else not f.name.lower().endswith(".json"))]
    if len(found) > 1:
        raise ResultFormatError(f"chunk {chunk.index}: {len(found)} results could be its clip "
                                f"({', '.join(f.name for f in found[:5])}): give pattern")
    return found[0] if found else None


def concat_list_line(path: str) -> str:
    """One line of an ffmpeg concat list naming ``path`` (quotes escaped as the demuxer wants).

    >>> concat_list_line("/tmp/it's.mp4")
    "file '/tmp/it'\\\\''s.mp4'\\n"
    """
    return "file '" + path.replace("'", "'\\''") + "'\n"


def scene_output_names(source_name: str, template: str, index_template: str) -> tuple[str, str]:
    """The joined video's and the scene index's names for one source (``""``: no index).

    >>> scene_output_names("in/clip.mp4", "{stem}-cut.mp4", "{stem}.json")
    ('clip-cut.mp4', 'clip.json')
    """
    return (source_output_name(template, source_name, "video"),
            source_output_name(index_template, source_name, "video"))


class VideoScenes(Assembler):
    """The scene clips of video-scenes back into one video per source, in
    scene order, by stream copy (FFmpeg's concat demuxer). All scenes by
    default; with select (a list of scene numbers) only those; otherwise an
    app drops its scene by writing no clip or a JSON result with
    "keep": false - a highlight reel. A chunk's clip is its one result
    matching pattern (by default its one result that is not *.json).
    output_name may use {stem}, {name}, {ext} and {dir} of the source ({name} by default);
    index_name, when given, writes a JSON index of the kept scenes (scene,
    chunk, start and end in the source and in the output, frames). A missing
    or unreadable clip of a kept scene, or no scene kept, fails the job
    naming the chunk or the source."""

    schema = {
        "type": "object",
        "properties": {
            "select": {"type": "array", "items": {"type": "integer", "minimum": 0}, "uniqueItems": True,
                       "description": "Scene numbers to keep, in every source (by default: every scene its "
                                      "app kept)."},
            "pattern": {"type": "string", "description": "Glob naming a chunk's clip among its results "
                                                         "(by default its one result that is not *.json)."},
            "output_name": {**SAFE_NAME, "default": DEFAULT_OUTPUT_NAME,
                            "description": "Name of each output video; {stem}, {name}, {ext} and {dir} (its folder) are the source's."},
            "index_name": {**SAFE_NAME, "description": "Also write a JSON index of the kept scenes by this name "
                                                       "({stem}, {name}, {ext} and {dir} allowed)."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        sources: dict[str, list] = {}
        for chunk in results:
            if "scene" not in chunk.info or "source" not in chunk.info:
                raise ResultFormatError(f"chunk {chunk.index}: no scene in its CHUNK_INFO "
                                        "(the video-scenes assembler joins the chunks of video-scenes)")
            sources.setdefault(chunk.info["source"], []).append(chunk)
        template = params.get("output_name", DEFAULT_OUTPUT_NAME)
        select = params.get("select")
        if select is not None:
            known = {c.info["scene"] for chunks in sources.values() for c in chunks}
            unknown = sorted(set(select) - known)
            if unknown:
                raise AssemblyError(f"video-scenes: select names scene {unknown[0]}, but the scenes are "
                                    f"0..{max(known, default=-1)}")
        outputs = {source_name: scene_output_names(source_name, template, params.get("index_name") or "")
                   for source_name in sources}
        # every name checked before the first is written: two folders' clip.mp4 fail the job whole
        distinct_outputs([(source, n) for source, names in outputs.items() for n in names if n], "video-scenes")
        for source_name, chunks in sources.items():
            name, index_name = outputs[source_name]
            kept = self._kept(sorted(chunks, key=lambda c: c.info["scene"]), select, params.get("pattern"))
            if not kept:
                raise AssemblyError(f"video-scenes: no scene of {source_name} was kept")
            self._join(kept, output_path(output_dir, name), name)
            if index_name:
                with open(output_path(output_dir, index_name), "w") as out:
                    json.dump(scene_index(kept), out, indent=1)

    def _kept(self, chunks: list, select, pattern):
        """(chunk, clip) of the scenes to keep, in scene order."""
        kept = []
        for chunk in chunks:
            clip = clip_of(chunk, pattern)
            if select is not None:
                if chunk.info["scene"] not in select:
                    continue
                if clip is None:
                    raise ResultFormatError(f"chunk {chunk.index}: scene {chunk.info['scene']} is selected but "
                                            "its app wrote no clip")
            elif clip is None or not keep_flag(chunk):
                continue
            kept.append((chunk, clip))
        return kept

    def _join(self, kept: list, dest: str, name: str) -> None:
        with tempfile.TemporaryDirectory(prefix="bytenite-nb-scenes-") as folder:
            lines = []
            for chunk, clip in kept:
                path = clip.local_path or os.path.join(folder, f"clip_{chunk.index}")
                if not clip.local_path:
                    clip.copy_to(path)
                try:
                    open_container(path, clip.name).close()  # a clip FFmpeg cannot read names its chunk
                except BadRecordError as exc:
                    raise ResultFormatError(f"chunk {chunk.index}: {exc}") from None
                lines.append(concat_list_line(os.path.abspath(path)))
            listing = os.path.join(folder, "clips.txt")
            with open(listing, "w") as out:
                out.writelines(lines)
            fmt = [] if os.path.splitext(name)[1].lower() in KNOWN_EXTENSIONS else \
                ["-f", kept[0][0].info.get("format") or "matroska"]
            try:
                run_ffmpeg(["-f", "concat", "-safe", "0", "-i", listing, "-map", "0", "-c", "copy", *fmt, dest],
                           name=name)
            except BadRecordError as exc:
                raise AssemblyError(f"video-scenes: cannot join the clips of {name}: {exc.reason}") from None


def scene_index(kept: list) -> list[dict]:
    """The index of the kept scenes: where each was in the source and is in the output.

    >>> from bytenite_nb.assemblers.base import ChunkResult
    >>> info = {"scene": 2, "start": 4.0, "end": 6.5, "start_frame": 100, "end_frame": 162}
    >>> entry = scene_index([(ChunkResult(2, (), info), None)])[0]
    >>> entry["scene"], entry["chunk"], entry["start_frame"], entry["output_start"], entry["output_end"]
    (2, 2, 100, 0.0, 2.5)
    """
    out, at = [], 0.0
    for chunk, _ in kept:
        info = chunk.info
        length = info["end"] - info["start"]
        out.append({"scene": info["scene"], "chunk": chunk.index, "start": info["start"], "end": info["end"],
                    "start_frame": info["start_frame"], "end_frame": info["end_frame"],
                    "output_start": at, "output_end": at + length})
        at += length
    return out
