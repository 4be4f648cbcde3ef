"""Images through Pillow, shared by the image partitioners and assemblers.

Pillow is imported inside the functions: ``import bytenite_nb`` stays light.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath

from .exceptions import BadRecordError


def open_image(stream, name: str):
    """Open an image with Pillow, reading its header only; a file Pillow cannot read
    is a :class:`~bytenite_nb.exceptions.BadRecordError` naming it.

    >>> import io
    >>> open_image(io.BytesIO(b"not an image"), "cat.png")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.BadRecordError: cat.png: not an image Pillow can read (cannot identify image file)
    """
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(stream)
    except Image.DecompressionBombError as exc:  # Pillow's guard against huge decodes: say how to lift it
        raise BadRecordError(f"too many pixels to decode safely ({exc}); raise PIL.Image.MAX_IMAGE_PIXELS "
                             "in the workers to allow it", file=name) from None
    except UnidentifiedImageError:
        raise BadRecordError("not an image Pillow can read (cannot identify image file)", file=name) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadRecordError(f"not an image Pillow can read ({exc})", file=name) from None


def image_extensions() -> set[str]:
    """The name endings of the formats Pillow reads (``.png``, ``.jpg``, ...).

    >>> {".png", ".jpg", ".tif"} <= image_extensions()
    True
    """
    from PIL import Image

    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def matches(name: str, pattern: str | None) -> bool:
    """Whether an image called ``name`` is kept: it matches the glob ``pattern`` (its
    whole name or its base name), or without a pattern, has an image extension.

    >>> matches("a/b.JPG", None), matches("a/b.txt", None), matches("a/b.txt", "*.txt")
    (True, False, True)
    """
    if pattern:
        return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(posixpath.basename(name), pattern)
    return os.path.splitext(name)[1].lower() in image_extensions()
