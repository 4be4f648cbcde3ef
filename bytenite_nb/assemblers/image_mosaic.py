"""``image-mosaic``: tiles back into whole images.

Each chunk's ``CHUNK_INFO`` (set by ``image-tiles``) says where its tile
goes: ``box`` in an image of ``image_size`` and ``mode``. Without overlap the
tiles are pasted as they are, so ``image-tiles`` -> ``identity`` ->
``image-mosaic`` gives the pixels back exactly. With overlap, ``crop`` keeps
each tile's own cell (``core``: the overlap is split at its middle) and
``blend`` feathers the overlaps with linear weights, accumulated as floats
with numpy and rounded. Memory: the output image (and with ``blend``, its
float accumulator, 8 bytes per sample) plus one tile.
"""

from __future__ import annotations

import os

from ..exceptions import AssemblyError, ResultFormatError
from ..schema import SAFE_NAME
from .base import Assembler, names_by_source, one_name_per_source, output_path, source_output_name

DEFAULT_OUTPUT_NAME = "{stem}.png"


def output_format(name: str, fmt: str | None = None) -> str:
    """The Pillow format an output is saved in: ``fmt``, else by its name's extension.

    >>> output_format("m.tif"), output_format("m.JPG"), output_format("m.out", "png")
    ('TIFF', 'JPEG', 'PNG')
    """
    from PIL import Image

    if fmt:
        return fmt.upper()
    ext = os.path.splitext(name)[1].lower()
    known = Image.registered_extensions()
    if ext not in known or known[ext] not in Image.SAVE:
        raise AssemblyError(f"image-mosaic: no image format writes {name!r} (give format, or a name ending "
                            "in .png, .tif, .jpg, .webp ...)")
    return known[ext]


def ramp(start: int, end: int, core_start: int, core_end: int):
    """Blending weights along one axis of a tile spanning ``[start, end)`` whose own cell is
    ``[core_start, core_end)``: rising linearly across the overlap band shared with the
    previous neighbour, falling across the band shared with the next, 1 elsewhere; the
    weights of two neighbours add up to 1 across their shared band.

    >>> ramp(0, 6, 0, 4).tolist()
    [1.0, 1.0, 0.875, 0.625, 0.375, 0.125]
    """
    import numpy as np

    x = np.arange(start, end, dtype=np.float64) + 0.5
    w = np.ones(end - start)
    if core_start > start:  # the previous neighbour reaches core_start + (core_start - start)
        band = 2 * (core_start - start)
        w = np.minimum(w, (x - start) / band)
    if core_end < end:
        band = 2 * (end - core_end)
        w = np.minimum(w, (end - x) / band)
    return w


class ImageMosaic(Assembler):
    """The tiles of image-tiles back into whole images, one per source image:
    each tile placed by its CHUNK_INFO (box in an image of image_size and
    mode). Without overlap the result has the pixels exactly. With overlap,
    mode crop (the default) keeps each tile's own cell, the overlap split at
    its middle; blend feathers the overlaps with linear weights (float
    accumulation, then rounded; not for modes 1 and P). output_name may use
    {stem}, {name}, {ext} and {dir} of the source image ({stem}.png by default); the format
    follows its extension unless format is given. A chunk without an image
    result, a tile of the wrong size or mode, or a tile missing from the grid
    fails the job naming the chunk."""

    schema = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["crop", "blend"], "default": "crop",
                     "description": "In overlaps: keep each tile's own cell (crop) or feather them (blend)."},
            "output_name": {**SAFE_NAME, "default": DEFAULT_OUTPUT_NAME,
                            "description": "Name of each output image; {stem}, {name}, {ext} and {dir} (its folder) are the source image's."},
            "format": {"type": "string", "description": "Pillow format to save in (e.g. PNG, TIFF); by default "
                                                        "from the extension of output_name."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        images: dict[str, list] = {}
        for chunk in results:
            if "box" not in chunk.info or "image_size" not in chunk.info:
                raise ResultFormatError(f"chunk {chunk.index}: no tile box in its CHUNK_INFO "
                                        "(image-mosaic assembles the chunks of image-tiles)")
            images.setdefault(chunk.info.get("image", ""), []).append(chunk)
        template = params.get("output_name", DEFAULT_OUTPUT_NAME)
        one_name_per_source(template, len(images), "image-mosaic", "source images")
        names = names_by_source(images, lambda s: source_output_name(template, s, "mosaic"), "image-mosaic")
        for source_name, chunks in images.items():
            name = names[source_name]
            image = self._mosaic(source_name, chunks, params.get("mode", "crop"))
            fmt = output_format(name, params.get("format"))
            try:
                image.save(output_path(output_dir, name), fmt)
            except (OSError, ValueError, KeyError) as exc:
                raise AssemblyError(f"image-mosaic: cannot save {source_name} ({image.mode}) as {fmt}: {exc}") \
                    from None

    def _mosaic(self, source_name: str, chunks: list, how: str):
        from PIL import Image

        first = chunks[0].info
        width, height = first["image_size"]
        mode = first["mode"]
        rows, cols = first.get("grid_size") or (None, None)
        seen = {tuple(c.info["grid"]) for c in chunks if "grid" in c.info}
        if rows is not None and len(seen) != rows * cols:
            lost = sorted({(r, c) for r in range(rows) for c in range(cols)} - seen)
            raise ResultFormatError(f"image-mosaic: {source_name}: no chunk holds the tile at grid (row, col) "
                                    f"{lost[0]} ({len(lost)} of {rows * cols} tiles missing)")
        if how == "blend" and mode in ("1", "P"):
            raise AssemblyError(f"image-mosaic: {source_name}: mode {mode} cannot be blended (use mode: crop)")
        if how == "blend":
            return self._blend(chunks, width, height, mode)
        out = Image.new(mode, (width, height))
        covered = 0
        for chunk in chunks:
            tile = self._tile(chunk, mode)
            left, top, right, bottom = chunk.info["box"]
            core = chunk.info.get("core") or chunk.info["box"]
            cell = (core[0] - left, core[1] - top, core[2] - left, core[3] - top)
            if mode == "P" and covered == 0:
                out.putpalette(tile.getpalette())
            out.paste(tile.crop(cell), (core[0], core[1]))
            covered += (core[2] - core[0]) * (core[3] - core[1])
        if covered != width * height:
            raise ResultFormatError(f"image-mosaic: {source_name}: the tiles cover {covered} pixels of "
                                    f"{width * height}")
        return out

    def _blend(self, chunks: list, width: int, height: int, mode: str):
        import numpy as np
        from PIL import Image

        acc = weight = dtype = None
        for chunk in chunks:
            tile = self._tile(chunk, mode)
            pixels = np.asarray(tile)
            if acc is None:
                dtype = pixels.dtype
                acc = np.zeros((height, width) + pixels.shape[2:], dtype=np.float64)
                weight = np.zeros((height, width), dtype=np.float64)
            left, top, right, bottom = chunk.info["box"]
            core = chunk.info.get("core") or chunk.info["box"]
            w = np.outer(ramp(top, bottom, core[1], core[3]), ramp(left, right, core[0], core[2]))
            weight[top:bottom, left:right] += w
            if pixels.ndim == 3:
                w = w[:, :, None]
            acc[top:bottom, left:right] += pixels * w
        if not (weight > 0).all():
            raise ResultFormatError("image-mosaic: the tiles do not cover the whole image")
        if acc.ndim == 3:
            weight = weight[:, :, None]
        mean = acc / weight
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            mean = np.clip(np.rint(mean), info.min, info.max)
        return Image.frombytes(mode, (width, height), mean.astype(dtype).tobytes())

    @staticmethod
    def _tile(chunk, mode: str):
        """The chunk's one image result, checked against its box and mode."""
        from PIL import Image, UnidentifiedImageError

        left, top, right, bottom = chunk.info["box"]
        tile = None
        for f in sorted(chunk.files, key=lambda f: f.name):
            with f.open() as stream:
                try:
                    tile = Image.open(stream)
                    tile.load()
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                    continue
            break
        if tile is None:
            names = ", ".join(f.name for f in chunk.files) or "no result files"
            raise ResultFormatError(f"chunk {chunk.index}: no image among its results ({names})")
        if tile.size != (right - left, bottom - top):
            raise ResultFormatError(f"chunk {chunk.index}: its tile is {tile.size[0]}x{tile.size[1]}, its box "
                                    f"{chunk.info['box']} is {right - left}x{bottom - top}")
        if tile.mode != mode:
            raise ResultFormatError(f"chunk {chunk.index}: its tile is of mode {tile.mode}, the image of {mode}")
        return tile
