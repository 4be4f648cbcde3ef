"""Shot-change detection on a downscaled decode, for ``video-scenes``.

The video is decoded once with FFmpeg's frame threads (PyAV); each frame is
scaled by FFmpeg's swscale (area averaging) to a small YUV 4:4:4 picture
(``analysis_width`` pixels wide), and the only per-frame work in Python is
one numpy difference with the previous small picture: the mean absolute
difference of its luma and chroma samples (0-255). Detection therefore costs
little more than the decode.

A frame starts a new scene when its difference ``d`` from the previous frame

- is at least ``threshold`` (an absolute floor: hard cuts between unrelated
  pictures score 20-100, steady scenes 0-10), and
- is at least ``ratio`` times the *level* of the calmer side: the median
  difference of the ``window`` frames before it, or of those after it,
  whichever is lower (the adaptive rule: a scene with fast motion or noise
  has a high level of its own, and a cut has that scene on one side only), and
- when it is not that far above the other side's level too, is a clear peak:
  at least ``PEAK`` times the differences of the frames just before and after
  it. Otherwise it is the first (or last) frame of a fast scene next to a calm
  one, which stands out from the calm side as much as a cut does.

The medians ignore the few cuts inside their windows. Cuts closer than
``min_length`` frames to a sharper one (or to the start or the end of the
video) are dropped, the sharpest kept first: sharpness is a frame's difference
over the previous frame's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from .exceptions import BadRecordError
from .media import open_container

#: width of the pictures compared (height keeps the aspect ratio)
DEFAULT_ANALYSIS_WIDTH = 128
DEFAULT_THRESHOLD = 8.0
DEFAULT_RATIO = 3.0
DEFAULT_WINDOW = 8
#: a jump that stands out from one side only must be this many times its neighbours' differences
PEAK = 1.25


@dataclass
class FrameScan:
    """What one decode of a video tells: per-frame differences and timing.

    ``diffs[i]`` is frame ``i``'s difference from frame ``i - 1`` (``diffs[0]`` is
    0); ``times[i]`` its presentation time in seconds in the source's timeline;
    ``keyframes`` the indices of frames that are keyframes; ``end`` the time the
    last frame ends; ``start_time`` the file's start time (its earliest stream's).
    """

    diffs: list = field(default_factory=list)
    times: list = field(default_factory=list)
    keyframes: list = field(default_factory=list)
    fps: float = 0.0
    end: float = 0.0
    start_time: float = 0.0

    @property
    def frames(self) -> int:
        return len(self.times)


def analysis_size(width: int, height: int, analysis_width: int) -> tuple[int, int]:
    """The small picture's size: ``analysis_width`` wide (never wider than the
    video), the height by the aspect ratio, both even for swscale.

    >>> analysis_size(1280, 720, 128), analysis_size(100, 50, 128)
    ((128, 72), (100, 50))
    """
    w = min(width, analysis_width)
    h = max(2, round(height * w / width))
    return w - w % 2 or 2, h - h % 2 or 2


def small_picture(frame, size: tuple[int, int], reformatter=None):
    """``frame`` scaled to ``size`` as YUV 4:4:4, a (3, height, width) uint8 array.

    Area averaging: each small pixel is the mean of the pixels it covers, so
    noise and fine texture average out as the eye sees them, at a third of the
    cost of swscale's default bicubic filter at a tenfold downscale. Pass one
    ``reformatter`` (``av.video.reformatter.VideoReformatter()``) for every
    frame of a video: it keeps its scaling context, which ``frame.reformat``
    builds anew for each frame.

    >>> import av
    >>> frame = av.VideoFrame(64, 48, "yuv420p")
    >>> small_picture(frame, (16, 12)).shape
    (3, 12, 16)
    """
    if reformatter is None:
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
    return reformatter.reformat(frame, width=size[0], height=size[1], format="yuv444p",
                                interpolation="AREA").to_ndarray()


def open_video(path_or_file, name: str):
    """Open a file with PyAV and return ``(container, video_stream)`` set up for
    detection (frame threads, no deblocking); a file without a video stream is a
    :class:`BadRecordError`."""
    container = open_container(path_or_file, name)
    if not container.streams.video:
        container.close()
        raise BadRecordError("no video stream in it", file=name)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads: decoding is most of the cost
    # no deblocking: it smooths block edges a few pixels wide, which the small picture averages away anyway,
    # and skipping it saves about a tenth of an H.264 decode
    stream.codec_context.options = {"skip_loop_filter": "all"}
    return container, stream


def scan(path_or_file, name: str, analysis_width: int = DEFAULT_ANALYSIS_WIDTH) -> FrameScan:
    """Decode the first video stream of ``path_or_file`` once and measure every
    frame's difference from the previous one on a small picture.

    A file that stops decoding, or ends well before the frame count or the
    duration its header promises (a truncated file), is a
    :class:`BadRecordError` naming ``name`` and where it stopped.

    >>> scan("/nonexistent/clip.mp4", "clip.mp4")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.BadRecordError: clip.mp4: not a media file FFmpeg can read (No such file or directory)
    """
    import av
    import numpy as np

    container, stream = open_video(path_or_file, name)
    out = FrameScan()
    rate = stream.average_rate or stream.guessed_rate
    out.fps = float(rate) if rate else 0.0
    if container.start_time is not None:  # the file's start, which ffmpeg's -ss counts from
        out.start_time = container.start_time / 1e6
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    size = None
    prev = None
    last_time = None
    try:
        with container:
            for frame in container.decode(stream):
                if size is None:
                    size = analysis_size(frame.width, frame.height, analysis_width)
                cur = small_picture(frame, size, reformatter).astype(np.int16)
                out.diffs.append(0.0 if prev is None else float(np.abs(cur - prev).mean()))
                prev = cur
                t = frame.time if frame.time is not None else len(out.times) / (out.fps or 1.0)
                out.times.append(t)
                if frame.key_frame:
                    out.keyframes.append(len(out.times) - 1)
                last_time = t
            promised, promised_seconds = stream.frames, stream_duration(stream)
    except av.error.FFmpegError as exc:
        raise BadRecordError(f"cannot decode frame {len(out.times)} ({exc})", file=name) from None
    if not out.times:
        raise BadRecordError("no frame could be decoded from its video stream", file=name)
    if promised and out.frames < promised * 0.98 - 1:
        raise BadRecordError(f"its video ends after frame {out.frames} of the {promised} its header lists "
                             "(truncated?)", file=name)
    step = 1.0 / out.fps if out.fps else 0.0
    out.end = last_time + step
    decoded = out.end - out.times[0]
    if promised_seconds and decoded < promised_seconds - max(2 * step, 0.1):
        raise BadRecordError(f"its video ends after {decoded:.3f} s of the {promised_seconds:.3f} s its header "
                             "lists (truncated?)", file=name)
    return out


def stream_duration(stream) -> float | None:
    """The video stream's duration in seconds as its header gives it: the stream's
    own duration, else the ``DURATION`` tag Matroska and WebM files carry per stream.

    >>> class S: duration, time_base, metadata = None, None, {"DURATION": "00:01:02.500000000"}
    >>> stream_duration(S())
    62.5
    """
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (AttributeError, ValueError):
        return None


def side_levels(diffs, window: int):
    """The median difference of the ``window`` frames before each frame and of the
    ``window`` frames after it (fewer at the ends, 0 where there is none).

    >>> [x.tolist() for x in side_levels([0, 1, 1, 9, 1, 1], 2)]
    [[0.0, 0.0, 0.5, 1.0, 5.0, 5.0], [1.0, 5.0, 5.0, 1.0, 1.0, 0.0]]
    """
    import numpy as np

    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    # pad with NaNs so a side's window shrinks at the ends, then one vectorised nanmedian per side
    padded = np.concatenate([np.full(window, np.nan), d, np.full(window, np.nan)])
    rows = np.arange(n)[:, None] + np.arange(window)[None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a side without frames: all NaN
        before = np.nanmedian(padded[rows], axis=1)
        after = np.nanmedian(padded[rows + window + 1], axis=1)
    return np.nan_to_num(before), np.nan_to_num(after)


def find_cuts(diffs, threshold: float = DEFAULT_THRESHOLD, ratio: float = DEFAULT_RATIO,
              window: int = DEFAULT_WINDOW, min_length: int = 1) -> list[int]:
    """The frames that start a new scene (ascending), by the rules in this
    module's docstring. Frame 0 always starts the first scene and is not listed.

    >>> d = [0, 1, 1, 1, 40, 1, 1, 1, 1, 30, 1, 1, 2, 20, 1]
    >>> find_cuts(d), find_cuts(d, min_length=5), find_cuts(d, threshold=35)
    ([4, 9, 13], [9], [4])
    """
    import numpy as np

    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    if n < 2:
        return []
    before, after = side_levels(d, window)
    prev = np.concatenate([[0.0], d[:-1]])
    following = np.concatenate([d[1:], [0.0]])
    # a jump above the calmer side's level; if it is not above the other side's too, it must be a
    # clear peak, else it is the start (or end) of a fast scene next to a calm one, not a cut
    stands_out = d >= ratio * np.minimum(before, after)
    above_both = d >= ratio * np.maximum(before, after)
    peak = d >= PEAK * np.maximum(prev, following)
    candidates = np.flatnonzero((d >= threshold) & stands_out & (above_both | peak))
    candidates = candidates[candidates > 0]
    kept: list[int] = []
    # the sharpest jumps first (difference over the previous frame's): the first frames of a fast scene
    # after a cut from a calm one may also clear the rules, but they never jump from the cut itself
    jump = d / np.maximum(prev, 1.0)
    for i in sorted(candidates.tolist(), key=lambda i: (-jump[i], i)):
        if i < min_length or n - i < min_length:
            continue
        if all(abs(i - k) >= min_length for k in kept):
            kept.append(i)
    return sorted(kept)
