"""``text-size``: text in chunks of at most ``max_chars`` characters, cut where
the text prefers: a paragraph break, else a sentence end, else a space.

Planning reads each file once, a window at a time (memory bounded by the
chunk size), and returns byte ranges that start and end on whole UTF-8
characters. With ``overlap``, every chunk after a file's first starts that
many characters early (what a model reading chunks needs for context); the
``stitch`` assembler removes exactly those characters again.
"""

from __future__ import annotations

import re

from ..exceptions import PartitionError
from .base import ChunkRef, Partitioner, Source

#: where a chunk may end, best first: after a blank line, after a sentence, after a space
BOUNDARIES = (re.compile(r"\n[ \t]*\n"), re.compile(r"[.!?\u3002][\"')\]]*\s"), re.compile(r"\s"))


def cut_at(text: str, limit: int, final: bool) -> int:
    """How many characters of ``text`` the chunk takes: at most ``limit``, ending
    after the best boundary in its second half (the whole of a ``final`` text
    that fits).

    >>> cut_at("One. Two three. Four five six seven", 20, False)
    16
    >>> cut_at("para one\\n\\npara two is long", 14, False)
    10
    """
    if len(text) <= limit and final:
        return len(text)
    window = text[:limit]
    for boundary in BOUNDARIES:
        ends = [m.end() for m in boundary.finditer(window) if m.end() > limit // 2]
        if ends:
            return ends[-1]
    return limit  # no boundary: a hard cut, never inside a character


class TextSize(Partitioner):
    """Split text files into chunks of at most ``max_chars`` characters, ending
    after a paragraph break if there is one in the chunk's second half, else
    after a sentence, else after a space (else a hard cut). ``overlap``
    characters of each chunk's end start the next one too; ``stitch`` removes
    them. Each chunk's ``CHUNK_INFO`` gives its ``chars`` (first, end) and its
    ``overlap_bytes``. Files must be UTF-8."""

    schema = {
        "type": "object",
        "properties": {
            "max_chars": {"type": "integer", "minimum": 1, "default": 4000,
                          "description": "At most this many characters per chunk."},
            "overlap": {"type": "integer", "minimum": 0, "default": 0,
                        "description": "Characters of the previous chunk's end that start each chunk again."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        limit = params.get("max_chars", 4000)
        overlap = params.get("overlap", 0)
        if overlap >= limit:
            raise PartitionError(f"params.partitioner.overlap ({overlap}) must be less than max_chars ({limit})")
        for f in source.files:
            with source.open(f.url) as stream:
                yield from self._plan_file(f, stream, limit, overlap)

    def _plan_file(self, f, stream, limit: int, overlap: int):
        decoder_tail = b""
        text = ""  # decoded characters from ``start`` on, not yet in a chunk
        start, first_char, eof, carried, consumed = 0, 0, False, 0, 0
        while True:
            while not eof and len(text) < limit + 1:
                block = stream.read(max(65536, limit * 4))
                if not block:
                    eof = True
                    break
                consumed += len(block)
                data = decoder_tail + block
                keep = _complete_utf8(data)
                try:
                    text += data[:keep].decode("utf-8")
                except UnicodeDecodeError as exc:
                    at = consumed - len(data) + exc.start
                    raise PartitionError(f"{f.name}: not UTF-8 text near byte {at}") from exc
                decoder_tail = data[keep:]
            if eof and decoder_tail:
                raise PartitionError(f"{f.name}: ends in the middle of a UTF-8 character")
            if not text or len(text) <= carried:
                return
            take = cut_at(text, limit, eof)
            piece = text[:take]
            size = len(piece.encode("utf-8"))
            yield ChunkRef(url=f.url, start=start, end=start + size, size=size, label=f.name,
                           meta={"chars": [first_char, first_char + take],
                                 "overlap_bytes": len(text[:carried].encode("utf-8"))})
            if eof and take == len(text):
                return
            back = min(overlap, take - 1)
            carried = back
            start += size - len(piece[take - back:].encode("utf-8")) if back else size
            first_char += take - back
            text = text[take - back:]


def _complete_utf8(data: bytes) -> int:
    """How many leading bytes of ``data`` are whole UTF-8 characters."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): is its character complete?
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return len(data) if need <= back else len(data) - back
    return len(data)
