"""The ``schema-merge`` assembler: columns unified across results (missing ->
null, int -> double, mixed -> string), JSON Schema and Arrow schema checks with
invalid rows failing or skipped into ``_invalid.jsonl`` and ``_SUCCESS``,
Parquet / CSV / JSON Lines outputs, a real job on the cluster, and a property:
random tables split across chunks come out as pyarrow concatenates them."""

from __future__ import annotations

import datetime
import json
import os

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bytenite_nb as bn
from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers.schema_merge import SchemaMerge
from bytenite_nb.bad_records import collecting, summary
from bytenite_nb.exceptions import FieldError, ResultFormatError


def write_result(folder, index: int, name: str, content) -> ChunkResult:
    """One chunk's result: text as it is, or a table written as Parquet."""
    path = os.path.join(str(folder), f"r{index}_{name}")
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(content)
    return ChunkResult(index, (ResultFile(name, os.path.getsize(path), "file://" + path, path),))


def read_lines(path) -> list[str]:
    """The lines of a JSON Lines file (split at newlines only: text may hold U+2028)."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1]


def assemble(tmp_path, contents: list[tuple[str, object]], params: dict) -> str:
    inputs = tmp_path / "results"
    inputs.mkdir(exist_ok=True)
    results = [write_result(inputs, i, name, content) for i, (name, content) in enumerate(contents)]
    out = tmp_path / "assembled"
    out.mkdir(exist_ok=True)
    SchemaMerge().assemble(results, str(out), params)
    return str(out)


# -- columns unified ------------------------------------------------------------------------


def test_missing_columns_are_null_and_int_widens_to_double(tmp_path):
    out = assemble(tmp_path, [("a.csv", "id,n\n1,2\n2,3\n"),
                              ("a.jsonl", '{"id": 3, "n": 4.5, "note": "x"}\n'),
                              ("a.parquet", pa.table({"note": ["y"], "id": pa.array([4], pa.int32())}))], {})
    table = pq.read_table(os.path.join(out, "output.parquet"))
    want = pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "n": [2.0, 3.0, 4.5, None],
                     "note": [None, None, "x", "y"]})
    assert table.equals(want)


def test_types_that_do_not_promote_become_text(tmp_path):
    out = assemble(tmp_path, [("a.jsonl", '{"v": 1, "ok": true}\n'), ("a.jsonl", '{"v": "one", "ok": 2}\n')],
                   {"format": "jsonl"})
    lines = read_lines(os.path.join(out, "output.jsonl"))
    assert [json.loads(line) for line in lines] == [{"v": "1", "ok": "true"}, {"v": "one", "ok": "2"}]


# -- JSON Schema ----------------------------------------------------------------------------

ROW_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "email": {"type": "string", "format": "email"},
                   "kind": {"enum": ["a", "b"]}, "score": {"type": ["number", "null"], "minimum": 0}},
    "required": ["id", "email"],
}
GOOD_AND_BAD = [
    ("part.csv", "id,email,kind,score\n1,x@y.org,a,0.5\n2,not-an-email,b,1\n3,z@y.org,c,\n"),
    ("part.jsonl", '{"id": 4, "email": "w@y.org", "kind": "b", "score": 2}\n{"email": "v@y.org"}\n'
                   '{"id": 6, "email": "u@y.org", "score": -1}\n'),
    ("part.csv", "id,email\nseven,t@y.org\n8,s@y.org\n"),
]


def test_json_schema_invalid_row_fails_naming_chunk_file_and_row(tmp_path):
    with pytest.raises(ResultFormatError) as info:
        assemble(tmp_path, GOOD_AND_BAD, {"schema": ROW_SCHEMA})
    assert str(info.value) == "chunk 0, file 'part.csv': row 2: 'not-an-email' is not a 'email' (at $.email)"


def test_json_schema_invalid_rows_are_skipped_into_invalid_jsonl_and_counted(tmp_path):
    with collecting() as found:
        out = assemble(tmp_path, GOOD_AND_BAD, {"schema": ROW_SCHEMA, "on_invalid": "skip", "format": "csv"})
    table = pcsv.read_csv(os.path.join(out, "output.csv"),
                          convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    assert table.to_pylist() == [{"id": 1, "email": "x@y.org", "kind": "a", "score": 0.5},
                                 {"id": 4, "email": "w@y.org", "kind": "b", "score": 2.0},
                                 {"id": 8, "email": "s@y.org", "kind": None, "score": None}]
    invalid = [json.loads(line) for line in read_lines(os.path.join(out, "_invalid.jsonl"))]
    assert [(r["chunk"], r["file"], r["row"]) for r in invalid] == [(0, "part.csv", 2), (0, "part.csv", 3),
                                                                   (1, "part.jsonl", 2), (1, "part.jsonl", 3),
                                                                   (2, "part.csv", 1)]
    assert invalid[0]["record"] == {"id": "2", "email": "not-an-email", "kind": "b", "score": "1"}
    assert invalid[1]["reason"] == "'c' is not one of ['a', 'b'] (at $.kind)"
    assert invalid[2]["reason"] == "'id' is a required property"
    assert invalid[3]["reason"] == "-1.0 is less than the minimum of 0 (at $.score)"
    assert invalid[4] == {"chunk": 2, "file": "part.csv", "row": 1, "reason": "column \"id\": 'seven' is not int64",
                          "record": {"id": "seven", "email": "t@y.org"}}
    skipped = summary(found)
    assert skipped["count"] == 5
    assert skipped["records"][0]["reason"].startswith("row 2: 'not-an-email'")
    assert (skipped["records"][0]["chunk"], skipped["records"][0]["file"]) == (0, "part.csv")


def test_a_bad_json_schema_or_policy_is_a_field_error(tmp_path):
    with pytest.raises(FieldError, match="params.assembler.schema: not a valid JSON Schema"):
        assemble(tmp_path, [("a.csv", "x\n1\n")], {"schema": {"type": "object", "properties": {"x": {"type": 3}}}})
    with pytest.raises(FieldError, match="on_invalid: expected one of fail, skip"):
        assemble(tmp_path, [("a.csv", "x\n1\n")], {"on_invalid": "ignore"})


# -- Arrow schema ---------------------------------------------------------------------------

ARROW = {"fields": [{"name": "when", "type": "timestamp[us]"}, {"name": "n", "type": "int64", "nullable": False},
                    {"name": "label", "type": "string"}]}


def test_arrow_schema_casts_columns_and_keeps_only_its_fields(tmp_path):
    out = assemble(tmp_path, [("a.csv", "n,when,extra\n007,2024-01-02 03:04:05,z\n"),
                              ("a.jsonl", '{"n": 8, "when": "2024-01-03T00:00:00", "label": "x"}\n')],
                   {"schema": ARROW, "format": "csv", "output_name": "all/table.csv"})
    schema = pa.schema([("when", pa.timestamp("us")), ("n", pa.int64()), ("label", pa.string())])
    table = pcsv.read_csv(os.path.join(out, "all", "table.csv"),
                          convert_options=pcsv.ConvertOptions(column_types=schema, strings_can_be_null=True))
    want = pa.table({"when": [datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.datetime(2024, 1, 3)],
                     "n": [7, 8], "label": [None, "x"]}, schema=schema)
    assert table.equals(want)
    assert not os.path.exists(os.path.join(out, "all", "_invalid.jsonl"))


def test_arrow_schema_uncastable_value_and_null_in_a_non_nullable_column_are_invalid(tmp_path):
    contents = [("a.csv", "n,label\n1,a\nabc,b\n,c\n")]
    with pytest.raises(ResultFormatError, match=r"chunk 0, file 'a.csv': row 2: column \"n\": 'abc' is not int64"):
        assemble(tmp_path, contents, {"schema": ARROW})
    out = assemble(tmp_path, contents, {"schema": ARROW, "on_invalid": "skip", "output_name": "t.parquet"})
    assert pq.read_table(os.path.join(out, "t.parquet")).to_pylist() == [{"when": None, "n": 1, "label": "a"}]
    invalid = [json.loads(line) for line in read_lines(os.path.join(out, "_invalid.jsonl"))]
    assert [(r["row"], r["reason"]) for r in invalid] == [
        (2, "column \"n\": 'abc' is not int64"), (3, 'column "n": no value, and it is not nullable')]


def test_arrow_schema_form_is_checked(tmp_path):
    with pytest.raises(FieldError, match='params.assembler.schema.fields.0.type: no Arrow type "integer"'):
        assemble(tmp_path, [("a.csv", "n\n1\n")], {"schema": {"fields": [{"name": "n", "type": "integer"}]}})


# -- a job ----------------------------------------------------------------------------------


def csv_rows_to_jsonl(chunk_path, results_dir, params):
    """An app: a CSV chunk (with its header) as JSON Lines, numbers as numbers,
    empty fields left out."""
    import csv

    with open(chunk_path, newline="", encoding="utf-8") as f, \
            open(os.path.join(results_dir, "rows.jsonl"), "w", encoding="utf-8") as out:
        for row in csv.DictReader(f):
            record = {}
            for key, value in row.items():
                if value != "":
                    record[key] = int(value) if value.lstrip("-").isdigit() else value
            out.write(json.dumps(record) + "\n")


def rows_job(tmp_path, on_invalid: str, destination):
    lines = ["city,people,note"] + [f"c{i},{i * 10},{'' if i % 3 else 'big'}" for i in range(20)]
    lines[8] = "c7,many,"  # a row the schema refuses
    (tmp_path / "cities.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
              "required": ["city", "people"]}
    return bn.Job(source=str(tmp_path / "cities.csv"), partitioner="rows", app=csv_rows_to_jsonl,
                  assembler="schema-merge", destination=str(destination) + "/",
                  params={"partitioner": {"rows_per_chunk": 6},
                          "assembler": {"schema": schema, "on_invalid": on_invalid}})


def test_rows_to_jsonl_app_to_schema_merge_on_the_cluster(tmp_path, client):
    rows_job(tmp_path, "skip", tmp_path / "out").run(client=client)
    table = pq.read_table(tmp_path / "out" / "output.parquet")
    want = [{"city": f"c{i}", "people": i * 10, "note": None if i % 3 else "big"} for i in range(20) if i != 7]
    assert table.to_pylist() == want
    skipped = json.loads((tmp_path / "out" / "_SUCCESS").read_text())["skipped"]
    assert skipped["count"] == 1
    assert skipped["records"][0]["chunk"] == 1 and skipped["records"][0]["reason"].startswith("row 2: ")
    invalid = [json.loads(line) for line in (tmp_path / "out" / "_invalid.jsonl").read_text().splitlines()]
    assert invalid == [{"chunk": 1, "file": "rows.jsonl", "row": 2, "reason": "column \"people\": 'many' is not int64",
                        "record": {"city": "c7", "people": "many", "note": None}}]


def test_a_failed_assembly_leaves_the_destination_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "before.txt").write_text("kept")
    with pytest.raises(bn.JobFailed) as info:
        rows_job(tmp_path, "fail", out).run(scheduler="sync")
    assert "chunk 1, file 'rows.jsonl': row 2: column \"people\": 'many' is not int64" in str(info.value)
    assert sorted(os.listdir(out)) == ["before.txt"]


# -- property: the same rows as pyarrow's concatenation -------------------------------------

COLUMNS = ["a", "b", "c", "d"]
NUMBERS = st.one_of(st.none(), st.integers(-2**40, 2**40))
FLOATS = st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False, width=64))
TEXT = st.one_of(st.none(), st.text(max_size=8))


@st.composite
def tables(draw):
    """1-5 tables, each with some of the columns; a column is text in every table
    or a number (int64 or double) in every table, so pyarrow can unify them."""
    textual = {c: draw(st.booleans()) for c in COLUMNS}
    out = []
    for _ in range(draw(st.integers(1, 5))):
        names = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
        rows = draw(st.integers(0, 6))
        columns = {}
        for name in names:
            if textual[name]:
                columns[name] = pa.array(draw(st.lists(TEXT, min_size=rows, max_size=rows)), pa.string())
            elif draw(st.booleans()):
                columns[name] = pa.array(draw(st.lists(NUMBERS, min_size=rows, max_size=rows)), pa.int64())
            else:
                columns[name] = pa.array(draw(st.lists(FLOATS, min_size=rows, max_size=rows)), pa.float64())
        out.append(pa.table(columns))
    return out


@given(tables(), st.sampled_from(["parquet", "jsonl"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_tables_across_chunks_come_out_as_pyarrow_concatenates_them(tmp_path_factory, parts, fmt):
    tmp_path = tmp_path_factory.mktemp("prop")
    out = assemble(tmp_path, [("part.parquet", t) for t in parts], {"format": fmt})
    expected = pa.concat_tables(parts, promote_options="permissive")
    if fmt == "parquet":
        assert pq.read_table(os.path.join(out, "output.parquet")).equals(expected)
    else:
        lines = read_lines(os.path.join(out, "output.jsonl"))
        assert [json.loads(line) for line in lines] == expected.to_pylist()
