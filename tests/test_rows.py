"""The rows partitioner: tables in chunks of whole rows, each a table of its own."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn
from bytenite_nb.partitioners.rows import byte_cuts, cut_points, row_end_blocks, row_ends

CELL = hs.text(alphabet=hs.sampled_from(list('ab ,"\n\r;é€1')), max_size=8)


def csv_text(rows: list[list[str]], delimiter: str = ",", lineterminator: str = "\r\n") -> str:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator=lineterminator).writerows(rows)
    return out.getvalue()


def run_rows(tmp_path, name: str, data: bytes, params: dict, client=None) -> tuple[bytes, list[bytes]]:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / f"out-{name}"
    job = bn.Job(source=str(src), partitioner="rows", app="identity", assembler="concat", destination=str(out),
                 params={"partitioner": params, "assembler": {"header": params.get("header", True)
                                                              and not name.endswith(".jsonl"), "output_name": name}})
    kwargs = {"client": client} if client is not None else {"scheduler": "sync"}
    job.run(force=True, **kwargs)
    parts = tmp_path / f"parts-{name}"
    job.copy(assembler="passthrough", destination=str(parts), params={"partitioner": params}).run(force=True, **kwargs)
    pieces = [(parts / d / "result.bin").read_bytes() for d in sorted(os.listdir(parts)) if d.startswith("chunk_")]
    return (out / name).read_bytes(), pieces


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=hs.lists(hs.lists(CELL, min_size=3, max_size=3), min_size=1, max_size=25),
       per=hs.integers(1, 7))
def test_csv_round_trips_byte_for_byte_and_every_chunk_is_a_table(tmp_path_factory, rows, per):
    tmp_path = tmp_path_factory.mktemp("rows")
    text = csv_text([["id", "note", "x"], *rows])
    output, pieces = run_rows(tmp_path, "t.csv", text.encode(), {"rows_per_chunk": per})
    assert output == text.encode()
    parsed = [list(csv.reader(io.StringIO(p.decode(), newline=""))) for p in pieces]
    assert all(p[0] == ["id", "note", "x"] for p in parsed)  # the header in every chunk
    assert [r for p in parsed for r in p[1:]] == list(csv.reader(io.StringIO(csv_text(rows), newline="")))  # no row lost or cut
    assert all(len(p) - 1 <= per for p in parsed)


def test_size_chunks_end_on_rows_and_jsonl_and_tsv_work(tmp_path, client):
    text = csv_text([["a", "b"], *[[str(i), "x" * (i % 7)] for i in range(500)]], "\t", "\n")
    output, pieces = run_rows(tmp_path, "t.tsv", text.encode(), {"chunk_size": 512}, client)
    assert output == text.encode() and len(pieces) > 3
    assert all(p.startswith(b"a\tb\n") and p.endswith(b"\n") for p in pieces)
    lines = "".join(json.dumps({"i": i, "s": "é\\n" * (i % 3)}) + "\n" for i in range(100))
    output, pieces = run_rows(tmp_path, "t.jsonl", lines.encode(), {"rows_per_chunk": 30}, client)
    assert output == lines.encode() and [p.count(b"\n") for p in pieces] == [30, 30, 30, 10]


def test_parquet_is_cut_by_row_groups(tmp_path, client):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(1000)), "v": [f"v{i}" for i in range(1000)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=100)
    job = bn.Job(source=str(tmp_path / "t.parquet"), partitioner="rows", app="identity", assembler="passthrough",
                 destination=str(tmp_path / "out"), params={"partitioner": {"rows_per_chunk": 250}})
    refs = job.plan(scheduler="sync")
    assert [r.meta["rows"] for r in refs] == [[0, 300], [300, 600], [600, 900], [900, 1000]]
    job.run(client=client)
    back = pa.concat_tables([pq.read_table(tmp_path / "out" / d / "result.bin")
                             for d in sorted(os.listdir(tmp_path / "out")) if d.startswith("chunk_")])
    assert back.equals(table)


def test_a_quote_never_closed_is_named_with_its_offset(tmp_path):
    (tmp_path / "bad.csv").write_text('a,b\n1,"open\n2,3\n')
    job = bn.Job(source=str(tmp_path / "bad.csv"), partitioner="rows", app="identity", destination=str(tmp_path / "o"))
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "bad.csv: a quoted field opened near byte 6 is never closed" in str(e.value)
    assert not (tmp_path / "o").exists()


def test_row_ends_across_scan_blocks():
    data = b'h\n"a\nb",1\n' * 50
    assert list(row_ends(io.BytesIO(data), quoted=True, name="x", block=7)) == list(
        row_ends(io.BytesIO(data), quoted=True, name="x"))
    assert len(list(row_ends(io.BytesIO(data), quoted=True, name="x", block=3))) == 100


def test_an_unknown_extension_asks_for_the_format(tmp_path):
    (tmp_path / "t.data").write_text("a\n1\n")
    job = bn.Job(source=str(tmp_path / "t.data"), partitioner="rows", app="identity", destination=str(tmp_path / "o"))
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "t.data: cannot tell the table format from its name; set params.partitioner.format" in str(e.value)


def ragged_csv() -> tuple[str, dict[int, tuple[int, int]]]:
    """A CSV with three ragged rows: one with a field too many, one with a field
    too few, one whose quoted field holds a newline; ``{row index: (line, byte)}``
    of each (1-based physical line where the row starts)."""
    rows = [["id", "note", "x"]] + [[str(i), f"n{i}" if i % 4 else f"n{i},\nwith newline", "x"] for i in range(60)]
    rows[15] = ["14", "one", "too", "many"]
    rows[30] = ["29", "too few"]
    rows[45] = ["44", "quoted,\nnewline, and a field too many", "x", "y"]
    text = csv_text(rows, lineterminator="\n")
    places, offset, line = {}, 0, 1
    for i, row in enumerate(rows):
        raw = csv_text([row], lineterminator="\n")
        if i in (15, 30, 45):
            places[i] = (line, offset)
        offset += len(raw.encode())
        line += raw.count("\n")
    return text, places


@pytest.mark.parametrize("params", [{"chunk_size": 300}, {"rows_per_chunk": 7}, {"chunk_size": 10_000}])
def test_a_ragged_row_fails_naming_the_file_line_and_byte(tmp_path, params):
    text, places = ragged_csv()
    (tmp_path / "t.csv").write_text(text)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("before")
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="rows", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": params, "assembler": {"header": True}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    message = str(e.value)
    failing = [i for i, (line, offset) in places.items()
               if f"t.csv: line {line} (byte {offset}): ragged row" in message]
    assert failing, message
    assert "ragged row: 4 fields, the header has 3" in message or "ragged row: 2 fields, the header has 3" in message
    assert sorted(os.listdir(tmp_path / "out")) == ["keep.txt"]  # the destination untouched


@pytest.mark.parametrize("params", [{"chunk_size": 300}, {"rows_per_chunk": 7}])
def test_skipped_ragged_rows_are_counted_and_only_they_are_missing(tmp_path, client, params):
    text, places = ragged_csv()
    (tmp_path / "t.csv").write_text(text)
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="rows", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": {**params, "on_bad": "skip"}, "assembler": {"header": True,
                                                                                   "output_name": "t.csv"}})
    job.run(client=client)
    skipped = json.loads((tmp_path / "out" / "_SUCCESS").read_text())["skipped"]
    assert skipped["count"] == 3
    assert sorted((r["line"], r["offset"]) for r in skipped["records"]) == sorted(places.values())
    assert all(r["file"] == "t.csv" and r["reason"].startswith("ragged row") for r in skipped["records"])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    kept = [r for i, r in enumerate(rows) if i not in places]
    assert list(csv.reader(io.StringIO((tmp_path / "out" / "t.csv").read_text(), newline=""))) == kept


def test_ragged_rows_pass_unchecked_with_check_fields_false_and_tsv_is_checked_by_tabs(tmp_path):
    text, _ = ragged_csv()
    output, _ = run_rows(tmp_path, "t.csv", text.encode(), {"chunk_size": 300, "check_fields": False})
    assert output == text.encode()
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n3\t4\t5\n")
    job = bn.Job(source=str(tmp_path / "t.tsv"), partitioner="rows", app="identity", destination=str(tmp_path / "o"))
    with pytest.raises(bn.JobFailed, match=r"t.tsv: line 3 \(byte 8\): ragged row: 3 fields, the header has 2"):
        job.run(scheduler="sync")


def test_a_ragged_row_longer_than_a_read_block_is_found(tmp_path, monkeypatch):
    from bytenite_nb.partitioners import rows

    monkeypatch.setattr(rows, "CHECK_BLOCK", 64)
    body = "".join(f'{i},"{"x" * 150}\n{i}"\n' for i in range(20)) + '20,"' + "y" * 300 + '",extra\n21,z\n'
    (tmp_path / "t.csv").write_text("id,text\n" + body)
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="rows", app="identity", destination=str(tmp_path / "o"))
    offset = len(("id,text\n" + body[:body.index("20,")]).encode())
    with pytest.raises(bn.JobFailed, match=rf"t.csv: line 42 \(byte {offset}\): ragged row: 3 fields"):
        job.run(scheduler="sync")


def test_invalid_json_lines_fail_or_are_skipped_with_check_json(tmp_path, client):
    lines = [json.dumps({"i": i}) for i in range(40)]
    lines[17] = '{"i": 17,'
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    offset = sum(len(x) + 1 for x in lines[:17])
    params = {"rows_per_chunk": 10, "check_json": True}
    job = bn.Job(source=str(tmp_path / "t.jsonl"), partitioner="rows", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": params})
    with pytest.raises(bn.JobFailed, match=rf"t.jsonl: line 18 \(byte {offset}\): invalid JSON"):
        job.run(client=client)
    job.copy(params={"partitioner": {**params, "on_bad": "skip"}, "assembler": {"output_name": "t.jsonl"}}).run(
        client=client)
    assert (tmp_path / "out" / "t.jsonl").read_text() == "".join(x + "\n" for x in lines if x != lines[17])
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["skipped"]["count"] == 1


@settings(max_examples=60, deadline=None)
@given(text=hs.text(alphabet=hs.sampled_from(list('a,"\n')), max_size=80), per=hs.integers(1, 30),
       block=hs.integers(1, 17), header=hs.booleans())
def test_size_cuts_match_the_cuts_over_every_row_end(text, per, block, header):
    data = text.encode()
    if data.count(b'"') % 2:
        data += b'"'
    head, cuts = byte_cuts(io.BytesIO(data), per_bytes=per, header=header, quoted=True, name="x", block=block)
    blocks = row_end_blocks(io.BytesIO(data), quoted=True, name="x", block=block)
    import numpy as np

    expected_head = 0
    if header:
        first = next(blocks, np.array([], dtype=np.int64))
        expected_head = int(first[0]) if len(first) else 0
        blocks = iter([first[1:], *blocks])
    starts_ends = []
    start = expected_head
    for end, _ in cut_points(blocks, expected_head, None, per):
        starts_ends.append((start, end))
        start = end
    assert (head, list(cuts)) == (expected_head, starts_ends)


@pytest.mark.parametrize("block", [3, 8, 1024])
def test_a_quote_never_closed_is_found_by_both_scans_whatever_the_block(block):
    from bytenite_nb.exceptions import PartitionError

    data = b'a,b\n1,"open\n' + b"x" * 50 + b"\n2,3\n"
    with pytest.raises(PartitionError, match="opened near byte 6 is never closed"):
        list(row_end_blocks(io.BytesIO(data), quoted=True, name="t.csv", block=block))
    with pytest.raises(PartitionError, match="opened near byte 6 is never closed"):
        _, cuts = byte_cuts(io.BytesIO(data), per_bytes=5, header=True, quoted=True, name="t.csv", block=block)
        list(cuts)
