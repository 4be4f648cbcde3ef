"""``date-range``: table rows regrouped into time windows of a date/time column
(spilled to staging, see :mod:`.regroup`)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from ..bad_records import ON_BAD_SCHEMA
from ..exceptions import FieldError
from .regroup import COMMON_PROPERTIES, Regroup

UNITS = {"s": "seconds", "min": "minutes", "h": "hours", "D": "days", "M": "months", "Y": "years"}
EVERY = re.compile(r"^\s*(\d+)\s*(s|min|h|D|M|Y)\s*$")
EPOCH_DAY = date(1970, 1, 1).toordinal()


def parse_every(every: str) -> tuple[int, str]:
    """``(n, unit)`` of a window length: ``30min``, ``1h``, ``7D``, ``1M`` (calendar
    month), ``1Y``; units ``s``, ``min``, ``h``, ``D``, ``M``, ``Y``.

    >>> parse_every("30min"), parse_every("1M")
    ((30, 'min'), (1, 'M'))
    """
    m = EVERY.match(every or "")
    if not m or int(m.group(1)) < 1:
        raise FieldError("params.partitioner.every",
                         f"expected a count and a unit ({', '.join(UNITS)}), e.g. 1h, 30min, 7D, 1M; got {every!r}")
    return int(m.group(1)), m.group(2)


def window(moment: datetime, n: int, unit: str, zone) -> tuple[datetime, datetime]:
    """The window ``[start, end)`` holding ``moment`` (aware), both aware in ``zone``.

    Days, months and years follow the calendar of ``zone``: a window starts at
    local midnight (a day across a DST change is 23 or 25 hours long);
    ``nD`` windows count days from 1970-01-01, ``nM`` months and ``nY``
    years from year 0, so ``3M`` are quarters and ``10Y`` decades. ``s``,
    ``min`` and ``h`` windows are spans of elapsed time counted from each
    local midnight, the last of a day ending at the next midnight.

    >>> from zoneinfo import ZoneInfo
    >>> z = ZoneInfo("Europe/Paris")
    >>> [t.isoformat() for t in window(datetime(2024, 3, 31, 4, 30, tzinfo=z), 1, "h", z)]
    ['2024-03-31T04:00:00+02:00', '2024-03-31T05:00:00+02:00']
    >>> [t.isoformat() for t in window(datetime(2024, 1, 31, 23, 0, tzinfo=z), 1, "M", z)]
    ['2024-01-01T00:00:00+01:00', '2024-02-01T00:00:00+01:00']
    """
    local = moment.astimezone(zone)
    day = local.date()
    if unit == "D":
        first = (day.toordinal() - EPOCH_DAY) // n * n + EPOCH_DAY
        return _midnight(date.fromordinal(first), zone), _midnight(date.fromordinal(first + n), zone)
    if unit in ("M", "Y"):
        months = n * 12 if unit == "Y" else n
        first = (day.year * 12 + day.month - 1) // months * months
        last = first + months
        return (_midnight(date(first // 12, first % 12 + 1, 1), zone),
                _midnight(date(last // 12, last % 12 + 1, 1), zone))
    step = timedelta(**{UNITS[unit]: n})
    midnight = _midnight(day, zone)
    next_midnight = _midnight(day + timedelta(days=1), zone)
    since = _utc(local) - _utc(midnight)
    start = _utc(midnight) + (since // step) * step
    end = min(start + step, _utc(next_midnight))
    return start.astimezone(zone), end.astimezone(zone)


def _midnight(day: date, zone) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _utc(moment: datetime) -> datetime:
    from datetime import timezone

    return moment.astimezone(timezone.utc)


def parse_time(value, fmt: str | None, zone) -> datetime:
    """A column value as an aware datetime: text by ``fmt`` (strptime) or ISO 8601,
    a naive time taken in ``zone``. Raises ValueError when it does not parse.

    >>> from zoneinfo import ZoneInfo
    >>> parse_time("2024-03-10 01:30", None, ZoneInfo("America/New_York")).isoformat()
    '2024-03-10T01:30:00-05:00'
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if fmt:
            moment = datetime.strptime(text, fmt)
        else:
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            moment = datetime.fromisoformat(text)
    else:
        raise ValueError(f"not a date or time: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


class DateRange(Regroup):
    """Regroup table rows (CSV, TSV, JSON Lines, Parquet; rows in any order) into
    one chunk per time window of the date/time ``column``: ``every`` is a count
    and a unit, ``s``, ``min``, ``h``, ``D``, ``M`` (calendar month), ``Y``
    (``1h``, ``30min``, ``7D``, ``1M``). Windows are aligned in ``timezone``
    (an IANA name, UTC by default): days, months and years start at local
    midnight (a DST day is 23 or 25 hours), ``nD`` counts days from
    1970-01-01, ``nM``/``nY`` from year 0; ``s``/``min``/``h`` windows are
    spans of elapsed time from each local midnight. Text is parsed with
    ``format`` (strptime) or as ISO 8601; a naive time is taken in
    ``timezone``. A value that does not parse is a bad record (``on_bad``:
    fail naming file and line, or skip and count). Rows are spilled to
    staging, bytes as they were; chunks in window order, each one table with
    one header. ``CHUNK_INFO`` has ``window``: ``[start, end)`` as ISO 8601
    strings with their UTC offset."""

    schema = {
        "type": "object",
        "properties": {
            "column": {"type": "string", "description": "The date/time column."},
            "every": {"type": "string", "pattern": r"^\s*[0-9]+\s*(s|min|h|D|M|Y)\s*$",
                      "description": "Window length: a count and a unit (s, min, h, D, M, Y), e.g. 1h, 7D, 1M."},
            "format": {"type": "string",
                       "description": "strptime format of the column's text (default: ISO 8601)."},
            "table_format": COMMON_PROPERTIES["format"],
            "timezone": {"type": "string", "default": "UTC",
                         "description": "IANA time zone the windows are aligned in; naive times are taken in it."},
            "block_size": COMMON_PROPERTIES["block_size"],
            "on_bad": ON_BAD_SCHEMA,
        },
        "required": ["column", "every"],
        "additionalProperties": False,
    }

    def columns(self, params: dict) -> list[str]:
        return [params["column"]]

    def plan(self, source, params):
        parse_every(params["every"])
        _zone(params)
        # ``format`` is the time format here; the table format has its own name.
        return super().plan(source, {**params, "format": params.get("table_format"), "time_format": params.get("format")})

    def assign(self, values, params, report):
        import numpy as np

        n, unit = parse_every(params["every"])
        zone = _zone(params)
        fmt = params.get("time_format")
        column = values[params["column"]].to_pylist()
        codes = np.full(len(column), -1, dtype=np.int64)
        index: dict = {}
        groups: list = []
        seen: dict = {}
        for row, value in enumerate(column):
            key = value if isinstance(value, (str, date)) else repr(value)
            code = seen.get(key)
            if code is None:
                try:
                    start, end = window(parse_time(value, fmt, zone), n, unit, zone)
                except (ValueError, TypeError, OverflowError) as exc:
                    report(row, f"{params['column']}: {value!r} does not parse as a date/time"
                                + (f" with format {fmt!r}" if fmt else " (ISO 8601)") + f": {exc}")
                    continue
                gid = _utc(start).timestamp()
                code = index.get(gid)
                if code is None:
                    code = index[gid] = len(groups)
                    groups.append((gid, {"window": [start.isoformat(), end.isoformat()]}))
                seen[key] = code
            codes[row] = code
        return codes, groups


def _zone(params: dict):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = params.get("timezone") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError("params.partitioner.timezone", f"unknown IANA time zone {name!r}") from None
