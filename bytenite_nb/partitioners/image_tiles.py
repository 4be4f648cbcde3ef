"""``image-tiles``: tiles of images, lossless, with their place in the image.

Planning opens each image only far enough to read its header (Pillow's
``Image.open`` reads the size and mode without decoding pixels), so a huge
image costs the planner a few kilobytes. The worker that runs a tile decodes
the image and crops the tile: its memory is bounded by the decoded image
(width x height x bytes per pixel) plus the tile, never by the other tiles.
For a non-interlaced PNG and for uncompressed images, only the rows down to
the tile's bottom edge are decoded (see :func:`decode_rows`).

Tiles are written as PNG, which holds the modes ``1``, ``L``, ``LA``, ``P``,
``RGB``, ``RGBA`` and ``I;16`` exactly; any other mode (``I``, ``F``,
``CMYK``, ...) is written as TIFF, which holds them exactly too.
"""

from __future__ import annotations

import math
import os

from ..exceptions import BadRecordError, FieldError, PartitionError
from ..images import open_image
from .base import ChunkRef, Partitioner, Source

#: modes a PNG holds without loss; other modes go to TIFF
PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})


def tile_format(mode: str) -> str:
    """The lossless format a tile of ``mode`` is written in.

    >>> tile_format("RGB"), tile_format("I;16"), tile_format("F")
    ('png', 'png', 'tiff')
    """
    return "png" if mode in PNG_MODES else "tiff"


def bytes_per_pixel(mode: str) -> int:
    """Bytes a pixel of ``mode`` takes decoded (at least 1).

    >>> bytes_per_pixel("RGB"), bytes_per_pixel("I;16"), bytes_per_pixel("1")
    (3, 2, 1)
    """
    from PIL import Image

    return max(1, len(Image.new(mode, (1, 1)).tobytes()))


def grid(width: int, height: int, tile_width: int, tile_height: int, overlap: int = 0):
    """The tiles of a ``width`` x ``height`` image, row by row: ``(row, col, core, box)``,
    ``core`` the tile's own cell and ``box`` the cell grown by ``overlap`` pixels on every
    side inside the image; boxes are (left, top, right, bottom), right and bottom excluded.

    >>> [(r, c, core, box) for r, c, core, box in grid(5, 3, 3, 3, overlap=1)]
    [(0, 0, (0, 0, 3, 3), (0, 0, 4, 3)), (0, 1, (3, 0, 5, 3), (2, 0, 5, 3))]
    """
    cols, rows = math.ceil(width / tile_width), math.ceil(height / tile_height)
    for row in range(rows):
        for col in range(cols):
            left, top = col * tile_width, row * tile_height
            core = (left, top, min(width, left + tile_width), min(height, top + tile_height))
            box = (max(0, core[0] - overlap), max(0, core[1] - overlap),
                   min(width, core[2] + overlap), min(height, core[3] + overlap))
            yield row, col, core, box


def decode_rows(image, bottom: int):
    """Decode ``image`` (just opened) down to row ``bottom`` only, when its data is one
    run of rows decoded top to bottom (a non-interlaced PNG, an uncompressed image):
    the rows below the tile are never decoded. Otherwise the whole image is decoded.
    Returns the decoded image (possibly shorter than the original).

    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> Image.new("L", (4, 10), 7).save(buf, "PNG")
    >>> decode_rows(Image.open(buf), 3).size
    (4, 3)
    """
    width, height = image.size
    tiles = getattr(image, "tile", None) or []
    rowwise = (len(tiles) == 1 and tiles[0][0] in ("zip", "raw") and tuple(tiles[0][1]) == (0, 0, width, height)
               and not image.info.get("interlace") and image.format in ("PNG", "PPM", "TIFF"))  # BMP rows run bottom-up
    if rowwise and bottom < height:
        decoder, _, offset, args = tiles[0][:4]
        image.tile = [type(tiles[0])(decoder, (0, 0, width, bottom), offset, args)]
        # the decoder stops after these rows; _size is what Pillow's format plugins set in _open
        image._size = (width, bottom)
    image.load()
    return image


class ImageTiles(Partitioner):
    """Tiles of ``tile_width`` x ``tile_height`` pixels of every image of the
    source (any format Pillow reads), row by row, each grown by ``overlap``
    pixels on every side inside the image; tiles at the right and bottom edges
    are smaller when the size is not a multiple of the tile. The planner reads
    only each image's header; the worker decodes the image and crops its tile,
    written losslessly as PNG (TIFF for modes PNG cannot hold, such as I, F and
    CMYK). Each chunk's CHUNK_INFO gives image (its name), box (left, top,
    right, bottom of the tile, overlap included), core (the tile without
    overlap), image_size (width, height), mode, grid (row, col), grid_size
    (rows, cols), overlap and tile_format. A file Pillow cannot read fails the
    job naming it."""

    schema = {
        "type": "object",
        "properties": {
            "tile_width": {"type": "integer", "minimum": 1, "default": 1024,
                           "description": "Width of a tile in pixels (before overlap)."},
            "tile_height": {"type": "integer", "minimum": 1, "default": 1024,
                            "description": "Height of a tile in pixels (before overlap)."},
            "overlap": {"type": "integer", "minimum": 0, "default": 0,
                        "description": "Pixels each tile extends into its neighbours on every side."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        tile_width, tile_height = params.get("tile_width", 1024), params.get("tile_height", 1024)
        overlap = params.get("overlap", 0)
        if overlap >= min(tile_width, tile_height):
            raise FieldError("params.partitioner.overlap",
                             f"{overlap} must be less than tile_width and tile_height ({tile_width}, {tile_height})")
        for f in source.files:
            with source.open(f.url, block_size=2**16) as stream, open_image(stream, f.name) as image:
                (width, height), mode = image.size, image.mode
            rows, cols = math.ceil(height / tile_height), math.ceil(width / tile_width)
            per_pixel = bytes_per_pixel(mode)
            for row, col, core, box in grid(width, height, tile_width, tile_height, overlap):
                meta = {"image": f.name, "box": list(box), "core": list(core), "image_size": [width, height],
                        "mode": mode, "grid": [row, col], "grid_size": [rows, cols], "overlap": overlap,
                        "tile_format": tile_format(mode)}
                area = (box[2] - box[0]) * (box[3] - box[1])  # the tile's decoded bytes: about its size, or more
                yield ChunkRef(url=f.url, size=area * per_pixel, label=f"{f.name} tile {row},{col}", meta=meta)

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """Decode the image and write the chunk's tile (its ``box``) to ``dest``."""
        from fsspec.core import url_to_fs

        name, box = ref.meta["image"], tuple(ref.meta["box"])
        if os.path.lexists(dest):
            os.unlink(dest)  # never write through a link an earlier attempt's app made
        fs, path = url_to_fs(ref.url, **(storage_options or {}))
        with fs.open(path, "rb") as stream, open_image(stream, name) as image:
            if list(image.size) != ref.meta["image_size"] or image.mode != ref.meta["mode"]:
                raise PartitionError(f"chunk {ref.index}: {name} is now {image.size[0]}x{image.size[1]} "
                                     f"{image.mode}, planned as {ref.meta['image_size']} {ref.meta['mode']} "
                                     "(did the source change after planning?)")
            try:
                tile = decode_rows(image, box[3]).crop(box)
            except (OSError, SyntaxError, ValueError) as exc:
                raise BadRecordError(f"cannot decode the image ({exc})", file=name, chunk=ref.index) from None
        with open(dest, "wb") as out:
            if ref.meta["tile_format"] == "png":
                tile.save(out, "PNG", compress_level=1)  # lossless either way; fast beats small here
            else:
                tile.save(out, "TIFF")
        return os.path.getsize(dest)
