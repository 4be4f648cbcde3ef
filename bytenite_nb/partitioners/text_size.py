"""``text-size``: text in chunks of at most ``max_chars`` characters (or
``max_words`` words), cut where the text prefers: a paragraph break, else a
sentence end, else a space.

Planning reads each file once, a window at a time (memory bounded by the
chunk size), and returns byte ranges that start and end on whole UTF-8
characters. With ``overlap``, every chunk after a file's first starts that
many characters early (what a model reading chunks needs for context); the
``stitch`` assembler removes exactly those characters again. The cutting is
shared with ``sections`` (:mod:`bytenite_nb.partitioners.text_cuts`).
"""

from __future__ import annotations

from ..exceptions import FieldError
from .base import ChunkRef, Partitioner, Source
from .text_cuts import BOUNDARIES, cut_at, size_pieces

DEFAULT_MAX_CHARS = 4000


def size_limit(params: dict) -> tuple[int, str]:
    """The limit ``params`` ask for and its unit: ``max_chars`` or ``max_words``,
    never both (``max_chars`` 4000 when neither is given).

    >>> size_limit({"max_words": 300}), size_limit({})
    ((300, 'words'), (4000, 'chars'))
    """
    if "max_chars" in params and "max_words" in params:
        raise FieldError("params.partitioner.max_words", "give max_chars or max_words, not both")
    if "max_words" in params:
        return params["max_words"], "words"
    return params.get("max_chars", DEFAULT_MAX_CHARS), "chars"


class TextSize(Partitioner):
    """Split text files into chunks of at most ``max_chars`` characters, or of at
    most ``max_words`` words (runs of non-whitespace; give one of the two), ending
    after a paragraph break if there is one in the chunk's second half, else
    after a sentence, else after a space (else a hard cut; with ``max_words``,
    before the word that does not fit). ``overlap`` characters of each chunk's
    end start the next one too (with ``max_words`` the overlap holds fewer than
    ``max_words`` words, and counts in the next chunk's words); ``stitch``
    removes them. Each chunk's ``CHUNK_INFO`` gives its ``chars`` (first, end)
    and its ``overlap_bytes``. Files must be UTF-8: invalid bytes fail the job
    naming the file and byte offset."""

    schema = {
        "type": "object",
        "properties": {
            "max_chars": {"type": "integer", "minimum": 1,
                          "description": f"At most this many characters per chunk ({DEFAULT_MAX_CHARS} unless "
                                         "max_words is given)."},
            "max_words": {"type": "integer", "minimum": 1,
                          "description": "At most this many words per chunk, instead of max_chars."},
            "overlap": {"type": "integer", "minimum": 0, "default": 0,
                        "description": "Characters of the previous chunk's end that start each chunk again."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        limit, unit = size_limit(params)
        overlap = params.get("overlap", 0)
        if unit == "chars" and overlap >= limit:
            raise FieldError("params.partitioner.overlap", f"{overlap} must be less than max_chars ({limit})")
        for f in source.files:
            with source.open(f.url) as stream:
                for p in size_pieces(stream, f.name, limit, unit=unit, overlap=overlap):
                    yield ChunkRef(url=f.url, start=p.start, end=p.end, size=p.end - p.start, label=f.name,
                                   meta={"chars": [p.first, p.last], "overlap_bytes": p.overlap_bytes})


__all__ = ["BOUNDARIES", "TextSize", "cut_at", "size_limit"]
