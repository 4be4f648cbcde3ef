"""``sections``: documents in chunks of whole sections - at Markdown headings,
at lines a regex matches, or at page breaks.

Planning reads each file once, a block at a time (of a line longer than a
block only the start is looked at), so memory does not grow with the file.
For Markdown, :func:`markdown_lines` finds with one regex per block the only
lines that can start or end a heading or a fence, and gives the heading
machine those and, before each, the lines since the last blank line (which
decide whether a setext underline has a paragraph above it); every other
line is only counted, in bulk. Chunks are byte ranges of the source, so
``sections`` -> ``identity`` -> ``concat`` gives the input back byte for byte.
A section longer than ``max_size`` characters is cut further by
:func:`~bytenite_nb.partitioners.text_cuts.size_pieces`, the cutting
``text-size`` uses (paragraph, else sentence, else space).

Markdown is read as CommonMark's common subset: ATX headings (``#`` to
``######`` then a space or the line end, up to three spaces of indent) and
setext headings (a paragraph underlined with ``===`` for level 1 or ``---``
for level 2); nothing inside a fenced code block (opened by three or more
backticks or tildes, closed by a fence of the same character at least as
long, or open to the end) is a heading. Lines may end in LF or CRLF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from ..exceptions import BadRecordError, FieldError
from .base import ChunkRef, Partitioner, Source
from .text_cuts import complete_utf8, size_pieces

LINE_HEAD = 4096  # characters of a line looked at for a heading
READ_BLOCK = 2**20
MARKDOWN_BLOCK = 4 * 2**20  # markdown_lines reads this much at a time (a longer line is streamed)
LOOK_BACK = 32  # lines looked back for a blank one before a line that matters
DENSE = 4  # a block where more than one line in this many may matter is read line by line
TITLE_CHARS = 200
PAGE_BREAK = "\f"

ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)$")
INTERRUPTS = re.compile(r" {0,3}(?:>|[-+*][ \t]+\S|1[.)][ \t]+\S|([*_-])(?:[ \t]*\1){2,}[ \t]*$)")
#: a line that may open, close or underline something: ``#``, a fence or a setext run after up to three spaces
CANDIDATE = re.compile(rb" {0,3}[#`~=-]")
CANDIDATE_AFTER_NEWLINE = re.compile(rb"\n {0,3}[#`~=-]")  # a literal first: the regex engine skips to each newline
NOT_PARAGRAPH = re.compile(r" {0,3}(?:>|[-+*][ \t]|[-+*]$|\d{1,9}[.)](?:[ \t]|$)|([*_-])(?:[ \t]*\1){2,}[ \t]*$)|    |\t")


@dataclass(slots=True)
class Line:
    """One line of a file: where it starts (byte and character), its length in
    bytes and characters, and the text of its first :data:`LINE_HEAD` characters
    without the line end."""

    offset: int
    char: int
    size: int
    chars: int
    head: str


@dataclass
class Section:
    """One section: its first byte and character, the first ones after it, its
    heading and the titles of the enclosing ones."""

    start: int
    first: int
    end: int = 0
    last: int = 0
    title: str = ""
    level: int = 0
    path: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def read_lines(stream, name: str, block: int = READ_BLOCK) -> Iterator[Line]:
    """The lines of a UTF-8 byte stream, read a block at a time (a line longer
    than a block is read in pieces; its ``head`` is its first :data:`LINE_HEAD`
    characters); invalid UTF-8 raises :class:`BadRecordError` naming ``name``
    and the byte offset.

    >>> import io
    >>> [(l.offset, l.size, l.chars, l.head) for l in read_lines(io.BytesIO("a\\r\\nbé".encode()), "d.md")]
    [(0, 3, 3, 'a'), (3, 3, 2, 'bé')]
    """
    offset, char, rest = 0, 0, b""  # ``offset``, ``char``: where ``rest`` starts
    pending: Line | None = None  # a line read in part
    while True:
        data = stream.read(block)
        buf = rest + data
        if not buf:
            break
        if not data:
            cut = len(buf)
        else:
            cut = buf.rfind(b"\n") + 1 or complete_utf8(buf)  # whole lines, else whole characters
        try:
            text = buf[:cut].decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = "ends in the middle of a UTF-8 character" if exc.end == cut and not data else "not UTF-8 text"
            raise BadRecordError(reason, file=name, offset=offset + exc.start) from exc
        ascii_only = buf[:cut].isascii()  # then a line's bytes are its characters
        rest = buf[cut:]
        lines = text.split("\n")
        for n, line in enumerate(lines):
            last = n == len(lines) - 1
            if last and not line:
                break
            chars = len(line) + (0 if last else 1)
            size = chars if ascii_only else len(line.encode("utf-8")) + (0 if last else 1)
            if pending is None:
                pending = Line(offset, char, 0, 0, line[:LINE_HEAD])
            elif len(pending.head) < LINE_HEAD:
                pending.head = (pending.head + line)[:LINE_HEAD]
            pending.size += size
            pending.chars += chars
            offset += size
            char += chars
            if not last or not data:
                pending.head = pending.head.rstrip("\r")
                yield pending
                pending = None
    if pending is not None:
        pending.head = pending.head.rstrip("\r")
        yield pending


def markdown_lines(stream, name: str, block: int = MARKDOWN_BLOCK) -> Iterator[Line]:
    """The lines of a UTF-8 byte stream that decide where Markdown headings
    are, as :func:`read_lines` gives them, fewer: every line that starts
    (after up to three spaces) with ``#``, a backtick, a tilde, ``=`` or ``-``;
    of the other lines between two of those only the last blank one and the
    ones after it (before it, a run of other lines can neither open a fence
    nor a heading: a blank line forgets any paragraph); and always the last
    line. Fed these, :func:`markdown_sections` finds the same sections as fed
    every line. Invalid UTF-8 raises :class:`BadRecordError` as in :func:`read_lines`.

    >>> import io
    >>> doc = "intro\\n\\nwords\\nmore\\n\\npara\\n---\\nend\\n"
    >>> [(l.offset, l.head) for l in markdown_lines(io.BytesIO(doc.encode()), "d.md")]
    [(18, ''), (19, 'para'), (24, '---'), (28, 'end')]
    """
    offset, char, rest = 0, 0, b""  # where ``rest`` (the start of a line) is
    while True:
        data = stream.read(block)
        buf = rest + data
        if not buf:
            return
        cut = len(buf) if not data else buf.rfind(b"\n") + 1
        if not cut:  # no line end yet
            if len(buf) < block:
                rest = buf
                continue
            line, rest = _long_line(stream, buf, offset, char, name, block)
            offset, char = line.offset + line.size, line.char + line.chars
            yield line
            continue
        chunk, rest = buf[:cut], buf[cut:]
        lines = _ChosenLines(chunk, offset, char, name, final=not data)
        yield from lines
        offset, char = offset + cut, lines.chars


class _ChosenLines:
    """The lines :func:`markdown_lines` gives of ``chunk`` (whole lines from byte
    ``offset``, character ``char``; the file's last bytes when ``final``), its
    last line always: a run of other lines cut in two by the end of a block is
    reduced in two parts, which comes to the same. The lines are found in the
    bytes; the bytes between are decoded once, a piece at a time, to check
    them and count their characters; ``chars`` is the character after them
    once iterated."""

    def __init__(self, chunk: bytes, offset: int, char: int, name: str, final: bool):
        self.chunk, self.offset, self.name, self.final = chunk, offset, name, final
        self.ascii_only = chunk.isascii()
        self.at, self.chars = 0, char  # bytes up to ``at`` are checked, ``chars`` their characters

    def __iter__(self) -> Iterator[Line]:
        chunk = self.chunk
        starts = [m.start() + 1 for m in CANDIDATE_AFTER_NEWLINE.finditer(chunk)]
        if CANDIDATE.match(chunk):
            starts.insert(0, 0)
        if len(starts) * DENSE > chunk.count(b"\n"):  # most lines matter: every line, in bulk
            yield from self._lines(0, len(chunk))
            return
        gap = 0  # where the run of other lines since the last chosen line starts
        for start in starts:
            yield from self._since_blank(gap, start)
            end = chunk.find(b"\n", start) + 1 or len(chunk)
            yield from self._lines(start, end)
            gap = end
        yield from self._since_blank(gap, len(chunk))
        self._char_at(len(chunk))

    def _decode(self, start: int, end: int) -> str:
        try:
            return self.chunk[start:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            if start > self.at:
                self._decode(self.at, start)  # an invalid byte before this one is the one to name
            cut_short = self.final and end == len(self.chunk) and exc.end == end - start
            reason = "ends in the middle of a UTF-8 character" if cut_short else "not UTF-8 text"
            raise BadRecordError(reason, file=self.name, offset=self.offset + start + exc.start) from exc

    def _char_at(self, i: int) -> int:
        """The character at byte ``i`` (never before the last one asked for)."""
        if self.ascii_only:
            self.chars += i - self.at
        else:
            self.chars += len(self._decode(self.at, i))
        self.at = i
        return self.chars

    def _lines(self, start: int, end: int) -> Iterator[Line]:
        """The lines of ``chunk[start:end]`` (whole lines, newlines included), decoded at once."""
        if start == end:
            return
        offset, char = self.offset + start, self._char_at(start)
        text = self._decode(start, end)
        self.at, self.chars = end, char + len(text)
        parts = text.split("\n")  # not splitlines, which cuts at \r, \f... too
        last = len(parts) - 1
        for n, part in enumerate(parts):
            if n == last and not part:
                break
            newline = n < last
            chars = len(part) + newline
            size = chars if self.ascii_only else len(part.encode("utf-8")) + newline
            yield Line(offset, char, size, chars, part[:LINE_HEAD].rstrip("\r"))
            offset, char = offset + size, char + chars

    def _since_blank(self, gap: int, stop: int) -> Iterator[Line]:
        """The last blank line in ``chunk[gap:stop]`` (whole lines) and those after it, else (none
        among the last :data:`LOOK_BACK`) all of them."""
        chunk, pos = self.chunk, stop
        for _ in range(LOOK_BACK):
            if pos <= gap:
                break
            start = max(gap, chunk.rfind(b"\n", gap, pos - 1) + 1)
            line = chunk[start:pos]
            if not line.strip() or (not line.isascii() and not _head(self._decode(start, pos)).strip()):
                return self._lines(start, stop)
            pos = start
        return self._lines(gap, stop)  # no blank line near: all of them (giving more lines is never wrong)


def _head(line: str) -> str:
    """The head of ``line`` (its newline included), as :func:`read_lines` gives it."""
    head = line[:LINE_HEAD]
    return (head[:-1] if head.endswith("\n") else head).rstrip("\r")


def _long_line(stream, buf: bytes, offset: int, char: int, name: str, block: int) -> tuple[Line, bytes]:
    """A line longer than a block, which starts ``buf``: read on to its end (only
    its first :data:`LINE_HEAD` characters kept); the bytes after it."""
    line = Line(offset, char, 0, 0, "")
    tail = b""
    while True:
        nl = buf.find(b"\n")
        piece = tail + (buf if nl < 0 else buf[:nl + 1])
        keep = len(piece) if nl >= 0 else complete_utf8(piece)
        try:
            text = piece[:keep].decode("utf-8")
        except UnicodeDecodeError as exc:
            at_end = exc.end == len(piece) and nl < 0 and not stream.read(1)
            reason = "ends in the middle of a UTF-8 character" if at_end else "not UTF-8 text"
            raise BadRecordError(reason, file=name, offset=line.offset + line.size + exc.start) from exc
        tail = piece[keep:]
        if len(line.head) < LINE_HEAD:
            line.head = (line.head + text)[:LINE_HEAD]
        line.size += keep
        line.chars += len(text)
        if nl >= 0:
            line.head = line.head.rstrip("\n").rstrip("\r")
            return line, buf[nl + 1:]
        buf = stream.read(block)
        if not buf:
            try:
                tail.decode("utf-8")
            except UnicodeDecodeError as exc:
                reason = "ends in the middle of a UTF-8 character" if exc.end == len(tail) else "not UTF-8 text"
                raise BadRecordError(reason, file=name, offset=line.offset + line.size + exc.start) from exc
            line.head = line.head.rstrip("\r")
            return line, b""


def atx_heading(text: str) -> tuple[int, str] | None:
    """The level and title of an ATX heading line, or None.

    >>> atx_heading("## Install ##"), atx_heading("#hashtag")
    ((2, 'Install'), None)
    """
    m = ATX.match(text)
    if not m:
        return None
    title = (m.group(2) or "").strip()
    if re.fullmatch(r"#+", title):
        title = ""
    return len(m.group(1)), title


def _starts(lines: Iterator[Line], starts) -> Iterator[Section]:
    """Sections from ``starts``, a generator of the sections that begin (fed
    every line), each closed where the next one begins or at the end; an empty
    first section (the text before the first heading) is left out."""
    current = Section(0, 0)
    end, last = 0, 0
    for line in lines:
        for section in starts.send(line) or ():
            if section.start > current.start:
                current.end, current.last = section.start, section.first
                yield current
            current = section
        end, last = line.offset + line.size, line.char + line.chars
    if end > current.start:
        current.end, current.last = end, last
        yield current


def _feed(machine):
    """``machine`` started, ready to be sent lines."""
    next(machine)
    return machine


def markdown_sections(lines: Iterator[Line], level: int) -> Iterator[Section]:
    """Sections of Markdown ``lines`` at headings of level ``level`` or less
    (deeper ones stay inside), the text before the first heading its own
    section (level 0, empty title) when not empty.

    >>> import io
    >>> doc = "intro\\n# A\\n```\\n# not a heading\\n```\\nB\\n-\\n### deep\\n"
    >>> [(s.start, s.title, s.level, s.path) for s in markdown_sections(read_lines(io.BytesIO(doc.encode()), "d"), 2)]
    [(0, '', 0, []), (6, 'A', 1, []), (34, 'B', 2, ['A'])]
    """
    return _starts(lines, _feed(_markdown_starts(level)))


def _markdown_starts(level: int):
    """Fed the lines one by one, answers with the sections that begin there."""
    enclosing: list[tuple[int, str]] = []
    fence: tuple[str, int] | None = None  # the open fence's character and length
    paragraph: Line | None = None  # the first line of a paragraph that may turn out a setext heading
    title = ""
    begun: list[Section] = []

    def begin(at: Line, lvl: int, text: str):
        while enclosing and enclosing[-1][0] >= lvl:
            enclosing.pop()
        path = [t for _, t in enclosing]
        enclosing.append((lvl, text[:TITLE_CHARS]))
        begun.append(Section(at.offset, at.char, title=text[:TITLE_CHARS], level=lvl, path=path))

    while True:
        line = yield begun
        begun = []
        text = line.head
        first = text[:4].lstrip(" ")[:1]  # what the line starts with, past up to three spaces
        if fence is not None:
            if first != fence[0]:
                continue
            m = FENCE.match(text)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] and not m.group(2).strip():
                fence = None
            continue
        m = FENCE.match(text) if first in ("`", "~") else None
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence, paragraph = (m.group(1)[0], len(m.group(1))), None
            continue
        heading = atx_heading(text) if first == "#" else None
        if heading is not None:
            paragraph = None
            if heading[0] <= level:
                begin(line, *heading)
        elif paragraph is not None and first in ("=", "-") and (underline := SETEXT.match(text)):
            lvl = 1 if underline.group(1)[0] == "=" else 2
            if lvl <= level:
                begin(paragraph, lvl, title)
            paragraph = None
        elif not text.strip():
            paragraph = None
        elif paragraph is not None and not (first in "->*+_1" and INTERRUPTS.match(text)):
            title = (title + " " + text.strip())[:TITLE_CHARS]  # the paragraph goes on
        elif paragraph is not None:
            paragraph = None  # a block quote, a list item or a thematic break ends it
        elif not NOT_PARAGRAPH.match(text):
            paragraph, title = line, text.strip()[:TITLE_CHARS]


def separated_sections(lines: Iterator[Line], pattern: re.Pattern) -> Iterator[Section]:
    """Sections of ``lines`` starting at each line ``pattern`` matches (searched
    in the line without its end); the lines before the first its own section.

    >>> import io
    >>> doc = b"a\\n---\\nb\\n---\\n"
    >>> [(s.start, s.end, s.extra) for s in separated_sections(read_lines(io.BytesIO(doc), "d"), re.compile("^---$"))]
    [(0, 2, {}), (2, 8, {'separator': 1}), (8, 12, {'separator': 2})]
    """
    def starts():
        count, begun = 0, []
        while True:
            line = yield begun
            begun = []
            if pattern.search(line.head):
                count += 1
                begun.append(Section(line.offset, line.char, title=line.head.strip()[:TITLE_CHARS],
                                     extra={"separator": count}))

    return _starts(lines, _feed(starts()))


def page_sections(stream, name: str) -> Iterator[Section]:
    """Pages of a UTF-8 text: each ends just after a form feed (``\\f``), the
    last at the end of the file. Their title is ``page N``.

    >>> import io
    >>> [(s.start, s.end, s.title) for s in page_sections(io.BytesIO(b"one\\ftwo\\f"), "d")]
    [(0, 4, 'page 1'), (4, 8, 'page 2')]
    """
    offset, char, tail = 0, 0, b""
    page = Section(0, 0, title="page 1", extra={"page": 1})
    while block := stream.read(READ_BLOCK):
        data = tail + block
        keep = complete_utf8(data)
        try:
            text = data[:keep].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRecordError("not UTF-8 text", file=name, offset=offset - len(tail) + exc.start) from exc
        at = offset - len(tail)  # the byte offset of text[0]
        tail = data[keep:]
        offset += len(block)
        for part in text.split(PAGE_BREAK)[:-1]:
            at += len(part.encode("utf-8")) + 1
            char += len(part) + 1
            page.end, page.last = at, char
            yield page
            n = page.extra["page"] + 1
            page = Section(at, char, title=f"page {n}", extra={"page": n})
        char += len(text) - text.rfind(PAGE_BREAK) - 1
    if tail:
        raise BadRecordError("ends in the middle of a UTF-8 character", file=name, offset=offset - len(tail))
    if offset > page.start:
        page.end, page.last = offset, char
        yield page


def check_params(params: dict) -> tuple[str, object]:
    """Which way ``params`` split: ``("level", n)``, ``("separator", regex)`` or
    ``("pages", None)``; headings up to level 2 when none is given.

    >>> check_params({"separator": "^---$"})[0], check_params({})
    ('separator', ('level', 2))
    """
    given = [k for k in ("level", "separator", "pages") if k in params and params[k] not in (None, False)]
    if len(given) > 1:
        raise FieldError(f"params.partitioner.{given[1]}",
                         f"give one of level, separator or pages, not {' and '.join(given)}")
    if "separator" in given:
        try:
            return "separator", re.compile(params["separator"], re.MULTILINE)
        except re.error as exc:
            raise FieldError("params.partitioner.separator", f"not a regular expression: {exc}") from exc
    if "pages" in given:
        return "pages", None
    return "level", params.get("level") or 2


class Sections(Partitioner):
    """Split documents into sections, one chunk each: at Markdown headings of
    ``level`` or less (default 2: ``#`` and ``##``, or ``===``/``---``
    underlined; deeper headings stay inside their section; never inside fenced
    code), at every line the ``separator`` regex matches (the matching line
    starts the next section), or with ``pages: true`` just after every form
    feed. The text before the first heading or separator is a section of its
    own. A section longer than ``max_size`` characters is cut further like
    ``text-size`` does (paragraph, else sentence, else space). Chunks are byte
    ranges, so ``concat`` puts the documents back byte for byte. ``CHUNK_INFO``
    gives ``title``, ``level`` (0 for the text before the first heading),
    ``path`` (the titles of the enclosing headings), ``offset`` (the section's
    first byte), ``section`` (its number in the file), ``part`` and ``parts``
    (1 of 1 unless cut by size), and ``page`` or ``separator`` (numbers from 1)
    in those modes. Files must be UTF-8: invalid bytes fail the job, naming
    the file and byte offset."""

    schema = {
        "type": "object",
        "properties": {
            "level": {"type": "integer", "minimum": 1, "maximum": 6,
                      "description": "Split at Markdown headings of this level or less (1 to 6; 2 unless a "
                                     "separator or pages is given)."},
            "separator": {"type": "string", "minLength": 1,
                          "description": "Instead of headings: a regex; every line it matches starts a section."},
            "pages": {"type": "boolean", "default": False,
                      "description": "Instead of headings: split just after every page break (form feed)."},
            "max_size": {"type": "integer", "minimum": 1,
                         "description": "Cut a section longer than this many characters further, by size."},
        },
        "additionalProperties": False,
    }

    def plan(self, source: Source, params: dict):
        mode, arg = check_params(params)
        max_size = params.get("max_size")
        for f in source.files:
            with source.open(f.url) as stream:
                if mode == "pages":
                    found = page_sections(stream, f.name)
                elif mode == "separator":
                    found = separated_sections(read_lines(stream, f.name), arg)
                else:
                    found = markdown_sections(markdown_lines(stream, f.name), arg)
                yield from self._chunks(source, f, found, max_size)

    def _chunks(self, source: Source, f, found: Iterator[Section], max_size: int | None):
        reader = None  # a second handle, for the sections cut by size
        try:
            for number, section in enumerate(found):
                meta = {"title": section.title, "level": section.level, "path": section.path,
                        "offset": section.start, "section": number, **section.extra}
                if max_size is None or section.last - section.first <= max_size:
                    yield ChunkRef(url=f.url, start=section.start, end=section.end,
                                   size=section.end - section.start, label=f.name,
                                   meta={**meta, "part": 1, "parts": 1})
                    continue
                if reader is None:
                    reader = source.open(f.url)
                reader.seek(section.start)
                pieces = list(size_pieces(reader, f.name, max_size, start=section.start, end=section.end))
                for k, p in enumerate(pieces, 1):
                    yield ChunkRef(url=f.url, start=p.start, end=p.end, size=p.end - p.start, label=f.name,
                                   meta={**meta, "part": k, "parts": len(pieces)})
        finally:
            if reader is not None:
                reader.close()
