"""Cutting text by size where the text prefers: shared by ``text-size`` and
``sections`` (which cuts a section larger than its ``max_size``).

A chunk ends after a paragraph break if there is one in its second half,
else after a sentence end, else after a space, else at the limit. The limit
counts characters, or words (runs of non-whitespace). Text is read from a
byte stream a window at a time, so memory is bounded by the limit, and the
cuts fall on whole UTF-8 characters.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Iterator

from ..exceptions import BadRecordError

#: where a chunk may end, best first: after a blank line, after a sentence, after a space
BOUNDARIES = (re.compile(r"\n[ \t]*\n"), re.compile(r"[.!?\u3002][\"')\]]*\s"), re.compile(r"\s"))
WORD = re.compile(r"\S+")
UNITS = ("chars", "words")
READ_BLOCK = 65536


def word_starts(text: str, count: int) -> list[int]:
    """Where the first ``count`` words of ``text`` start.

    >>> word_starts("  one two\\nthree", 5)
    [2, 6, 10]
    """
    return [m.start() for m in itertools.islice(WORD.finditer(text), count)]


def cut_at(text: str, limit: int, final: bool, unit: str = "chars", floor: int = 0) -> int:
    """How many characters of ``text`` the chunk takes: at most ``limit``
    characters (or ``limit`` words with ``unit="words"``), ending after the best
    boundary in its second half and after ``floor`` characters (the whole of a
    ``final`` text that fits).

    >>> cut_at("One. Two three. Four five six seven", 20, False)
    16
    >>> cut_at("para one\\n\\npara two is long", 14, False)
    10
    >>> cut_at("one two three. four five six", 4, False, unit="words")
    15
    """
    if unit == "words":
        starts = word_starts(text, limit + 1)
        if len(starts) <= limit:
            if final:
                return len(text)
            end = len(text)
        else:
            end = starts[limit]  # the words that fit and the whitespace after them
    else:
        if len(text) <= limit and final:
            return len(text)
        end = min(limit, len(text))
    window = text[:end]
    least = max(end // 2, floor)
    for boundary in BOUNDARIES:
        ends = [m.end() for m in boundary.finditer(window) if m.end() > least]
        if ends:
            return ends[-1]
    return end  # no boundary: a hard cut, never inside a character (in words mode, at a word's start)


@dataclass(frozen=True)
class Piece:
    """One cut: bytes ``start``..``end`` of the stream, characters ``first``..``last``
    (counted from where the reading began), the first ``overlap_bytes`` of them
    repeated from the previous piece."""

    start: int
    end: int
    first: int
    last: int
    overlap_bytes: int


def size_pieces(stream, name: str, limit: int, *, unit: str = "chars", overlap: int = 0,
                start: int = 0, end: int | None = None) -> Iterator[Piece]:
    """Cut the text read from ``stream`` (positioned at byte ``start``; up to byte
    ``end``, or its end) into pieces of at most ``limit`` characters or words,
    each after the first starting ``overlap`` characters early (in words mode,
    fewer when the overlap would hold ``limit`` words, so every piece has a word of
    its own). Invalid UTF-8 raises :class:`BadRecordError` naming ``name`` and the
    byte offset.

    >>> import io
    >>> [(p.start, p.end) for p in size_pieces(io.BytesIO("aé b. c".encode()), "t.txt", 4)]
    [(0, 4), (4, 8)]
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    tail = b""
    text = ""  # decoded characters from ``start`` on, not yet in a piece
    first, eof, carried, consumed = 0, False, 0, start
    while True:
        while not eof and not _enough(text, limit, unit):
            want = max(READ_BLOCK, limit * 4)
            if end is not None:
                want = min(want, end - consumed)
            block = stream.read(want) if want > 0 else b""
            if not block:
                eof = True
                break
            consumed += len(block)
            data = tail + block
            keep = complete_utf8(data)
            try:
                text += data[:keep].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadRecordError("not UTF-8 text", file=name, offset=consumed - len(data) + exc.start) from exc
            tail = data[keep:]
        if eof and tail:
            raise BadRecordError("ends in the middle of a UTF-8 character", file=name, offset=consumed - len(tail))
        if not text or len(text) <= carried:
            return
        take = cut_at(text, limit, eof, unit, floor=carried)
        piece = text[:take]
        size = len(piece.encode("utf-8"))
        yield Piece(start, start + size, first, first + take, len(text[:carried].encode("utf-8")))
        if eof and take == len(text):
            return
        back = min(overlap, take - 1)
        if unit == "words" and back:
            words = list(WORD.finditer(piece[take - back:]))
            if len(words) >= limit:  # keep at most limit - 1 words of overlap
                drop = len(words) - limit + 1
                back -= words[drop].start() if drop < len(words) else words[-1].end()
        carried = back
        start += size - len(piece[take - back:].encode("utf-8")) if back else size
        first += take - back
        text = text[take - back:]


def _enough(text: str, limit: int, unit: str) -> bool:
    """Does ``text`` hold more than a piece, so that the cut can be chosen?"""
    if unit == "words":
        return len(word_starts(text, limit + 1)) > limit
    return len(text) > limit


def complete_utf8(data: bytes) -> int:
    """How many leading bytes of ``data`` are whole UTF-8 characters.

    >>> complete_utf8("aé".encode()[:2])
    1
    """
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): is its character complete?
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return len(data) if need <= back else len(data) - back
    return len(data)


__all__ = ["BOUNDARIES", "Piece", "complete_utf8", "cut_at", "size_pieces", "word_starts"]
