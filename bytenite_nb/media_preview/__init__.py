"""What a media plan looks like before it runs: thumbnails of the first tiles
of images, a waveform of each audio source with its cuts, a strip of video
frames at the chunk starts with the scene cuts.

:func:`media_sample` is what the planning task puts in a plan's ``sample``
when the chunks are media (by the partitioner's name, ``image-tiles``,
``audio-*``, ``video-*``, or by the chunk metadata the media partitioners
share: ``box``; ``sample_rate``; ``fps``, ``scene``; ``start``/``end`` with
``source``). It reads the sources where the plan runs (a Dask worker, the
server), never the client, and never a whole long file: see the modules
:mod:`.tiles`, :mod:`.waveform` and :mod:`.frames` for the bounds.
"""

from __future__ import annotations

import functools

from .timeline import by_source, chunk_window, opened_media

#: thumbnails (tiles, video frames) and sources (waveforms, strips) shown at most
ITEMS = 8
SOURCES = 3

AUDIO_KEYS = ("sample_rate", "start_sample", "end_sample")
VIDEO_KEYS = ("fps", "start_frame", "end_frame", "scene", "rendition")


def media_kind(refs: list, partitioner: str | None = None, storage_options: dict | None = None) -> str | None:
    """``image``, ``audio``, ``video`` or None (not media) for a plan's chunks: by the
    partitioner's name, else by the first chunk's metadata; a bare time window with a
    ``source`` is video if its file has a video stream, else audio.

    >>> from bytenite_nb.partitioners import ChunkRef
    >>> media_kind([], "audio-silence"), media_kind([ChunkRef(meta={"start": 0, "end": 1, "fps": 25.0})])
    ('audio', 'video')
    >>> media_kind([ChunkRef(meta={"rows": [0, 5]})], "rows") is None
    True
    """
    name = partitioner if isinstance(partitioner, str) else ""
    if name == "image-tiles":
        return "image"
    for family in ("audio", "video"):
        if name.startswith(family + "-"):
            return family
    meta = refs[0].meta if refs else {}
    if "box" in meta and "image_size" in meta:
        return "image"
    if any(k in meta for k in AUDIO_KEYS):
        return "audio"
    if any(k in meta for k in VIDEO_KEYS):
        return "video"
    if "source" in meta and chunk_window(meta) is not None and refs[0].url is not None:
        with opened_media(refs[0].url, str(meta["source"]), storage_options) as container:
            return "video" if container.streams.video else "audio"
    return None


def media_sample(refs: list, partitioner: str | None = None, storage_options: dict | None = None, *,
                 items: int = ITEMS, sources: int = SOURCES) -> dict | None:
    """The preview of a media plan (None when ``refs`` are not media; see
    :func:`media_kind`): ``{"chunk": 0, "kind": "media", "media": ..., "heading": ...,
    "pictures": [...]}``, each picture a ``data:`` URL with its ``caption``, size and
    what it shows (see :mod:`.pictures`). Up to ``items`` tile thumbnails, or one
    waveform or frame strip for each of the first ``sources`` sources.

    >>> import os, tempfile
    >>> from PIL import Image
    >>> from bytenite_nb.partitioners import ChunkRef
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png"); Image.new("L", (40, 20)).save(path)
    >>> ref = ChunkRef(index=0, url=path, meta={"image": "a.png", "box": [0, 0, 20, 20], "image_size": [40, 20]})
    >>> sample = media_sample([ref], "image-tiles")
    >>> sample["media"], sample["heading"], len(sample["pictures"])
    ('image', 'the first 1 tile(s) of 1', 1)
    >>> media_sample([ChunkRef(meta={"rows": [0, 5]})]) is None
    True
    """
    kind = media_kind(refs, partitioner, storage_options)
    if kind is None or not refs:
        return None
    if kind == "image":
        from .tiles import tile_pictures

        pictures = tile_pictures(refs, storage_options, items=items)
        heading = f"the first {len(pictures)} tile(s) of {len(refs)}"
    else:
        groups = list(by_source(refs).items())
        if kind == "audio":
            from .waveform import waveform_picture as draw
        else:
            from .frames import strip_picture

            draw = functools.partial(strip_picture, items=items)
        pictures = [draw(url, group, storage_options) for url, group in groups[:sources]]
        what = "waveform" if kind == "audio" else "frames at the chunk starts"
        heading = f"{what} of {len(pictures)} source(s) of {len(groups)}"
    sample = {"chunk": refs[0].index, "kind": "media", "media": kind, "heading": heading, "pictures": pictures}
    if not pictures:
        sample["note"] = "no chunk names a source file to draw from"
    return sample

