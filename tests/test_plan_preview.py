"""The plan preview: what each chunk covers, and the first rows of the first
chunk as its app will see it (tables, text, archives), read by the planning
task and never more than a bounded start of a large chunk."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

import bytenite_nb as bn
from bytenite_nb.partitioners import ChunkRef
from bytenite_nb.plan import Plan, chunk_details, plan_html, sample_html

CSV = 'id,note,day\n' + "".join(f'{i},"n{i}, with\nnewline",2026-01-0{1 + i % 9}\n' for i in range(50))


def job(tmp_path, source, partitioner, params=None):
    return bn.Job(source=str(source), partitioner=partitioner, app="identity", assembler="concat",
                  destination=str(tmp_path / "out"), params={"partitioner": params or {}})


def test_a_csv_plan_shows_row_ranges_and_the_first_rows_with_their_header(tmp_path, client):
    (tmp_path / "t.csv").write_text(CSV)
    plan = job(tmp_path, tmp_path / "t.csv", "rows", {"rows_per_chunk": 20}).plan(client=client)
    assert isinstance(plan, Plan) and len(plan) == 3
    assert [chunk_details(r) for r in plan] == ["rows: [0, 20]", "rows: [20, 40]", "rows: [40, 50]"]
    sample = plan.sample
    assert sample["kind"] == "table" and sample["format"] == "csv"
    assert sample["columns"] == ["id", "note", "day"]
    assert sample["rows"][:2] == [["0", "n0, with\nnewline", "2026-01-01"], ["1", "n1, with\nnewline", "2026-01-02"]]
    assert len(sample["rows"]) == 10
    page = plan._repr_html_()
    assert "<th>details</th>" in page and "rows: [0, 20]" in page
    assert "first rows of chunk 0 (csv)" in page and "<td>n0, with\nnewline</td>" in page


def test_parquet_and_json_lines_samples_are_tables(tmp_path):
    pq.write_table(pa.table({"x": list(range(30)), "y": [f"v{i}" for i in range(30)]}), tmp_path / "t.parquet",
                   row_group_size=10)
    plan = job(tmp_path, tmp_path / "t.parquet", "rows", {"rows_per_chunk": 10}).plan(scheduler="sync")
    assert len(plan) == 3 and plan.sample["columns"] == ["x", "y"] and plan.sample["rows"][3] == ["3", "v3"]
    (tmp_path / "t.jsonl").write_text("".join(f'{{"a": {i}, "b": [{i}]}}\n' for i in range(5)))
    plan = job(tmp_path, tmp_path / "t.jsonl", "rows", {"rows_per_chunk": 2}).plan(scheduler="sync")
    assert plan.sample["columns"] == ["a", "b"] and plan.sample["rows"] == [["0", "[0]"], ["1", "[1]"]]


def test_a_large_chunk_is_sampled_from_its_start_only(tmp_path):
    rows = 'id,text\n' + "".join(f'{i},"{"x" * 200}\n{i}"\n' for i in range(40_000))  # ~8 MiB, one chunk
    (tmp_path / "big.csv").write_text(rows)
    plan = job(tmp_path, tmp_path / "big.csv", "rows", {"chunk_size": 64 * 2**20}).plan(scheduler="sync")
    assert len(plan) == 1 and plan[0].size > 8 * 2**20
    assert plan.sample["kind"] == "table" and plan.sample["rows"][0] == ["0", "x" * 79 + "…"]
    (tmp_path / "big.txt").write_text("first line\n" + "y\n" * 5_000_000)
    plan = job(tmp_path, tmp_path / "big.txt", "passthrough").plan(scheduler="sync")
    assert plan.sample["kind"] == "text" and plan.sample["lines"][:2] == ["first line", "y"]
    assert plan.sample["size"] == (tmp_path / "big.txt").stat().st_size


def test_archives_binary_data_and_no_chunks(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(4):
        (folder / f"f{i}.bin").write_bytes(bytes(range(256)) * 4)
    plan = job(tmp_path, folder, "files", {"files_per_chunk": 3}).plan(scheduler="sync")
    assert plan.sample == {"chunk": 0, "kind": "files", "count": 3, "names": ["f0.bin", "f1.bin", "f2.bin"]}
    plan = job(tmp_path, folder, "files").plan(scheduler="sync")
    assert plan.sample == {"chunk": 0, "kind": "binary", "size": 1024}
    assert "1024 bytes of binary data" in sample_html(plan.sample)
    (tmp_path / "empty.txt").write_text("")
    plan = job(tmp_path, tmp_path / "empty.txt", "split-lines").plan(scheduler="sync")
    assert list(plan) == [] and plan.sample is None


def test_details_and_html_escape_what_the_data_says(tmp_path):
    ref = ChunkRef(index=0, url="file:///d/<x>.txt", size=3, meta={"section": "<script>", "header_bytes": 9})
    assert chunk_details(ref) == "section: <script>"
    page = plan_html([ref], {"chunk": 0, "kind": "table", "format": "csv", "columns": ["<b>"], "rows": [["<i>"]]})
    assert "<script>" not in page and "&lt;script&gt;" in page and "<th>&lt;b&gt;</th>" in page
