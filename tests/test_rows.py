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
from bytenite_nb.partitioners.rows import row_ends

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
