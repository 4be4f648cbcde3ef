"""Timed text: SubRip (SRT), WebVTT and JSON segments, read and written.

Each becomes a list of :class:`Cue` (times in seconds) and back, so
``audio-index`` can shift every chunk's cues by the chunk's start and write
them as one timeline in any of the three. JSON segments are a list of
objects with ``start`` and ``end`` (seconds) - or an object holding one under
``segments``, as Whisper writes it; other fields are kept, and the
``start``/``end`` of nested ``words`` are shifted too.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from .exceptions import ResultFormatError

FORMATS = ("srt", "vtt", "json")
_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})$")
_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)(.*)$")


@dataclass
class Cue:
    """One timed piece of text: ``start``/``end`` in seconds; ``settings`` are WebVTT cue
    settings; ``extra`` the other fields of a JSON segment."""

    start: float
    end: float
    text: str = ""
    settings: str = ""
    extra: dict = field(default_factory=dict)

    def shifted(self, by: float) -> "Cue":
        extra = dict(self.extra)
        if isinstance(extra.get("words"), list):
            extra["words"] = [shift_fields(w, by) for w in extra["words"]]
        return Cue(self.start + by, self.end + by, self.text, self.settings, extra)


def is_seconds(value) -> bool:
    """Whether a JSON value is a time in seconds: a finite number, never ``true``/``false``
    (a bool is an int to Python).

    >>> is_seconds(1.5), is_seconds(0), is_seconds(True), is_seconds(float("nan")), is_seconds("1")
    (True, True, False, False, False)
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def shift_fields(item, by: float):
    """A JSON object with its numeric ``start`` and ``end`` moved by ``by`` seconds.

    >>> shift_fields({"word": "hi", "start": 0.5, "end": True}, 2.0)
    {'word': 'hi', 'start': 2.5, 'end': True}
    """
    if not isinstance(item, dict):
        return item
    out = dict(item)
    for key in ("start", "end"):
        if is_seconds(out.get(key)):
            out[key] = out[key] + by
    return out


def parse_time(text: str) -> float | None:
    """Seconds of an SRT or WebVTT timestamp; None when it is not one.

    >>> parse_time("01:02:03,450"), parse_time("02:03.5"), parse_time("soon")
    (3723.45, 123.5, None)
    """
    m = _TIME.match(text)
    if not m:
        return None
    hours, minutes, seconds, frac = m.groups()
    ms = int(frac.ljust(3, "0"))
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) + ms / 1000


def format_time(seconds: float, comma: bool) -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (WebVTT), to the nearest millisecond.

    >>> format_time(3723.4504, True), format_time(0.0005, False)
    ('01:02:03,450', '00:00:00.001')
    """
    ms = max(0, math.floor(seconds * 1000 + 0.5))  # half up, as people read times
    h, rest = divmod(ms, 3600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{',' if comma else '.'}{ms:03d}"


def parse_blocks(text: str, name: str, fmt: str) -> list[Cue]:
    """Cues of an SRT or WebVTT text: blocks separated by blank lines, each with a timing
    line ``start --> end``; WebVTT's header, NOTE, STYLE and REGION blocks skipped.

    >>> text = "WEBVTT\\n\\nNOTE hi\\n\\n00:01.000 --> 00:02.000\\nA\\n"
    >>> [(c.start, c.text) for c in parse_blocks(text, "a.vtt", "vtt")]
    [(1.0, 'A')]
    """
    cues = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines + [""], start=1):
        if line.strip():
            block.append((number, line))
            continue
        if block:
            cue = cue_of_block(block, name, fmt, first=not cues)
            if cue is not None:
                cues.append(cue)
            block = []
    return cues


def cue_of_block(block, name: str, fmt: str, first: bool):
    """The cue of one block of ``(line number, line)`` pairs, or None for a WebVTT header,
    NOTE, STYLE or REGION block (``first``: the file's first block, where the header is).

    >>> cue_of_block([(3, "intro"), (4, "00:01.000 --> 00:02.500 align:start"), (5, "Hi")], "a.vtt", "vtt", False)
    Cue(start=1.0, end=2.5, text='Hi', settings='align:start', extra={})
    >>> cue_of_block([(1, "WEBVTT")], "a.vtt", "vtt", True) is None
    True
    >>> cue_of_block([(7, "2"), (8, "Hi")], "a.srt", "srt", False)
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.ResultFormatError: a.srt: line 7: no 'start --> end' timing line in this cue
    """
    head = block[0][1].strip()
    if fmt == "vtt" and (head.startswith("WEBVTT") and first or head.split(" ")[0] in ("NOTE", "STYLE", "REGION")):
        return None
    for i, (number, line) in enumerate(block[:2]):
        m = _TIMING.match(line)
        if m:
            start, end = parse_time(m.group(1)), parse_time(m.group(2))
            if start is None or end is None:
                raise ResultFormatError(f"{name}: line {number}: bad timestamp in {line.strip()!r}")
            text = "\n".join(l for _, l in block[i + 1:])
            return Cue(start, end, text, m.group(3).strip() if fmt == "vtt" else "")
    raise ResultFormatError(f"{name}: line {block[0][0]}: no 'start --> end' timing line in this cue")


def parse_json(text: str, name: str) -> list[Cue]:
    """Cues of JSON segments: a list, or an object with a ``segments`` list.

    >>> parse_json('{"segments": [{"start": 1, "end": 2, "text": "hi", "speaker": "A"}]}', "s.json")
    [Cue(start=1, end=2, text='hi', settings='', extra={'speaker': 'A'})]
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ResultFormatError(f"{name}: not JSON ({exc})") from None
    segments = data.get("segments") if isinstance(data, dict) else data
    if not isinstance(segments, list):
        raise ResultFormatError(f"{name}: expected a list of segments or an object with 'segments'")
    cues = []
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict) or not all(is_seconds(seg.get(k)) for k in ("start", "end")):
            raise ResultFormatError(f"{name}: segment {i} has no numeric start and end (seconds)")
        extra = {k: v for k, v in seg.items() if k not in ("start", "end", "text")}
        cues.append(Cue(seg["start"], seg["end"], str(seg.get("text", "")), extra=extra))
    return cues


def read_cues(data: bytes, name: str, fmt: str) -> list[Cue]:
    """Cues of one file of format ``fmt`` (``srt``, ``vtt`` or ``json``).

    >>> [(c.start, c.end, c.text) for c in read_cues(b"1\\n00:00:01,000 --> 00:00:02,500\\nhi\\n", "a.srt", "srt")]
    [(1.0, 2.5, 'hi')]
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultFormatError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    return parse_json(text, name) if fmt == "json" else parse_blocks(text, name, fmt)


def write_cues(cues: list[Cue], fmt: str) -> str:
    """Cues as SRT (numbered from 1), WebVTT or JSON segments.

    >>> print(write_cues([Cue(1.0, 2.5, "hi")], "vtt"))
    WEBVTT
    <BLANKLINE>
    00:00:01.000 --> 00:00:02.500
    hi
    <BLANKLINE>
    """
    if fmt == "json":
        segments = [{"start": c.start, "end": c.end, "text": c.text, **c.extra} for c in cues]
        return json.dumps({"segments": segments}, ensure_ascii=False, indent=1) + "\n"
    parts = ["WEBVTT\n"] if fmt == "vtt" else []
    for i, c in enumerate(cues, start=1):
        timing = f"{format_time(c.start, fmt == 'srt')} --> {format_time(c.end, fmt == 'srt')}"
        if fmt == "vtt" and c.settings:
            timing += " " + c.settings
        head = f"{i}\n" if fmt == "srt" else ""
        parts.append(f"{head}{timing}\n{c.text}\n")
    return "\n".join(parts)


def format_of(name: str) -> str | None:
    """The timed-text format a file name says (``.srt``, ``.vtt``, ``.json``), or None.

    >>> format_of("a.VTT"), format_of("a.txt")
    ('vtt', None)
    """
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return ext if ext in FORMATS else None
