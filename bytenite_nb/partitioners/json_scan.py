"""Byte offsets in JSON text: where the structure of a document is.

Streaming JSON parsers (ijson) give values and events, not where they are in
the bytes; cutting a document into byte ranges needs the offsets. The
:class:`StructureScanner` reads a document in blocks and finds, with numpy
over each block, the brackets, commas and colons that lie outside strings
(a quote counts unless an odd run of backslashes precedes it), and the
nesting level of each. What lies between them is checked by :mod:`json`
where the values are read (the worker checks every element it writes).

>>> scanner = StructureScanner()
>>> positions, codes, levels = scanner.feed(b'{"a": [1, "]", 2]}')
>>> positions.tolist(), [CHARS[c] for c in codes.tolist()], levels.tolist()
([0, 4, 6, 8, 13, 16, 17], ['{', ':', '[', ',', ',', ']', '}'], [1, 1, 2, 2, 2, 2, 1])
"""

from __future__ import annotations

import re

from ..exceptions import BadRecordError

OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT, COMMA, COLON, QUOTE, BACKSLASH = range(1, 9)
CHARS = {OPEN_ARRAY: "[", CLOSE_ARRAY: "]", OPEN_OBJECT: "{", CLOSE_OBJECT: "}", COMMA: ",", COLON: ":"}
WHITESPACE = b" \t\r\n"
_NOT_WHITESPACE = re.compile(rb"[^ \t\r\n]")


def _table():
    import numpy as np

    table = np.zeros(256, dtype=np.uint8)
    for code, char in {**CHARS, QUOTE: '"', BACKSLASH: "\\"}.items():
        table[ord(char)] = code
    return table


def _deltas():
    """By code: +1 for a bracket that opens a level, -1 for one that closes it, else 0."""
    import numpy as np

    deltas = np.zeros(BACKSLASH + 1, dtype=np.int64)
    deltas[[OPEN_ARRAY, OPEN_OBJECT]] = 1
    deltas[[CLOSE_ARRAY, CLOSE_OBJECT]] = -1
    return deltas


class StructureScanner:
    """The structural characters of a JSON text read block by block.

    :meth:`feed` returns, for one more block, the absolute byte offsets of the
    brackets, commas and colons outside strings, their codes and their level:
    an opening bracket has the level of the container it opens (the root's is
    1), a closing bracket the level of the container it closes, a comma or a
    colon the level of the container it belongs to. ``depth`` is the level the
    text starts at (1 to scan the inside of an array), ``offset`` its first
    byte's offset in the file, ``name`` the file, for messages.
    """

    def __init__(self, *, depth: int = 0, offset: int = 0, name: str = "document"):
        self.depth = depth
        self.offset = offset
        self.name = name
        self.in_string = False
        self.string_opened_at = -1
        self.backslashes = 0  # length of the run of backslashes that ended the last block
        self._table = _table()
        self._interesting = bytes(self._table.astype(bool).astype("uint8").tolist())  # for bytes.translate
        self._deltas = _deltas()

    def feed(self, block: bytes, max_level: int | None = None):
        """Scan ``block`` (the bytes after those already fed); return
        ``(positions, codes, levels)`` of its structural characters, only those
        of level <= ``max_level`` when given."""
        import numpy as np

        arr = np.frombuffer(block, dtype=np.uint8)
        # 1 where a byte matters, else 0: read as booleans, numpy finds them several times faster than in uint8
        found = np.flatnonzero(np.frombuffer(block.translate(self._interesting), dtype=np.bool_))
        codes = self._table[arr[found]]
        is_quote = codes == QUOTE
        slash_at = np.flatnonzero(codes == BACKSLASH)
        if self.backslashes or (len(slash_at) and block.find(b'\\"') >= 0):
            self._drop_escaped(arr, found, is_quote, found[slash_at])
        elif len(slash_at):  # no quote follows a backslash: only a run ending the block matters
            self._carry_backslashes(found[slash_at], len(arr))
        # A character is inside a string when an odd number of real quotes precede it
        # (counting the one still open): a running parity over the interesting bytes only.
        parity = np.bitwise_xor.accumulate(is_quote.view(np.uint8)) if len(is_quote) else is_quote.view(np.uint8)
        odd = bool(parity[-1]) if len(parity) else False
        if self.in_string != odd and is_quote.any():
            self.string_opened_at = self.offset + int(found[np.flatnonzero(is_quote)[-1]])
        structural = (codes < QUOTE) & (parity == self.in_string)
        positions, codes = found[structural], codes[structural]
        if odd:
            self.in_string = not self.in_string
        deltas = self._deltas[codes]
        after = np.cumsum(deltas) + self.depth
        levels = after + (deltas < 0)  # a closing bracket has the level of the container it closes
        if len(after) and int(after.min()) < 0:
            at = self.offset + int(positions[int(np.argmax(after < 0))])
            raise BadRecordError("invalid JSON: a closing bracket without an opening one", file=self.name, offset=at)
        if len(after):
            self.depth = int(after[-1])
        positions = positions + self.offset
        self.offset += len(arr)
        if max_level is not None:
            keep = levels <= max_level
            positions, codes, levels = positions[keep], codes[keep], levels[keep]
        return positions, codes, levels

    def _drop_escaped(self, arr, found, is_quote, slashes) -> None:
        """Unmark the quotes an odd run of backslashes escapes; carry a run that ends the block."""
        import numpy as np

        quote_idx = np.flatnonzero(is_quote)
        qpos = found[quote_idx]
        after_slash = np.zeros(len(qpos), dtype=bool)
        inner = qpos > 0
        after_slash[inner] = arr[qpos[inner] - 1] == 0x5C
        if self.backslashes and len(qpos) and qpos[0] == 0:
            after_slash[0] = True
        candidates = np.flatnonzero(after_slash)
        if len(candidates):
            cq = qpos[candidates]
            if len(slashes):
                starts = np.ones(len(slashes), dtype=bool)
                starts[1:] = np.diff(slashes) != 1
                run_start = slashes[np.maximum.accumulate(np.where(starts, np.arange(len(slashes)), 0))]
                j = np.clip(np.searchsorted(slashes, cq - 1), 0, len(slashes) - 1)
                first = np.where(cq > 0, run_start[j], 0)
                runs = np.where(cq > 0, cq - first, 0) + np.where(first == 0, self.backslashes, 0)
            else:
                runs = np.full(len(cq), self.backslashes)
            is_quote[quote_idx[candidates[runs % 2 == 1]]] = False
        self._carry_backslashes(slashes, len(arr))

    def _carry_backslashes(self, slashes, size):
        import numpy as np

        if not len(slashes) or int(slashes[-1]) != size - 1:
            self.backslashes = 0
            return
        run = 1
        gaps = np.flatnonzero(np.diff(slashes) != 1)
        first = int(slashes[gaps[-1] + 1]) if len(gaps) else int(slashes[0])
        run = size - first
        self.backslashes = run + (self.backslashes if first == 0 else 0)

    def finish(self) -> None:
        """Check the text ended with every string closed (after the last block)."""
        if self.in_string:
            raise BadRecordError("invalid JSON: a string is never closed", file=self.name,
                                 offset=self.string_opened_at)


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of a JSON Pointer (RFC 6901): ``""`` is the whole
    document, ``~1`` stands for ``/`` and ``~0`` for ``~``.

    >>> parse_pointer(""), parse_pointer("/data/0/a~1b~0c")
    ([], ['data', '0', 'a/b~c'])
    """
    from ..exceptions import FieldError

    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise FieldError("pointer", f"a JSON Pointer is empty or starts with '/', got {pointer!r}")
    tokens = []
    for raw in pointer[1:].split("/"):
        if "~" in raw.replace("~0", "").replace("~1", ""):
            raise FieldError("pointer", f"{pointer!r}: '~' must be followed by 0 or 1 in {raw!r}")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def element_splits(data: bytes, *, offset: int = 0, name: str = "chunk") -> list[int]:
    """The offsets (in ``data``) of the commas that separate the elements of the
    inside of an array or object (the text between its brackets).

    >>> element_splits(b' 1, [2, 3], "a,b" ,{"c": 4}')
    [2, 10, 18]
    """
    scanner = StructureScanner(depth=1, offset=0, name=name)
    positions, codes, levels = scanner.feed(data, max_level=1)
    scanner.finish()
    closing = (codes == CLOSE_ARRAY) | (codes == CLOSE_OBJECT)
    if closing.any() or scanner.depth != 1:
        at = int(positions[closing][0]) if closing.any() else len(data)
        raise BadRecordError("invalid JSON: brackets do not balance inside the elements", file=name, offset=offset + at)
    return positions[codes == COMMA].tolist()


def is_blank(data: bytes) -> bool:
    """Only JSON whitespace (or nothing).

    >>> is_blank(b" \\n\\t"), is_blank(b" 1")
    (True, False)
    """
    return _NOT_WHITESPACE.search(data) is None  # no copy of the data, unlike strip


__all__ = ["StructureScanner", "parse_pointer", "element_splits", "is_blank"]
