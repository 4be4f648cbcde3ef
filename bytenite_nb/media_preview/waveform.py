"""The waveform of an audio source with its chunk cuts drawn on it.

The envelope (each pixel column's lowest and highest sample) comes from
PyAV's decoder, one frame at a time, so memory is that of one frame plus two
rows of ``width`` numbers. A source longer than ``full_seconds`` is not
decoded whole: each column is measured on a short window decoded after a
seek, so time is bounded by ``width`` windows whatever the file's length.
"""

from __future__ import annotations

import math

from ..exceptions import BadRecordError
from .pictures import picture
from .timeline import chunk_window, column, cut_times, opened_media, source_name, stream_duration

WIDTH, HEIGHT = 800, 120
#: a source up to this long is decoded whole; a longer one column window by column window
FULL_SECONDS = 600.0
#: the longest window measured per column of a long source
WINDOW_SECONDS = 0.25
#: samples of contiguous frames measured together
BATCH = 2**16

BACKGROUND = (255, 255, 255)
UNCOVERED = (232, 232, 232)  # in no chunk (a dropped silence)
WAVE = (52, 101, 164)
CUT = (204, 0, 0)
AXIS = (180, 180, 180)


class Envelope:
    """The lowest and highest sample value (-1..1, all channels) per pixel column."""

    def __init__(self, width: int, duration: float):
        import numpy as np

        self.width, self.duration = width, duration
        self.low = np.full(width, np.inf, dtype=np.float32)
        self.high = np.full(width, -np.inf, dtype=np.float32)

    def add(self, t0: float, rate: int, samples, keep: tuple[float, float] | None = None) -> None:
        """Add ``samples`` (channels x n, floats) that start at ``t0`` seconds, at ``rate``
        per second; with ``keep``, only those inside that time window. Sample ``k`` is at
        ``t0 + k / rate`` and goes to the column of that time; a frame spans few columns,
        so each is one slice of the frame."""
        n = samples.shape[1]
        first, last = t0, t0 + n / rate
        if keep is not None:
            first, last = max(first, keep[0]), min(last, keep[1])
        if last <= first or n == 0:
            return
        per = self.width / self.duration  # columns per second
        for col in range(max(0, int(first * per)), min(self.width - 1, int(last * per)) + 1):
            begin = max(first, col / per)
            end = last if col == self.width - 1 else min(last, (col + 1) / per)  # the end goes to the last column
            i0 = max(0, math.ceil((begin - t0) * rate - 1e-6))
            i1 = min(n, math.ceil((end - t0) * rate - 1e-6))
            if i1 > i0:
                part = samples[:, i0:i1]
                self.low[col] = min(self.low[col], part.min())
                self.high[col] = max(self.high[col], part.max())


def frame_samples(frame):
    """An audio frame's samples as channels x n floats in -1..1, whatever its sample format.

    >>> import av, numpy as np
    >>> f = av.AudioFrame.from_ndarray(np.array([[0, 16384, -32768, 0]], dtype=np.int16), format="s16", layout="stereo")
    >>> frame_samples(f).tolist()
    [[0.0, -1.0], [0.5, 0.0]]
    """
    import numpy as np

    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T  # interleaved: one row of c0 c1 c0 c1 ...
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128) / 128
    if data.dtype.kind == "i":
        return data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    return data.astype(np.float32, copy=False)


def envelope(container, name: str, width: int = WIDTH, duration: float | None = None,
             full_seconds: float = FULL_SECONDS) -> Envelope:
    """The :class:`Envelope` of the first audio stream of an open ``container``;
    ``duration`` when the container does not say it (the plan's last chunk end)."""
    import av

    if not container.streams.audio:
        raise BadRecordError("has no audio stream to draw", file=name)
    stream = container.streams.audio[0]
    duration = stream_duration(container, stream) or duration
    if not duration or duration <= 0:
        raise BadRecordError("the length of its audio is not known", file=name)
    env = Envelope(width, duration)
    try:
        if duration <= full_seconds:
            _whole(container, stream, env)
        else:
            _windows(container, stream, env)
    except av.error.FFmpegError as exc:
        raise BadRecordError(f"cannot decode its audio ({exc})", file=name) from None
    return env


def _whole(container, stream, env: Envelope) -> None:
    """Measure every sample, a run of contiguous frames at a time (up to :data:`BATCH`
    samples): one slice per column per run, not per frame."""
    import numpy as np

    run: list = []
    start = rate = end = None
    held = 0
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        samples = frame_samples(frame)
        contiguous = run and frame.sample_rate == rate and samples.shape[0] == run[0].shape[0] \
            and abs(frame.time - end) < 0.5 / rate + 1e-3
        if run and (not contiguous or held >= BATCH):
            env.add(start, rate, np.concatenate(run, axis=1))
            run, held = [], 0
        if not run:
            start, rate, end = frame.time, frame.sample_rate, frame.time
        run.append(samples)
        held += samples.shape[1]
        end += samples.shape[1] / rate
    if run:
        env.add(start, rate, np.concatenate(run, axis=1))


def _windows(container, stream, env: Envelope) -> None:
    """Measure each column on a short window in its middle, decoded after a seek."""
    step = env.duration / env.width
    span = min(step, WINDOW_SECONDS)
    for x in range(env.width):
        start = x * step + (step - span) / 2
        window = (start, start + span)
        container.seek(int(start / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if frame.time >= window[1]:
                break
            env.add(frame.time, frame.sample_rate, frame_samples(frame), keep=window)


def draw(env: Envelope, windows: list[tuple[float, float]], height: int = HEIGHT):
    """The waveform as a picture: the envelope around a middle line, what no chunk
    covers shaded, and a full-height line at each cut (see :func:`timeline.column`)."""
    import numpy as np
    from PIL import Image

    width, duration = env.width, env.duration
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    covered = np.zeros(width, dtype=bool)
    for start, end in windows:
        covered[column(start, duration, width):column(end, duration, width) + 1] = True
    pixels[:, :] = BACKGROUND
    pixels[:, ~covered] = UNCOVERED
    middle = (height - 1) / 2
    pixels[int(round(middle)), :] = AXIS
    measured = np.isfinite(env.low) & np.isfinite(env.high)
    low = np.clip(np.where(measured, env.low, 0), -1, 1)
    high = np.clip(np.where(measured, env.high, 0), -1, 1)
    top = np.floor(middle - high * middle).astype(int)  # higher values are further up
    bottom = np.ceil(middle - low * middle).astype(int)
    rows = np.arange(height)[:, None]
    pixels[(rows >= top) & (rows <= bottom) & measured] = WAVE
    for t in cut_times(windows, duration):
        pixels[:, column(t, duration, width)] = CUT
    return Image.fromarray(pixels, "RGB")


def waveform_picture(url: str, refs: list, storage_options: dict | None = None, *, width: int = WIDTH,
                     height: int = HEIGHT, full_seconds: float = FULL_SECONDS) -> dict:
    """A :func:`~bytenite_nb.media_preview.pictures.picture` of the waveform of the
    audio at ``url`` with the cuts between ``refs`` (its chunks) drawn in red;
    ``cuts`` lists each cut's ``time`` and column ``x``.

    >>> import os, tempfile, numpy as np, soundfile
    >>> path = os.path.join(tempfile.mkdtemp(), "beep.wav")
    >>> soundfile.write(path, np.sin(np.arange(8000) / 3) * 0.5, 8000)
    >>> from bytenite_nb.partitioners import ChunkRef
    >>> refs = [ChunkRef(url=path, meta={"start": 0.0, "end": 0.25}),
    ...         ChunkRef(url=path, meta={"start": 0.25, "end": 1.0})]
    >>> pic = waveform_picture(path, refs, width=400, height=50)
    >>> pic["width"], pic["height"], pic["cuts"]
    (400, 50, [{'time': 0.25, 'x': 100}])
    """
    name = source_name(refs[0])
    windows = [w for w in map(lambda r: chunk_window(r.meta), refs) if w is not None]
    with opened_media(url, name, storage_options) as container:
        env = envelope(container, name, width, max((end for _, end in windows), default=None), full_seconds)
    image = draw(env, windows, height)
    cuts = [{"time": t, "x": column(t, env.duration, width)} for t in cut_times(windows, env.duration)]
    return picture(image, f"{name}: {env.duration:.1f} s, {len(refs)} chunk(s), cuts in red",
                   source=name, duration=env.duration, cuts=cuts, chunks=[r.index for r in refs])
