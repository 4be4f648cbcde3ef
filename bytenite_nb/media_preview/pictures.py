"""Small pictures for previews: images a browser shows, as ``data:`` URLs.

A preview travels inside a plan (a Dask result, the server's JSON), so its
pictures are encoded inline rather than written anywhere.
"""

from __future__ import annotations

import base64
import binascii
import io

from ..exceptions import NotAnImage

#: modes a browser shows as they are; other modes are converted first
SHOWN_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})


def displayable(image):
    """``image`` in a mode a PNG shows in a browser: 16-bit, 32-bit and float
    images are stretched from their own darkest to their lightest value into 8 bits
    (a 12-bit scan would otherwise look black), CMYK and the like become RGB.

    >>> from PIL import Image
    >>> im = Image.new("I;16", (2, 1)); im.putpixel((1, 0), 4000)
    >>> list(displayable(im).tobytes())
    [0, 255]
    """
    import numpy as np
    from PIL import Image

    if image.mode in SHOWN_MODES:
        return image
    if image.mode.startswith(("I", "F")):
        values = np.asarray(image, dtype=np.float64)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        return Image.fromarray(scaled.round().astype(np.uint8), "L")
    return image.convert("RGB")


def shrink(image, width: int, height: int):
    """``image`` made to fit in ``width`` x ``height`` keeping its shape (never enlarged).

    >>> from PIL import Image
    >>> shrink(Image.new("RGB", (400, 100)), 128, 128).size
    (128, 32)
    """
    from PIL import Image

    scale = min(1.0, width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def data_url(image, fmt: str = "PNG", **options) -> str:
    """``image`` encoded as a ``data:`` URL (PNG unless ``fmt`` says otherwise).

    >>> from PIL import Image
    >>> data_url(Image.new("L", (1, 1))).startswith("data:image/png;base64,iVBOR")
    True
    """
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_of_data_url(url: str):
    """The Pillow image a :func:`data_url` holds (for checking a preview).

    >>> from PIL import Image
    >>> image_of_data_url(data_url(Image.new("RGB", (3, 2)))).size
    (3, 2)
    >>> image_of_data_url("data:text/plain;base64,aGk=")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.NotAnImage: not a base64 data: URL of an image: 'data:text/plain;base64'
    >>> image_of_data_url("data:image/png;base64,aGk=")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.NotAnImage: data:image/png;base64: not an image Pillow can read (cannot identify image file ...)
    """
    from PIL import Image, UnidentifiedImageError

    head, _, payload = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise NotAnImage(f"not a base64 data: URL of an image: {head[:40]!r}")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise NotAnImage(f"{head[:40]}: not an image Pillow can read ({exc})") from None
    return image


def picture(image, caption: str, fmt: str = "PNG", **extra) -> dict:
    """One picture of a preview: ``src`` (a data: URL), ``caption``, ``width``,
    ``height`` and whatever ``extra`` says about it (its chunk, its cuts...).

    >>> from PIL import Image
    >>> sorted(picture(Image.new("L", (4, 3)), "a tile", chunk=0))
    ['caption', 'chunk', 'height', 'src', 'width']
    """
    options = {"quality": 85} if fmt == "JPEG" else {"compress_level": 6} if fmt == "PNG" else {}
    return {"src": data_url(image, fmt, **options), "caption": caption, "width": image.width,
            "height": image.height, **extra}
