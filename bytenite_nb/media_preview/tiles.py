"""Thumbnails of the first tiles of an ``image-tiles`` plan, cut from the source.

Each image is opened once for all its tiles shown. Only what the tiles need
is decoded: a JPEG at a reduced scale (its decoder's draft mode, down to an
eighth, never smaller than the thumbnails need), a non-interlaced PNG or an
uncompressed image down to the lowest tile's bottom row only (see
:func:`bytenite_nb.partitioners.image_tiles.decode_rows`).
"""

from __future__ import annotations

from ..exceptions import BadRecordError
from .pictures import displayable, picture, shrink

SIDE = 128  # a thumbnail fits in SIDE x SIDE pixels


def _scaled_box(box, scale: tuple[float, float]) -> tuple[int, int, int, int]:
    left, top = int(box[0] * scale[0]), int(box[1] * scale[1])
    return left, top, max(left + 1, round(box[2] * scale[0])), max(top + 1, round(box[3] * scale[1]))


def decoded_for(image, boxes: list, side: int = SIDE):
    """``image`` (just opened) decoded only as far as ``boxes`` (left, top, right,
    bottom) need for thumbnails of ``side`` pixels; returns the decoded image and
    the scale (x, y) from the image's pixels to the decoded one's.

    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (64, 400)).save(buf, "PNG")
    >>> decoded, scale = decoded_for(Image.open(buf), [(0, 0, 64, 100)])
    >>> decoded.size, scale
    ((64, 100), (1.0, 1.0))
    """
    from ..partitioners.image_tiles import decode_rows

    width, height = image.size
    if image.format == "JPEG":
        # the decoder scales by 1/2, 1/4 or 1/8 while it decodes: the smallest that keeps the thumbnails sharp
        smallest = min(min(b[2] - b[0], b[3] - b[1]) for b in boxes)
        factor = max(1, min(8, smallest // side))
        image.draft(image.mode, (max(1, width // factor), max(1, height // factor)))
        image.load()
        return image, (image.width / width, image.height / height)
    return decode_rows(image, max(b[3] for b in boxes)), (1.0, 1.0)


def tile_pictures(refs: list, storage_options: dict | None = None, *, items: int = 8, side: int = SIDE) -> list[dict]:
    """Pictures of the first ``items`` tiles of ``refs`` (``image-tiles`` chunks):
    each tile's ``box`` cut from its image and shrunk to fit ``side`` x ``side``.

    >>> import os, tempfile
    >>> from PIL import Image
    >>> from bytenite_nb.partitioners import ChunkRef
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png"); Image.new("RGB", (300, 200), "red").save(path)
    >>> ref = ChunkRef(index=0, url=path, label="a.png tile 0,0", meta={"image": "a.png", "box": [0, 0, 256, 200]})
    >>> [(p["caption"], p["width"], p["height"]) for p in tile_pictures([ref])]
    [('a.png tile 0,0', 128, 100)]
    """
    from fsspec.core import url_to_fs

    from ..images import open_image

    shown = [r for r in refs if r.url is not None and "box" in r.meta][:items]
    by_url: dict[str, list] = {}
    for ref in shown:
        by_url.setdefault(ref.url, []).append(ref)
    thumbs: dict[int, dict] = {}
    for url, tiles in by_url.items():
        name = str(tiles[0].meta.get("image") or url)
        fs, path = url_to_fs(url, **(storage_options or {}))
        with fs.open(path, "rb", block_size=2**20) as stream, open_image(stream, name) as image:
            try:
                decoded, scale = decoded_for(image, [r.meta["box"] for r in tiles], side)
                for ref in tiles:
                    tile = displayable(decoded.crop(_scaled_box(ref.meta["box"], scale)))
                    thumbs[ref.index] = picture(shrink(tile, side, side), ref.label or f"{name} tile",
                                                chunk=ref.index, box=list(ref.meta["box"]))
            except (OSError, SyntaxError, ValueError) as exc:
                raise BadRecordError(f"cannot decode the image ({exc})", file=name) from None
    return [thumbs[r.index] for r in shown]
