"""Video by packets: where a video can be cut without decoding, and cutting it.

Shared by the video partitioners (``video-frames``, ``video-ladder``) and
assemblers (``video-stitch``, ``video-ladder``). Everything here reads packet
headers through PyAV's demuxer and copies packets as they are (stream copy);
nothing is decoded (:mod:`bytenite_nb.video_exact` decodes the frames around
a cut, for frame-exact chunks).

A *clean cut* is a keyframe at which the packets split in two halves that need
nothing of each other: every packet before it in decode order shows earlier,
every packet from it on shows it or later (a closed GOP). Cutting there by
stream copy keeps every frame bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction

from .exceptions import BadRecordError, PartitionError
from .media import open_container, reused_container


@dataclass
class VideoIndex:
    """What planning learns of a video from its packet headers (nothing is decoded).

    ``pts`` and ``dts`` hold the video packets in decode order; ``cuts`` the
    decode positions of the clean cuts (position = frame number, since before a
    clean cut every frame shows earlier).
    """

    name: str
    codec: str
    width: int
    height: int
    fps: float
    time_base: Fraction
    pts: list[int]
    dts: list[int]
    sizes: list[int]
    cuts: list[int]
    end_pts: int  # where the last frame ends

    @property
    def frames(self) -> int:
        return len(self.pts)

    @cached_property
    def shown(self) -> list[int]:
        """The show times of the frames, in show order (frame number -> pts)."""
        return sorted(self.pts)

    @property
    def start_pts(self) -> int:
        return self.shown[0]

    def frame_time(self, frame: int) -> float:
        """Seconds from the first frame to frame number ``frame`` (``frames``: the end).

        >>> VideoIndex("v", "h264", 2, 2, 2.0, Fraction(1, 2), [0, 2, 1], [0, 1, 2], [1] * 3, [0], 3).frame_time(2)
        1.0
        """
        pts = self.end_pts if frame >= self.frames else self.shown[frame]
        return float((pts - self.start_pts) * self.time_base)

    def times(self) -> list[float]:
        """Seconds from the first frame of every frame, in show order, and the end."""
        return [self.frame_time(i) for i in range(self.frames + 1)]


def clean_cuts(pts: list[int], keyframe: list[bool]) -> list[int]:
    """Decode positions of the keyframes where stream copy can cut (see the module's doc).

    >>> clean_cuts([0, 3, 1, 2, 4, 7, 5, 6], [True, False, False, False, True, False, False, False])
    [0, 4]
    >>> clean_cuts([2, 0, 1, 3], [True, False, False, True])  # an open GOP: frames 0, 1 show before 2
    [3]
    """
    n = len(pts)
    suffix_min = [0] * (n + 1)
    suffix_min[n] = float("inf")
    for i in range(n - 1, -1, -1):
        suffix_min[i] = min(pts[i], suffix_min[i + 1])
    out, seen_max = [], float("-inf")
    for i in range(n):
        if keyframe[i] and seen_max < pts[i] <= suffix_min[i]:
            out.append(i)
        seen_max = max(seen_max, pts[i])
    return out


def scan(stream, name: str) -> VideoIndex:
    """Index the first video stream of ``stream`` (a path or a binary file object) from
    its packet headers. A file FFmpeg cannot read, without video, or whose packets stop
    before the frames its header promises is a :class:`BadRecordError` naming ``name``.

    >>> scan("/nonexistent/clip.mp4", "clip.mp4")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.BadRecordError: clip.mp4: not a media file FFmpeg can read (No such file or directory)
    """
    import av

    with open_container(stream, name) as container:
        if not container.streams.video:
            raise BadRecordError("no video stream in the file", file=name)
        video = container.streams.video[0]
        ctx = video.codec_context
        pts, dts, sizes, keys, ends = [], [], [], [], []
        try:
            for packet in container.demux(video):
                if packet.size == 0 or packet.pts is None:
                    continue  # the demuxer's end-of-stream marker; a packet with no time cannot be placed
                pts.append(packet.pts)
                dts.append(packet.pts if packet.dts is None else packet.dts)
                sizes.append(packet.size)
                keys.append(packet.is_keyframe)
                ends.append(packet.pts + (packet.duration or 0))
        except av.error.FFmpegError as exc:
            raise BadRecordError(f"cannot read its video packets after frame {len(pts)} ({exc})", file=name) from None
        if not pts:
            raise BadRecordError("its video stream has no frames (is the file truncated?)", file=name)
        promised = video.frames
        if promised and len(pts) < promised:
            raise BadRecordError(f"the file is truncated: its header promises {promised} video frames, "
                                 f"only {len(pts)} are there", file=name)
        if not keys[0]:
            raise BadRecordError("its video does not start with a keyframe", file=name)
        rate = video.average_rate or video.guessed_rate or 0
        return VideoIndex(name=name, codec=ctx.name, width=ctx.width, height=ctx.height, fps=float(rate),
                          time_base=video.time_base, pts=pts, dts=dts, sizes=sizes, cuts=clean_cuts(pts, keys),
                          end_pts=max(ends))


def copy_packets(stream, dest: str, name: str, span: "PacketSpan", fmt: str = "mp4",
                 max_bytes: int | None = None) -> int:
    """Write the chunk ``span`` of ``stream`` (its first video stream) to ``dest`` by stream
    copy, in one pass: the video packets of decode times ``[first_dts, end_dts)`` and the
    audio packets of the same time window (see :func:`copy_audio`); timestamps start at 0.
    With ``max_bytes``, only the chunk's beginning: video packets until that many bytes
    (a preview). Returns the number of video packets.
    """
    with reused_container(stream, name) as src:
        video = src.streams.video[0]
        audio = src.streams.audio[0] if src.streams.audio else None
        with output_file(dest, fmt) as out:
            out_v = out.add_stream_from_template(video)
            out_a = out.add_stream_from_template(audio) if audio is not None else None
            window = AudioWindow(src, span.start_pts, span.end_pts) if audio is not None else None
            seek_before(src, video, span.first_dts)
            count, video_done, copied = 0, False, 0
            for packet in src.demux(*[s for s in (video, audio) if s is not None]):
                if packet.size == 0 or packet.pts is None:
                    continue
                if packet.stream is video:
                    dts = packet.pts if packet.dts is None else packet.dts
                    if dts < span.first_dts or video_done:
                        continue
                    if span.end_dts is not None and dts >= span.end_dts:
                        video_done = True
                    else:
                        if count == 0 and dts != span.first_dts:  # the seek went past the chunk's keyframe
                            raise PartitionError(f"{name}: the chunk's first video packet (decode time "
                                                 f"{span.first_dts}) cannot be reached by seeking")
                        copied += packet.size
                        shift_packet(packet, span.start_pts, out_v)
                        out.mux(packet)
                        count += 1
                        if max_bytes is not None and copied >= max_bytes:
                            break  # a preview has its beginning
                elif window.take(packet, out_a):
                    out.mux(packet)
                if video_done and (window is None or window.done):
                    break
            if count == 0:
                raise BadRecordError(f"no video packet between decode times {span.first_dts} and {span.end_dts} "
                                     "(did the source change after planning?)", file=name)
    return count


class AudioWindow:
    """Which audio packets belong to a chunk: those that start in its video window
    ``[start_pts, end_pts)`` (video time base; ``end_pts`` None: to the end); a window that
    starts at the video's first frame takes the audio before it too."""

    def __init__(self, src, start_pts: int, end_pts: int | None):
        video, self.audio = src.streams.video[0], src.streams.audio[0]
        self.start = float(start_pts * video.time_base)
        self.end = None if end_pts is None else float(end_pts * video.time_base)
        self.first = start_pts <= (video.start_time or 0)
        self.shift = int(self.start / self.audio.time_base)
        self.seconds_per_tick = float(self.audio.time_base)  # a float: Fraction arithmetic per packet is slow
        self.done = False

    def take(self, packet, out_stream) -> bool:
        """Whether ``packet`` is in the window; if so, it is moved onto ``out_stream``."""
        t = packet.pts * self.seconds_per_tick
        if self.end is not None and t >= self.end:
            self.done = True
            return False
        if t < self.start and not self.first:
            return False
        shift_packet(packet, self.shift, out_stream)
        return True


def copy_audio(src, out, out_a, start_pts: int, end_pts: int | None) -> None:
    """Copy the audio packets of ``src`` in the video window ``[start_pts, end_pts)`` (see
    :class:`AudioWindow`) to ``out_a``, in a pass of their own."""
    window = AudioWindow(src, start_pts, end_pts)
    seek_before(src, src.streams.video[0], start_pts)  # audio stored just before the keyframe belongs to it too
    for packet in src.demux(window.audio):
        if packet.size == 0 or packet.pts is None:
            continue
        if window.take(packet, out_a):
            out.mux(packet)
        elif window.done:
            break


@dataclass(frozen=True)
class PacketSpan:
    """A chunk of a video by packets: video decode times ``[first_dts, end_dts)`` showing
    ``[start_pts, end_pts)`` (``end_*`` None: to the end), in the video stream's time base."""

    first_dts: int
    end_dts: int | None
    start_pts: int
    end_pts: int | None

    def to_meta(self) -> list:
        return [self.first_dts, self.end_dts, self.start_pts, self.end_pts]

    @classmethod
    def from_meta(cls, values: list) -> "PacketSpan":
        return cls(*values)


def span_packets(src, video, span: "PacketSpan"):
    """The video packets of ``span``, in decode order."""
    seek_before(src, video, span.first_dts)
    for packet in src.demux(video):
        if packet.size == 0 or packet.pts is None:
            continue
        dts = packet.pts if packet.dts is None else packet.dts
        if dts < span.first_dts:
            continue
        if span.end_dts is not None and dts >= span.end_dts:
            break
        yield packet


def seek_before(src, video, ts: int) -> None:
    """Seek ``src`` to a keyframe a second or more before ``ts`` (video time base): containers
    seek by show or by decode time, and a little early is always safe."""
    src.seek(max(0, ts - int(1 / video.time_base)), stream=video, backward=True)


def shift_packet(packet, by: int, stream) -> None:
    """Move a packet ``by`` ticks earlier and onto the output ``stream``."""
    packet.dts = None if packet.dts is None else packet.dts - by
    packet.pts -= by
    packet.stream = stream


def span_of(index: VideoIndex, start: int, end: int) -> PacketSpan:
    """The packets of frames ``[start, end)`` between two clean cuts of ``index``.

    >>> idx = VideoIndex("v", "h264", 2, 2, 1.0, Fraction(1), [0, 2, 1, 3], [-1, 0, 1, 2], [1] * 4, [0, 3], 4)
    >>> span_of(idx, 0, 3), span_of(idx, 3, 4)
    (PacketSpan(first_dts=-1, end_dts=2, start_pts=0, end_pts=3), PacketSpan(first_dts=2, end_dts=None, start_pts=3, \
end_pts=None))
    """
    shown = index.shown
    last = end >= index.frames
    return PacketSpan(first_dts=index.dts[start], end_dts=None if last else index.dts[end],
                      start_pts=shown[start], end_pts=None if last else shown[end])


class output_file:
    """An output container opened for writing; a failure leaves no half-written file."""

    def __init__(self, dest: str, fmt: str):
        self.dest, self.fmt = dest, fmt

    def __enter__(self):
        import av

        if os.path.lexists(self.dest):
            os.unlink(self.dest)  # never write through a link an earlier attempt's app made
        self.container = av.open(self.dest, "w", format=self.fmt)
        return self.container

    def __exit__(self, kind, exc, tb):
        self.container.close()
        if kind is not None and os.path.exists(self.dest):
            os.unlink(self.dest)
        return False


def plan_cuts(index: VideoIndex, frames_per_chunk: int | None = None,
              seconds_per_chunk: float | None = None) -> list[tuple[int, int]]:
    """Frame ranges ``[start, end)`` cut at clean keyframes: each chunk runs to the first
    clean cut at least ``frames_per_chunk`` frames (or ``seconds_per_chunk`` seconds)
    after its start; the last one may be shorter.

    >>> idx = VideoIndex("v", "h264", 2, 2, 1.0, Fraction(1), list(range(10)), list(range(10)), [1] * 10,
    ...                  [0, 3, 6, 9], 10)
    >>> plan_cuts(idx, frames_per_chunk=4), plan_cuts(idx, seconds_per_chunk=3)
    ([(0, 6), (6, 10)], [(0, 3), (3, 6), (6, 9), (9, 10)])
    """
    times = index.times()
    out, start = [], 0
    for cut in index.cuts[1:]:
        far_enough = (cut - start >= frames_per_chunk) if frames_per_chunk \
            else (times[cut] - times[start] >= seconds_per_chunk - 1e-9)
        if far_enough:
            out.append((start, cut))
            start = cut
    out.append((start, index.frames))
    return out


def exact_cuts(frames: int, frames_per_chunk: int) -> list[tuple[int, int]]:
    """Frame ranges of exactly ``frames_per_chunk`` frames (the last one may be shorter).

    >>> exact_cuts(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    return [(s, min(frames, s + frames_per_chunk)) for s in range(0, frames, frames_per_chunk)]
