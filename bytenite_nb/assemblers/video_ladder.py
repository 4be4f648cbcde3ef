"""``video-ladder``: transcoded renditions packaged as HLS.

Each rendition's results (one video per chunk, in segment order) are joined
and cut into HLS segments by FFmpeg's hls muxer with ``-c copy``: nothing is
re-encoded here. The master playlist is written from what the segments are:
BANDWIDTH (the peak segment bitrate), AVERAGE-BANDWIDTH, RESOLUTION (from the
first result's header) and CODECS where the codecs are known (H.264 from its
parameter sets, AAC).
"""

from __future__ import annotations

import math
import os
import posixpath
import tempfile

from ..exceptions import ResultFormatError
from ..media import open_container
from ..schema import SAFE_NAME
from .base import Assembler, output_path
from .video_stitch import concat_copy, local_copies, result_labels, video_result

DEFAULT_HLS_TIME = 6.0


def h264_codec_string(extradata: bytes | None) -> str | None:
    """The RFC 6381 codec string of H.264 (``avc1.PPCCLL``) from its extradata: an avcC
    record, or Annex B parameter sets (the SPS follows a start code).

    >>> h264_codec_string(bytes([1, 0x64, 0, 0x1f, 0xff])), h264_codec_string(b"\\0\\0\\0\\1\\x67\\x4d\\x40\\x1e")
    ('avc1.64001f', 'avc1.4d401e')
    """
    if not extradata:
        return None
    if extradata[0] == 1 and len(extradata) >= 4:
        return "avc1." + extradata[1:4].hex()
    at = extradata.find(b"\x00\x00\x01")
    while at >= 0 and at + 6 <= len(extradata):
        if extradata[at + 3] & 0x1F == 7:  # an SPS: profile, constraints, level follow its header byte
            return "avc1." + extradata[at + 4:at + 7].hex()
        at = extradata.find(b"\x00\x00\x01", at + 3)
    return None


def stream_facts(path: str, name: str) -> dict:
    """Width, height and RFC 6381 codec strings of a rendition's video (its header only)."""
    with open_container(path, name) as container:
        if not container.streams.video:
            raise ResultFormatError(f"{name}: the result has no video stream")
        video = container.streams.video[0].codec_context
        codecs = []
        if video.name == "h264":
            codecs.append(h264_codec_string(video.extradata))
        elif video.name == "hevc":
            codecs.append(None)  # its string needs the full profile tier level: left out, as HLS allows
        for audio in container.streams.audio[:1]:
            ctx = audio.codec_context
            codecs.append({"aac": "mp4a.40.2", "mp3": "mp4a.40.34", "ac3": "ac-3"}.get(ctx.name))
        return {"width": video.width, "height": video.height,
                "codecs": None if None in codecs else ",".join(codecs)}


def media_playlist_rates(playlist: str) -> tuple[int, int, float]:
    """Peak and average bitrate (bits/s) and the total duration of the segments of a media
    playlist (from its ``#EXTINF`` durations and the segment files' sizes).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name, size in (("a.ts", 1000), ("b.ts", 250)):
    ...     _ = open(os.path.join(folder, name), "wb").write(b"x" * size)
    >>> _ = open(os.path.join(folder, "i.m3u8"), "w").write("#EXTM3U\\n#EXTINF:2.0,\\na.ts\\n#EXTINF:1.0,\\nb.ts\\n")
    >>> media_playlist_rates(os.path.join(folder, "i.m3u8"))
    (4000, 3334, 3.0)
    """
    folder = os.path.dirname(playlist)
    peak, total_bytes, total_seconds, duration = 0.0, 0, 0.0, None
    with open(playlist, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("#EXTINF:"):
                duration = float(line[len("#EXTINF:"):].split(",")[0])
            elif line and not line.startswith("#") and duration is not None:
                size = os.path.getsize(os.path.join(folder, line))
                if duration > 0:
                    peak = max(peak, size * 8 / duration)
                total_bytes += size
                total_seconds += duration
                duration = None
    average = total_bytes * 8 / total_seconds if total_seconds else 0
    return math.ceil(peak), math.ceil(average), total_seconds


def master_playlist(variants: list[dict]) -> str:
    """The master playlist of ``variants`` ({uri, bandwidth, average, width, height, codecs}).

    >>> print(master_playlist([{"uri": "360p/index.m3u8", "bandwidth": 900000, "average": 700000,
    ...                         "width": 640, "height": 360, "codecs": "avc1.64001e"}]), end="")
    #EXTM3U
    #EXT-X-VERSION:3
    #EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,RESOLUTION=640x360,CODECS="avc1.64001e"
    360p/index.m3u8
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for v in variants:
        attrs = f"BANDWIDTH={v['bandwidth']},AVERAGE-BANDWIDTH={v['average']},RESOLUTION={v['width']}x{v['height']}"
        if v.get("codecs"):
            attrs += f',CODECS="{v["codecs"]}"'
        lines += [f"#EXT-X-STREAM-INF:{attrs}", v["uri"]]
    return "\n".join(lines) + "\n"


def by_rendition(results) -> dict[str, list]:
    """Chunk results grouped by their rendition's name, each in segment order.

    >>> from bytenite_nb.assemblers import ChunkResult
    >>> {k: [c.index for c in v] for k, v in by_rendition([ChunkResult(0, (), {"rendition": {"name": "hd"}, "segment": 1}),
    ...  ChunkResult(1, (), {"rendition": {"name": "hd"}, "segment": 0})]).items()}
    {'hd': [1, 0]}
    """
    groups: dict[str, list] = {}
    for chunk in results:
        rendition = chunk.info.get("rendition")
        if not isinstance(rendition, dict) or not rendition.get("name"):
            raise ResultFormatError(f"chunk {chunk.index}: no rendition in its CHUNK_INFO "
                                    "(video-ladder assembles the chunks of the video-ladder partitioner)")
        groups.setdefault(rendition["name"], []).append(chunk)
    for chunks in groups.values():
        chunks.sort(key=lambda c: (c.info.get("segment", 0), c.index))
    return groups


class VideoLadder(Assembler):
    """The renditions of the video-ladder partitioner packaged as HLS: for
    each rendition a folder <name>/ with its media playlist (index.m3u8) and
    segments of about hls_time seconds (MPEG-TS, or fMP4 with segment_type),
    made from the chunks' result videos by stream copy (FFmpeg's hls muxer,
    -c copy: segments start at the results' keyframes, so encode with a GOP
    that divides hls_time); and a master playlist (output_name, master.m3u8)
    listing them with BANDWIDTH (the peak segment bitrate),
    AVERAGE-BANDWIDTH, RESOLUTION and CODECS where known (H.264, AAC). Each
    chunk gives one video result (its only file, its only video file or the
    one matching pattern). Chunks of several videos give one such package per
    video, in a folder named after it (talks/a.mp4 -> talks/a/master.m3u8)."""

    schema = {
        "type": "object",
        "properties": {
            "output_name": {**SAFE_NAME, "default": "master.m3u8", "description": "Name of the master playlist."},
            "hls_time": {"type": "number", "exclusiveMinimum": 0, "default": DEFAULT_HLS_TIME,
                         "description": "Target segment length in seconds (cuts fall on keyframes)."},
            "segment_type": {"enum": ["mpegts", "fmp4"], "default": "mpegts",
                             "description": "Segments as MPEG-TS (.ts) or fragmented MP4 (.m4s)."},
            "pattern": {"type": "string", "description": "The result file of each chunk (a glob); by default its "
                                                         "only video."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        master = params.get("output_name", "master.m3u8")
        packages: dict[str, list] = {}
        for chunk in sorted(results, key=lambda c: c.index):  # the folder the plan gave its video
            packages.setdefault(str(chunk.info.get("package") or ""), []).append(chunk)
        for folder, chunks in packages.items():
            self._package(chunks, output_dir, posixpath.join(folder, master) if folder else master, params)

    @staticmethod
    def _package(results, output_dir: str, master: str, params: dict) -> None:
        """One video's renditions as HLS, its master playlist at ``master``."""
        hls_time = params.get("hls_time", DEFAULT_HLS_TIME)
        fmp4 = params.get("segment_type", "mpegts") == "fmp4"
        base = os.path.dirname(master)
        variants = []
        for name, chunks in by_rendition(results).items():
            files = [video_result(chunk, params.get("pattern")) for chunk in chunks]
            folder = os.path.join(base, name)
            playlist = output_path(output_dir, os.path.join(folder, "index.m3u8"))
            with tempfile.TemporaryDirectory(prefix="bnb-ladder-") as tmp:
                paths = local_copies(files, tmp)
                facts = stream_facts(paths[0], f"chunk {chunks[0].index} ({files[0].name})")
                segment = "seg_%05d.m4s" if fmp4 else "seg_%05d.ts"
                concat_copy(paths, playlist, f"rendition {name}", [
                    "-f", "hls", "-hls_time", f"{hls_time:g}", "-hls_playlist_type", "vod",
                    "-hls_segment_type", "fmp4" if fmp4 else "mpegts",
                    "-hls_segment_filename", os.path.join(os.path.dirname(playlist), segment),
                    *(["-hls_fmp4_init_filename", "init.mp4"] if fmp4 else [])], labels=result_labels(chunks, files))
            peak, average, _ = media_playlist_rates(playlist)
            variants.append({"uri": f"{name}/index.m3u8", "bandwidth": peak, "average": average, **facts})
        with open(output_path(output_dir, master), "w", encoding="utf-8") as out:
            out.write(master_playlist(variants))


__all__ = ["VideoLadder", "h264_codec_string", "master_playlist", "media_playlist_rates"]
