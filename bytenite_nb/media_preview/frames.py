"""A strip of video frames: one near each chunk's start (each scene's first
chunk when the chunks carry ``scene``), with the scene cuts marked.

Frames are found with PyAV: a seek to the keyframe before the wanted time,
then decoding up to it, so the work per frame is bounded by the distance
between keyframes and only one frame is held at a time.
"""

from __future__ import annotations

from ..exceptions import BadRecordError
from .pictures import picture
from .timeline import chunk_window, column, cut_times, opened_media, source_name, stream_duration

HEIGHT = 90  # of a thumbnail
GAP = 6  # between thumbnails; red before the first frame of a scene
TIMELINE = 12  # the bar under the strip: the whole source, chunk cuts grey, scene cuts red

BACKGROUND = (255, 255, 255)
SCENE = (204, 0, 0)
CHUNK = (150, 150, 150)
BAR = (225, 225, 225)
STRIP_FORMAT = "PNG"  # the frames exactly as decoded (JPEG would blur sharp edges)


def chosen_chunks(refs: list, items: int) -> list:
    """The chunks whose start is shown: each scene's first chunk when they carry ``scene``,
    else every chunk; one per start time (the renditions of a ladder share theirs);
    at most ``items``.

    >>> from bytenite_nb.partitioners import ChunkRef
    >>> refs = [ChunkRef(index=i, meta={"scene": s, "start": float(i)}) for i, s in enumerate([0, 0, 1, 2, 2])]
    >>> [r.index for r in chosen_chunks(refs, 8)]
    [0, 2, 3]
    >>> ladder = [ChunkRef(index=i, meta={"start": float(i % 2), "end": i % 2 + 1.0}) for i in range(4)]
    >>> [r.index for r in chosen_chunks(ladder, 8)]
    [0, 1]
    """
    scenes = any("scene" in r.meta for r in refs)
    chosen, seen = [], set()
    for ref in refs:
        key = ref.meta.get("scene") if scenes else (chunk_window(ref.meta) or (ref.index,))[0]
        if key not in seen:
            seen.add(key)
            chosen.append(ref)
    return chosen[:items]


def frame_at(container, stream, t: float):
    """The first frame shown at or after ``t`` seconds (the last frame if ``t`` is past the end)."""
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    container.seek(max(0, int(t / stream.time_base)), stream=stream, backward=True)
    last = None
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        last = frame
        if frame.time >= t - 0.5 / rate:  # times are rounded to the stream's time base
            return frame
    return last


def thumbnail(frame, height: int = HEIGHT):
    """A decoded video frame as an RGB picture ``height`` pixels high (its shape kept)."""
    from PIL import Image

    image = frame.to_image()
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)


def strip_picture(url: str, refs: list, storage_options: dict | None = None, *, items: int = 8,
                  height: int = HEIGHT) -> dict:
    """A :func:`~bytenite_nb.media_preview.pictures.picture` of frames of the video at
    ``url``, one at the start of each chosen chunk of ``refs`` (see :func:`chosen_chunks`),
    side by side, a red gap before each scene's first frame, and a timeline bar below
    with every cut (grey) and scene cut (red). ``frames`` gives each frame's ``chunk``,
    ``time``, ``scene`` and ``box`` in the picture; ``cuts`` each cut's ``time``, ``x``
    and whether a scene starts there.

    >>> import os, tempfile, av, numpy as np
    >>> from bytenite_nb.partitioners import ChunkRef
    >>> path = os.path.join(tempfile.mkdtemp(), "fade.mp4")
    >>> with av.open(path, "w") as out:  # two seconds fading from black, 10 frames a second
    ...     s = out.add_stream("mpeg4", rate=10)
    ...     s.width, s.height, s.pix_fmt = 64, 36, "yuv420p"
    ...     for i in range(20):
    ...         out.mux(s.encode(av.VideoFrame.from_ndarray(np.full((36, 64, 3), i * 10, np.uint8), format="rgb24")))
    ...     out.mux(s.encode())
    >>> refs = [ChunkRef(index=i, url=path, meta={"start": t, "end": t + 1.0}) for i, t in enumerate([0.0, 1.0])]
    >>> pic = strip_picture(path, refs, height=36)
    >>> [f["box"] for f in pic["frames"]], pic["cuts"]
    ([[6, 6, 70, 42], [76, 6, 140, 42]], [{'time': 1.0, 'x': 73, 'scene': False}])
    """
    import av
    from PIL import Image

    name = source_name(refs[0])
    chosen = chosen_chunks(refs, items)
    windows = [chunk_window(r.meta) or (0.0, 0.0) for r in refs]
    thumbs = []
    with opened_media(url, name, storage_options) as container:
        if not container.streams.video:
            raise BadRecordError("has no video stream to show", file=name)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        duration = stream_duration(container, stream) or max((end for _, end in windows), default=0.0)
        try:
            for ref in chosen:
                t = (chunk_window(ref.meta) or (0.0, 0.0))[0]
                frame = frame_at(container, stream, t)
                if frame is None:
                    raise BadRecordError(f"no frame at {t:.3f} s (chunk {ref.index})", file=name)
                thumbs.append((ref, t, thumbnail(frame, height)))
        except av.error.FFmpegError as exc:
            raise BadRecordError(f"cannot decode its video ({exc})", file=name) from None
    width = sum(GAP + im.width for _, _, im in thumbs) + GAP
    bar_top = GAP + height + GAP
    strip = Image.new("RGB", (width, bar_top + TIMELINE), BACKGROUND)
    frames, x = [], GAP
    for i, (ref, t, image) in enumerate(thumbs):
        scene = ref.meta.get("scene")
        if i and scene is not None and scene != thumbs[i - 1][0].meta.get("scene"):
            strip.paste(SCENE, (x - GAP + 1, 0, x - 1, bar_top))
        strip.paste(image, (x, GAP))
        frames.append({"chunk": ref.index, "time": t, "scene": scene, "box": [x, GAP, x + image.width, GAP + height]})
        x += image.width + GAP
    strip.paste(BAR, (0, bar_top, width, bar_top + TIMELINE))
    scene_starts = {round(float((chunk_window(r.meta) or (0.0, 0.0))[0]), 6) for r in chosen_chunks(refs, len(refs))
                    if "scene" in r.meta}
    cuts = []
    for t in cut_times(windows, duration):
        x = column(t, duration, width)
        starts_scene = t in scene_starts
        strip.paste(SCENE if starts_scene else CHUNK, (x, bar_top, x + 1, bar_top + TIMELINE))
        cuts.append({"time": t, "x": x, "scene": starts_scene})
    return picture(strip, f"{name}: frames at {len(thumbs)} chunk start(s) of {len(refs)}, scene cuts in red",
                   fmt=STRIP_FORMAT, source=name, duration=duration, frames=frames, cuts=cuts,
                   chunks=[r.index for r in refs])
