"""Where the chunks of a media plan fall in their source: times in seconds from
each chunk's metadata, the cut points between them, and the source opened
with PyAV where it lies (a local path, or a seekable remote file).
"""

from __future__ import annotations

import contextlib
import posixpath


def chunk_window(meta: dict) -> tuple[float, float] | None:
    """A chunk's ``(start, end)`` in seconds of its source: ``start``/``end``, else
    ``start_frame``/``end_frame`` over ``fps``, else ``start_sample``/``end_sample``
    over ``sample_rate``; None when the chunk is not a time window.

    >>> chunk_window({"start": 1.5, "end": 3.0}), chunk_window({"start_frame": 50, "end_frame": 75, "fps": 25})
    ((1.5, 3.0), (2.0, 3.0))
    >>> chunk_window({"rows": [0, 5]}) is None
    True
    """
    for start, end, per_second in (("start", "end", None), ("start_frame", "end_frame", "fps"),
                                   ("start_sample", "end_sample", "sample_rate")):
        if isinstance(meta.get(start), (int, float)) and isinstance(meta.get(end), (int, float)):
            rate = 1.0 if per_second is None else meta.get(per_second)
            if isinstance(rate, (int, float)) and rate > 0:
                return float(meta[start]) / rate, float(meta[end]) / rate
    return None


def cut_times(windows: list[tuple[float, float]], duration: float) -> list[float]:
    """The distinct chunk starts and ends strictly inside ``(0, duration)``: where the
    source is cut (a start after a gap and the end before it are both cuts).

    >>> cut_times([(0, 2), (2, 5), (6, 9)], 9.0)
    [2.0, 5.0, 6.0]
    """
    edges = {round(float(t), 6) for window in windows for t in window}
    return sorted(t for t in edges if 0 < t < duration - 1e-6)


def column(t: float, duration: float, width: int) -> int:
    """The pixel column of time ``t`` on a ``width``-pixel picture of ``duration``
    seconds: column ``x`` shows ``[x, x + 1) * duration / width``.

    >>> column(0.0, 10.0, 800), column(2.5, 10.0, 800), column(10.0, 10.0, 800)
    (0, 200, 799)
    """
    if duration <= 0:
        return 0
    return min(width - 1, max(0, int(t * width / duration)))


def source_name(ref) -> str:
    """The name a chunk's source goes by in a preview: its ``source`` meta, else its URL's last part."""
    return str(ref.meta.get("source") or ref.meta.get("image") or posixpath.basename((ref.url or "").rstrip("/")))


def by_source(refs) -> dict[str, list]:
    """The chunks grouped by the object they come from (their URL), in plan order.

    >>> from bytenite_nb.partitioners import ChunkRef
    >>> list(by_source([ChunkRef(url="a"), ChunkRef(url="b"), ChunkRef(url="a")]).items())[0][0]
    'a'
    """
    groups: dict[str, list] = {}
    for ref in refs:
        if ref.url is not None:
            groups.setdefault(ref.url, []).append(ref)
    return groups


@contextlib.contextmanager
def opened_media(url: str, name: str, storage_options: dict | None = None):
    """The media file at ``url`` opened with PyAV (see :func:`bytenite_nb.media.open_container`):
    a local file by its path, anything else through fsspec, read as PyAV seeks, never whole."""
    from fsspec.core import url_to_fs

    from ..media import open_container

    fs, path = url_to_fs(url, **(storage_options or {}))
    with contextlib.ExitStack() as stack:
        if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
            target = path
        else:
            target = stack.enter_context(fs.open(path, "rb", block_size=2**20))
        container = stack.enter_context(open_container(target, name))
        yield container


def stream_duration(container, stream) -> float | None:
    """The length of ``stream`` in seconds as the container says it (its own, else the container's)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base
    return None
