"""Log timestamps and entries, shared by the ``log-time`` partitioner and the
``log-merge`` assembler.

A log *entry* starts at a line whose beginning matches the format's pattern
(a regex with a named group ``ts``, matched on the line's UTF-8 bytes); every
following line that does not match (a stack trace, a continuation line, an
empty line) belongs to it. Timestamps become integer microseconds since the
epoch (UTC); a timestamp without a zone is read in ``timezone`` (UTC by
default).

>>> fmt = TimeFormat(preset="python-logging")
>>> data = b"2026-03-05 14:02:01,123 ERROR boom\\nTraceback:\\n  x\\n2026-03-05 14:02:02,000 INFO ok\\n"
>>> [(e.line, e.ts, e.data) for e in scan(io.BytesIO(data), fmt.regex, keep_data=True)]
[(1, b'2026-03-05 14:02:01,123', b'2026-03-05 14:02:01,123 ERROR boom\\nTraceback:\\n  x\\n'), (4, b'2026-03-05 14:02:02,000', b'2026-03-05 14:02:02,000 INFO ok\\n')]
>>> fmt.key(b"2026-03-05 14:02:01,123")
1772719321123000
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone as _tz
from typing import Iterator

from .exceptions import FieldError

SCAN_BLOCK = 4 * 2**20
MONTHS = {m.encode(): i + 1 for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])}
_MONTH_ALT = "|".join(m.decode() for m in MONTHS)
_LOCAL_CLOCK = re.compile(rb":\d\d(?:[.,]\d{1,6})?")  # seconds and fraction, no offset

#: preset -> (pattern of an entry's first line, how its ``ts`` is read)
PRESETS = {
    "iso8601": (r"(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)",
                "iso"),
    "python-logging": (r"(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3})", "iso"),
    "syslog": (rf"(?P<ts>(?:{_MONTH_ALT}) [ \d]\d \d{{2}}:\d{{2}}:\d{{2}})", "syslog"),
    "apache": (r"\S+ \S+ \S+ \[(?P<ts>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]", "clf"),
    "nginx": (r"\S+ \S+ \S+ \[(?P<ts>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]", "clf"),
}

#: JSON Schema properties of the timestamp params, shared by log-time and log-merge
TIME_PROPERTIES = {
    "preset": {"enum": list(PRESETS),
               "description": "A known log format: iso8601, syslog (RFC 3164), apache/nginx (combined), "
                              "python-logging. Default iso8601 unless `pattern` is given."},
    "pattern": {"type": "string", "minLength": 1,
                "description": "A regex with a named group `ts`, matched at the start of a line: a line "
                               "that matches starts an entry."},
    "format": {"type": "string", "minLength": 1,
               "description": "With `pattern`: the strptime format of `ts` (default ISO 8601)."},
    "timezone": {"type": "string", "minLength": 1,
                 "description": "IANA zone of timestamps without an offset (default UTC); also the zone "
                                "whose calendar day and month windows follow."},
    "year": {"type": "integer", "minimum": 1, "maximum": 9999,
             "description": "syslog: the year of the timestamps (which have none); default: see the docs."},
}

TIME_PARAMS = tuple(TIME_PROPERTIES)


def zone_of(name: str | None, field: str = "timezone"):
    """The ``tzinfo`` of an IANA zone name (UTC for None).

    >>> zone_of("Europe/Paris").key, zone_of(None)
    ('Europe/Paris', datetime.timezone.utc)
    """
    if not name or name == "UTC":
        return _tz.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FieldError(field, f"unknown time zone {name!r} (expected an IANA name such as Europe/Paris)") from exc


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=_tz.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int, zone=_tz.utc) -> datetime:
    """The aware datetime of a timestamp key, in ``zone``.

    >>> from_micros(1_000_000).isoformat()
    '1970-01-01T00:00:01+00:00'
    """
    return (datetime(1970, 1, 1, tzinfo=_tz.utc) + timedelta(microseconds=us)).astimezone(zone)


class TimeFormat:
    """How entries start and how their timestamps read: a ``preset``, or a
    ``pattern`` with a named group ``ts`` and a strptime ``format``.

    syslog timestamps have no year: ``year`` when given, else the year of a
    ``reference`` moment (the file's modification time; for ``log-merge`` the
    end of the chunk's window), minus one for a timestamp that would fall more
    than a day after the reference (a log written across a new year).
    """

    def __init__(self, preset: str | None = None, pattern: str | None = None, format: str | None = None,
                 timezone: str | None = None, year: int | None = None, field: str = "params"):
        if preset and pattern:
            raise FieldError(f"{field}.pattern", "give either `preset` or `pattern`, not both")
        if pattern:
            try:
                compiled = re.compile(pattern.encode("utf-8"))
            except re.error as exc:
                raise FieldError(f"{field}.pattern", f"not a valid regex: {exc}") from exc
            if "ts" not in compiled.groupindex:
                raise FieldError(f"{field}.pattern", "needs a named group `ts`, e.g. (?P<ts>...)")
            self.kind = "strptime" if format else "iso"
        else:
            preset = preset or "iso8601"
            if preset not in PRESETS:
                raise FieldError(f"{field}.preset", f"expected one of {', '.join(PRESETS)}, got {preset!r}")
            pattern, self.kind = PRESETS[preset]
        self.preset, self.pattern, self.format, self.year = preset, pattern, format, year
        self.zone = zone_of(timezone, f"{field}.timezone")
        self.timezone = timezone
        self.regex = re.compile(b"(?m)^(?:" + pattern.encode("utf-8") + b")")
        self._last: tuple[bytes, int | None] = (b"", 0)
        self._minutes: dict[bytes, int] = {}

    def params(self) -> dict:
        """The params that rebuild this format (for a chunk's ``CHUNK_INFO``)."""
        out = {"preset": self.preset} if self.preset else {"pattern": self.pattern}
        for name in ("format", "timezone", "year"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_params(cls, params: dict, field: str = "params") -> "TimeFormat":
        return cls(**{k: params[k] for k in TIME_PARAMS if params.get(k) is not None}, field=field)

    def key(self, ts: bytes, reference: int | None = None) -> int:
        """Microseconds since the epoch of timestamp ``ts``; ValueError if it does not parse.
        ``reference`` (a key) gives syslog timestamps their year."""
        last, value = self._last
        if ts == last and value is not None and self.kind != "syslog":
            return value  # logs repeat the same second many times
        value = self._parse(ts, reference)
        self._last = (ts, value)
        return value

    def _parse(self, ts: bytes, reference: int | None) -> int:
        if self.kind == "iso" and len(ts) >= 19 and _LOCAL_CLOCK.fullmatch(ts, 16):
            # "YYYY-MM-DD HH:MM:SS[.fff]" without an offset: the minute is parsed once
            # (and checked by fromisoformat), the seconds and fraction added to it.
            minute = self._minutes.get(ts[:16])
            if minute is None:
                if len(self._minutes) > 4096:
                    self._minutes.clear()
                moment = datetime.fromisoformat(ts[:16].decode("ascii"))
                minute = self._minutes[ts[:16]] = _micros(moment.replace(tzinfo=self.zone))
            seconds = int(ts[17:19])
            if seconds > 59:
                raise ValueError(f"second must be in 0..59: {ts.decode()!r}")
            fraction = ts[20:26]
            return minute + seconds * 1_000_000 + (int(fraction.ljust(6, b"0")) if fraction else 0)
        text = ts.decode("utf-8")
        if self.kind == "iso":
            moment = datetime.fromisoformat(text)
        elif self.kind == "strptime":
            moment = datetime.strptime(text, self.format)
        elif self.kind == "clf":  # 10/Oct/2000:13:55:36 -0700
            month = MONTHS.get(ts[3:6])
            if month is None:
                raise ValueError(f"unknown month {text[3:6]!r}")
            sign = -1 if text[21] == "-" else 1
            offset = timedelta(hours=int(text[22:24]), minutes=int(text[24:26])) * sign
            moment = datetime(int(text[7:11]), month, int(text[0:2]), int(text[12:14]), int(text[15:17]),
                              int(text[18:20]), tzinfo=_tz(offset))
        else:  # syslog: "Mar  5 14:02:01"
            month, day = MONTHS[ts[:3]], int(text[4:6])
            clock = int(text[7:9]), int(text[10:12]), int(text[13:15])
            if self.year:
                moment = datetime(self.year, month, day, *clock)
            else:
                ref = from_micros(reference if reference is not None else _micros(datetime.now(_tz.utc)), self.zone)
                moment = datetime(ref.year, month, day, *clock)
                if _micros(moment.replace(tzinfo=self.zone)) > _micros(ref) + 86400 * 1_000_000:
                    moment = datetime(ref.year - 1, month, day, *clock)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return _micros(moment)


@dataclass(slots=True)
class Entry:
    """One log entry: its byte ``offset`` and 1-based ``line`` in its file, its
    timestamp text ``ts`` (None: lines before the first entry) and, when
    asked for, its bytes."""

    offset: int
    end: int
    line: int
    ts: bytes | None
    data: bytes | None = None


def scan(stream, regex: re.Pattern, *, keep_data: bool = False, offset: int = 0, limit: int | None = None,
         block: int = SCAN_BLOCK) -> Iterator[Entry]:
    """The entries of a log read from ``stream`` (positioned at byte ``offset``
    of its file, at a line start; at most ``limit`` bytes read), in file order.
    Lines before the first entry come as one entry with ``ts`` None. Memory: a
    block and the entry being read."""
    buf, buf_off, line = b"", offset, 1
    pending: Entry | None = None
    parts: list[bytes] = []  # the pending entry's bytes from earlier blocks
    left = limit
    while True:
        want = block if left is None else min(block, left)
        data = stream.read(want) if want else b""
        if left is not None:
            left -= len(data)
        eof = not data
        buf += data
        cut = len(buf) if eof else buf.rfind(b"\n") + 1  # whole lines only, but for the last
        if cut:
            seg = counted = 0
            for m in regex.finditer(buf, 0, cut):
                p = m.start()
                if pending is None and p:  # lines before the first entry
                    pending = Entry(offset, offset, 1, None)
                if pending is not None:
                    pending.end = buf_off + p
                    if keep_data:
                        piece = buf[seg:p]
                        pending.data = b"".join(parts) + piece if parts else piece
                        parts = []
                    yield pending
                line += buf.count(b"\n", counted, p)
                counted = seg = p
                pending = Entry(buf_off + p, buf_off + p, line, m.group("ts"))
            if pending is None:
                pending = Entry(offset, offset, 1, None)
            if keep_data:
                parts.append(buf[seg:cut])
            line += buf.count(b"\n", counted, cut)
            buf, buf_off = buf[cut:], buf_off + cut
        if eof:
            break
    if pending is not None:
        pending.end = buf_off
        if keep_data:
            pending.data = b"".join(parts)
        yield pending


class Windows:
    """Time windows of ``every`` (``30s``, ``15min``, ``1h``, ``1D``, ``7D``, ``1M``,
    ``1Y``) in ``zone``: days, months and years follow the zone's calendar
    (``nD`` counted from 1970-01-01, ``nM``/``nY`` from year 0, so ``3M`` are
    quarters); ``s``, ``min`` and ``h`` windows are counted from each local
    midnight, the last of a day ending at the next midnight.

    >>> w = Windows("15min")
    >>> [from_micros(t).isoformat() for t in w.of(TimeFormat().key(b"2026-03-05T14:20:00"))]
    ['2026-03-05T14:15:00+00:00', '2026-03-05T14:30:00+00:00']
    >>> [from_micros(t).date().isoformat() for t in Windows("1M").of(TimeFormat().key(b"2026-03-05"))]
    ['2026-03-01', '2026-04-01']
    """

    UNITS = {"s": 1, "min": 60, "h": 3600}
    EVERY = re.compile(r"^\s*(\d+)\s*(s|min|h|D|M|Y)\s*$")

    def __init__(self, every: str, zone=_tz.utc, field: str = "every"):
        m = self.EVERY.match(every or "")
        if not m or int(m.group(1)) < 1:
            raise FieldError(field, f"expected a count and a unit (s, min, h, D, M, Y), e.g. 1h, 15min, 1D, 1M; "
                                    f"got {every!r}")
        self.n, self.unit, self.zone = int(m.group(1)), m.group(2), zone
        self._current = (1, 0)  # an empty window: the first lookup computes

    def of(self, key: int) -> tuple[int, int]:
        """``(start, end)`` keys of the window holding ``key``."""
        start, end = self._current
        if start <= key < end:
            return self._current
        self._current = self._compute(key)
        return self._current

    def _midnight(self, day: date) -> int:
        return _micros(datetime(day.year, day.month, day.day, tzinfo=self.zone))

    def _compute(self, key: int) -> tuple[int, int]:
        day = from_micros(key, self.zone).date()
        n = self.n
        if self.unit == "D":
            epoch = date(1970, 1, 1).toordinal()
            first = (day.toordinal() - epoch) // n * n + epoch
            return self._midnight(date.fromordinal(first)), self._midnight(date.fromordinal(first + n))
        if self.unit in ("M", "Y"):
            months = n * 12 if self.unit == "Y" else n
            first = (day.year * 12 + day.month - 1) // months * months
            last = first + months
            return (self._midnight(date(first // 12, first % 12 + 1, 1)),
                    self._midnight(date(last // 12, last % 12 + 1, 1)))
        step = n * self.UNITS[self.unit] * 1_000_000
        midnight, next_midnight = self._midnight(day), self._midnight(day + timedelta(days=1))
        start = midnight + (key - midnight) // step * step
        return start, min(start + step, next_midnight)
