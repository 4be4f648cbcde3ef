"""The date-range partitioner: rows regrouped into time windows of a column,
aligned in a time zone, spilled to staging, each chunk one table."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn
from bytenite_nb.partitioners.date_range import parse_every, window

NOTE = hs.text(alphabet=hs.sampled_from(list('ab ,"\n\r;é€1')), max_size=6)
MOMENT = hs.datetimes(min_value=datetime(2023, 10, 20), max_value=datetime(2024, 4, 10))


def csv_text(rows) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def run_windows(tmp_path, name: str, data: bytes, params: dict, client=None):
    src = tmp_path / name
    src.write_bytes(data)
    kwargs = {"client": client} if client is not None else {"scheduler": "sync"}
    header = not name.endswith((".jsonl", ".parquet"))
    job = bn.Job(source=str(src), partitioner="date-range", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": params, "assembler": {"header": header, "output_name": name}})
    job.run(force=True, **kwargs)
    job.copy(assembler="passthrough", destination=str(tmp_path / "parts"),
             params={"partitioner": params}).run(force=True, **kwargs)
    parts = sorted(d for d in os.listdir(tmp_path / "parts") if d.startswith("chunk_"))
    pieces = [(tmp_path / "parts" / d / "result.bin").read_bytes() for d in parts]
    return (tmp_path / "out" / name).read_bytes(), pieces, job.plan(**kwargs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=hs.lists(hs.tuples(MOMENT, NOTE), min_size=1, max_size=25),
       every=hs.sampled_from(["1h", "7h", "1D", "7D", "1M", "3M"]),
       zone=hs.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
       iso=hs.booleans())
def test_windows_round_trip_the_rows_and_hold_their_times(tmp_path_factory, rows, every, zone, iso):
    """Unsorted rows, quoted newlines, DST changes (autumn 2023, spring 2024), month ends."""
    tmp_path = tmp_path_factory.mktemp("dr")
    fmt = None if iso else "%d/%m/%Y %H.%M.%S"
    table = [[m.isoformat(sep=" ") if iso else m.strftime(fmt), note] for m, note in rows]
    text = csv_text([["when", "note"], *table])
    params = {"column": "when", "every": every, "timezone": zone, "block_size": 1024, **({"format": fmt} if fmt else {})}
    output, pieces, refs = run_windows(tmp_path, "t.csv", text.encode(), params)
    assert Counter(map(tuple, parse(output)[1:])) == Counter(map(tuple, table))
    assert sum(r.meta["rows"] for r in refs) == len(rows)
    tz = ZoneInfo(zone)
    starts = [datetime.fromisoformat(r.meta["window"][0]) for r in refs]
    assert starts == sorted(starts)
    for ref, piece in zip(refs, pieces):
        start, end = (datetime.fromisoformat(t) for t in ref.meta["window"])
        assert start.utcoffset() == start.astimezone(tz).utcoffset()  # given in the zone
        got = parse(piece)
        assert got[0] == ["when", "note"] and len(got) - 1 == ref.meta["rows"]
        for when, _ in got[1:]:
            moment = (datetime.fromisoformat(when) if iso else datetime.strptime(when, fmt)).replace(tzinfo=tz)
            assert start <= moment < end


def test_days_and_hours_across_dst_changes_and_months_across_their_ends():
    ny = ZoneInfo("America/New_York")
    # the spring-forward day is 23 hours long, the fall-back day 25
    start, end = window(datetime(2024, 3, 10, 12, tzinfo=ny), 1, "D", ny)
    assert (start.isoformat(), end.isoformat()) == ("2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00")
    assert end.astimezone(timezone.utc) - start.astimezone(timezone.utc) == timedelta(hours=23)
    start, end = window(datetime(2024, 11, 3, 23, tzinfo=ny), 1, "D", ny)
    assert end.astimezone(timezone.utc) - start.astimezone(timezone.utc) == timedelta(hours=25)
    # the repeated hour of the fall-back night is two windows, an hour each
    first = datetime(2024, 11, 3, 1, 30, tzinfo=ny)
    second = datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ny)
    w1, w2 = window(first, 1, "h", ny), window(second, 1, "h", ny)
    assert [t.isoformat() for t in w1] == ["2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00"]
    assert [t.isoformat() for t in w2] == ["2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"]
    # 7h windows restart at each local midnight; the last one of a day is cut there
    assert [t.isoformat() for t in window(datetime(2024, 1, 5, 22, tzinfo=ny), 7, "h", ny)] == [
        "2024-01-05T21:00:00-05:00", "2024-01-06T00:00:00-05:00"]
    # months: Jan 31 and Feb 29 (a leap year), quarters, years
    utc = ZoneInfo("UTC")
    assert [t.isoformat() for t in window(datetime(2024, 2, 29, 23, 59, tzinfo=utc), 1, "M", utc)] == [
        "2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"]
    assert [t.date().isoformat() for t in window(datetime(2024, 12, 31, tzinfo=utc), 3, "M", utc)] == [
        "2024-10-01", "2025-01-01"]
    assert [t.year for t in window(datetime(2031, 6, 1, tzinfo=utc), 10, "Y", utc)] == [2030, 2040]
    # an aware time is moved into the zone first: 03:30 UTC is still Jan 31 in New York
    assert window(datetime(2024, 2, 1, 3, 30, tzinfo=timezone.utc), 1, "M", ny)[0].month == 1
    with pytest.raises(bn.exceptions.FieldError, match="expected a count and a unit"):
        parse_every("1w")


def test_a_job_over_dst_with_timestamps_in_several_forms(tmp_path):
    rows = [["2024-03-10T06:59:00Z", "a"],          # 01:59 EST
            ["2024-03-10 03:00", "b"],              # naive: taken in New York, EDT
            ["2024-03-09T23:00:00-08:00", "c"],     # 03:00 EDT on the 10th
            ["2024-03-11T00:00:00-04:00", "d"],
            ["2024-03-10T00:00:00", "e"]]
    output, pieces, refs = run_windows(tmp_path, "t.csv", csv_text([["ts", "x"], *rows]).encode(),
                                       {"column": "ts", "every": "1D", "timezone": "America/New_York"})
    assert [r.meta["window"] for r in refs] == [["2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00"],
                                                ["2024-03-11T00:00:00-04:00", "2024-03-12T00:00:00-04:00"]]
    assert [[r[1] for r in parse(p)[1:]] for p in pieces] == [["a", "b", "c", "e"], ["d"]]
    assert refs[0].info()["window"] == refs[0].meta["window"]


def test_bad_timestamps_fail_naming_file_and_line_or_are_skipped_and_counted(tmp_path):
    data = b'ts,note\n2024-01-01T10:00,"multi\nline"\nnot a time,x\n2024-01-02T10:00,y\n,z\n'
    (tmp_path / "t.csv").write_bytes(data)
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="date-range", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"column": "ts", "every": "1D"},
                                                            "assembler": {"header": True}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "t.csv: line 4 (byte 38): ts: 'not a time' does not parse as a date/time (ISO 8601)" in str(e.value)
    assert not (tmp_path / "out").exists()
    job.params["partitioner"]["on_bad"] = "skip"
    job.run(scheduler="sync")
    assert (tmp_path / "out" / "output.bin").read_bytes() == (
        b'ts,note\n2024-01-01T10:00,"multi\nline"\n2024-01-02T10:00,y\n')
    skipped = json.loads((tmp_path / "out" / "_SUCCESS").read_text())["skipped"]
    assert skipped["count"] == 2
    assert [(r["file"], r["line"]) for r in skipped["records"]] == [("t.csv", 4), ("t.csv", 6)]


def test_parquet_timestamps_and_json_lines(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = datetime(2024, 1, 30, tzinfo=timezone.utc)
    moments = [base + timedelta(hours=7 * i) for i in range(40)][::-1]
    table = pa.table({"t": pa.array(moments, type=pa.timestamp("us", tz="UTC")), "i": list(range(40))})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=8)
    job = bn.Job(source=str(tmp_path / "t.parquet"), partitioner="date-range", app="identity",
                 assembler="passthrough", destination=str(tmp_path / "out"),
                 params={"partitioner": {"column": "t", "every": "1M", "block_size": 1024}})
    job.run(scheduler="sync")
    chunks = [pq.read_table(tmp_path / "out" / d / "result.bin") for d in sorted(os.listdir(tmp_path / "out"))
              if d.startswith("chunk_")]
    assert [sorted({m.month for m in c.column("t").to_pylist()}) for c in chunks] == [[1], [2]]
    assert sorted(pa.concat_tables(chunks).column("i").to_pylist()) == list(range(40))
    lines = "".join(json.dumps({"at": f"2024-05-{d:02d}T12:00:00+02:00", "d": d}) + "\n" for d in (9, 1, 20, 2, 8))
    (tmp_path / "j").mkdir()
    output, pieces, refs = run_windows(tmp_path / "j", "t.jsonl", lines.encode(),
                                       {"column": "at", "every": "7D", "timezone": "Europe/Paris"})
    assert [r.meta["window"][0][:10] for r in refs] == ["2024-04-25", "2024-05-02", "2024-05-09", "2024-05-16"]
    assert [[json.loads(x)["d"] for x in p.splitlines()] for p in pieces] == [[1], [2, 8], [9], [20]]


def test_a_job_on_the_cluster_keeps_every_row(tmp_path, client):
    rows = [[(datetime(2024, 1, 1) + timedelta(minutes=37 * ((i * 7919) % 4000))).isoformat(), f'n"{i}"\n'] for i in
            range(4000)]
    output, pieces, refs = run_windows(tmp_path, "t.csv", csv_text([["ts", "n"], *rows]).encode(),
                                       {"column": "ts", "every": "1D", "block_size": 16384}, client)
    assert Counter(map(tuple, parse(output)[1:])) == Counter(map(tuple, rows))
    assert len(refs) == len({r[0][:10] for r in rows}) == len(pieces)
    assert all({r[0][:10] for r in parse(p)[1:]} == {ref.meta["window"][0][:10]} for ref, p in zip(refs, pieces))
