"""Frame-exact video chunks: whole GOPs copied, only the fragments at the cuts re-encoded.

A chunk of exactly frames ``[a, b)`` rarely starts and ends on clean cuts
(:mod:`bytenite_nb.video_packets`). It is made of up to three *pieces*:

- ``encode`` the frames from ``a`` to the first clean cut inside the chunk
  (decoded from the clean cut before ``a``);
- ``copy`` the whole GOPs between the first and the last clean cut inside it;
- ``encode`` the frames from the last clean cut to ``b``.

The pieces go into one MPEG-TS file. H.264 only: copied packets are turned
into Annex B with their parameter sets in band (``h264_mp4toannexb``), and
the re-encoded ones (libx264) carry their own, so a decoder switches between
them as it goes. Re-encoded packets have no B-frames; their decode times are
set back by the source's largest reorder delay, so decode times keep rising
across the pieces.
"""

from __future__ import annotations

from fractions import Fraction

from .exceptions import BadRecordError, PartitionError
from .media import open_container
from .video_packets import (PacketSpan, VideoIndex, copy_audio, output_file, seek_before, shift_packet, span_of,
                            span_packets)

#: the codecs exact chunks can be made of: codec -> (encoder, bitstream filter to Annex B)
EXACT_CODECS = {"h264": ("libx264", "h264_mp4toannexb")}


def exact_plan(index: VideoIndex, frames_per_chunk: int, name: str) -> list[tuple[int, int, dict]]:
    """``(start, end, pieces)`` of chunks of exactly ``frames_per_chunk`` frames (the last one
    the rest); ``pieces`` says what the worker copies and what it re-encodes.

    >>> idx = VideoIndex("v", "h264", 2, 2, 1.0, Fraction(1), list(range(8)), list(range(8)), [1] * 8, [0, 2, 4, 6], 8)
    >>> [piece for piece in exact_plan(idx, 5, "v")[0][2]["pieces"]]  # frames 0-4: GOPs 0-1, 2-3 copied, 4 encoded
    [{'copy': [0, 4, 0, 4]}, {'encode': [4, 4, 5]}]
    """
    if index.codec not in EXACT_CODECS:
        raise BadRecordError(f"exact: true re-encodes the cuts of H.264 video only; this video is "
                             f"{index.codec} (use exact: false)", file=name)
    shown = index.shown
    delay = max((index.pts[c] - index.dts[c] for c in index.cuts), default=0)  # the reorder delay at keyframes
    cuts = sorted(set(index.cuts) | {0, index.frames})  # decoding from the very start always works
    out = []
    for a in range(0, index.frames, frames_per_chunk):
        b = min(index.frames, a + frames_per_chunk)
        inside = [c for c in cuts if a <= c <= b]
        first = inside[0] if inside else b
        last = inside[-1] if inside else b
        before = max(c for c in cuts if c <= a)
        pieces = []
        if a < first:
            pieces.append({"encode": [index.dts[before], shown[a], shown[first] if first < index.frames else None]})
        if first < last:
            pieces.append({"copy": span_of(index, first, last).to_meta()})
        if last < b:
            pieces.append({"encode": [index.dts[last], shown[last], shown[b] if b < index.frames else None]})
        window = [shown[a], shown[b] if b < index.frames else None]
        out.append((a, b, {"pieces": pieces, "window": window, "delay": delay, "frames": b - a}))
    return out


def write_exact(stream, dest: str, name: str, plan: dict, crf: int = 16) -> int:
    """Write a chunk planned by :func:`exact_plan` to ``dest`` (MPEG-TS); return its frame count."""
    import av

    with open_container(stream, name) as src:
        video = src.streams.video[0]
        audio = src.streams.audio[0] if src.streams.audio else None
        encoder, annexb = EXACT_CODECS[video.codec_context.name]
        start_pts, end_pts = plan["window"]
        with output_file(dest, "mpegts") as out:
            out_v = out.add_stream(encoder, rate=Fraction(video.average_rate or video.guessed_rate or 25))
            ctx = video.codec_context
            out_v.width, out_v.height, out_v.pix_fmt = ctx.width, ctx.height, ctx.pix_fmt or "yuv420p"
            out_v.codec_context.time_base = video.time_base
            out_a = out.add_stream_from_template(audio) if audio is not None else None
            sink = _VideoSink(out, out_v, plan["delay"])
            for piece in plan["pieces"]:
                if "copy" in piece:
                    bsf = av.bitstream.BitStreamFilterContext(annexb, video)
                    _copy_piece(src, sink, video, bsf, PacketSpan.from_meta(piece["copy"]), start_pts)
                else:
                    _encode_piece(src, sink, video, piece["encode"], start_pts, crf)
            if sink.count != plan["frames"]:
                raise PartitionError(f"{name}: an exact chunk came out with {sink.count} frames, not "
                                     f"{plan['frames']} (did the source change after planning?)")
            if audio is not None:
                copy_audio(src, out, out_a, start_pts, end_pts)
    return sink.count


class _VideoSink:
    """The chunk's video stream: packets of every piece, decode times kept rising."""

    def __init__(self, out, stream, delay: int):
        self.out, self.stream, self.delay = out, stream, delay
        self.last_dts, self.count = None, 0

    def copied(self, packet) -> None:
        packet.stream = self.stream
        self.last_dts = packet.dts
        self.out.mux(packet)
        self.count += 1

    def encoded(self, packet) -> None:
        """A re-encoded packet (no B-frames: decode time = show time): decoded ``delay`` before
        it shows, as the copied packets are, and after the packet before it."""
        dts = packet.pts - self.delay
        if self.last_dts is not None:
            dts = max(dts, self.last_dts + 1)
        packet.dts = dts
        self.copied(packet)


def _copy_piece(src, sink: _VideoSink, video, bsf, span: PacketSpan, shift: int) -> None:
    """Copy the packets of ``span``, in Annex B with their parameter sets in band."""
    for packet in span_packets(src, video, span):
        for filtered in bsf.filter(packet):
            shift_packet(filtered, shift, sink.stream)
            sink.copied(filtered)


def _encode_piece(src, sink: _VideoSink, video, piece: list, shift: int, crf: int) -> None:
    """Decode from the clean cut at ``piece[0]`` and re-encode the frames showing in
    ``[piece[1], piece[2])`` with an encoder of their own (it starts with a keyframe and
    its parameter sets, and is drained before the next piece)."""
    import av

    seek_dts, first_pts, end_pts = piece
    ctx = video.codec_context
    encoder = av.CodecContext.create(sink.stream.codec_context.name, "w")
    encoder.width, encoder.height, encoder.pix_fmt = ctx.width, ctx.height, ctx.pix_fmt or "yuv420p"
    encoder.time_base = video.time_base
    encoder.framerate = sink.stream.codec_context.framerate
    encoder.options = {"crf": str(crf), "bf": "0"}

    def mux(packets):
        for packet in packets:
            sink.encoded(packet)

    seek_before(src, video, seek_dts)
    for frame in src.decode(video):
        if frame.pts is None or frame.pts < first_pts:
            continue
        if end_pts is not None and frame.pts >= end_pts:
            break
        frame.pts -= shift
        frame.time_base = video.time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # the encoder chooses
        mux(encoder.encode(frame))
    mux(encoder.encode(None))
