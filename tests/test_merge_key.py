"""The ``merge-key`` assembler: word counts end to end (in this process and on
the real cluster), every aggregation property-tested against the whole table,
Parquet in and out, and bad inputs that fail the job with the destination
untouched."""

from __future__ import annotations

import collections
import json
import math
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bytenite_nb as bn
from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers.merge_key import MergeKey
from bytenite_nb.exceptions import FieldError, JobFailed, JobValidationError

TEXT = """the quick brown fox jumps over the lazy dog
The dog barks, the fox runs; 007 and 7 are not the same word
NA null "quoted" words, commas and the end
""" * 5


def count_words(chunk_path, results_dir, params):
    """Map: the words of a chunk and how often each occurs, as CSV."""
    import csv

    text = open(chunk_path, encoding="utf-8").read()
    words = re.findall(r"[^\s,;]+", text.lower())
    with open(os.path.join(results_dir, params.get("name", "counts.csv")), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["word", "count", "first_line"])
        for word, n in collections.Counter(words).items():
            writer.writerow([word, n, text.splitlines()[0]])


def expected_counts(text: str) -> dict[str, int]:
    return dict(collections.Counter(re.findall(r"[^\s,;]+", text.lower())))


def word_job(tmp_path, text=TEXT, app_params=None, assembler_params=None):
    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    return bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app=count_words,
                  assembler="merge-key", destination=str(tmp_path / "out") + "/",
                  params={"partitioner": {"lines_per_chunk": 2}, "app": app_params or {},
                          "assembler": {"on": "word", "aggregations": {"count": "sum"}, **(assembler_params or {})}})


def read_csv_rows(path) -> list[list[str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def check_word_counts(out_file, text=TEXT):
    rows = read_csv_rows(out_file)
    assert rows[0] == ["word", "count"]
    want = expected_counts(text)
    assert {w: int(n) for w, n in rows[1:]} == want
    assert [w for w, _ in rows[1:]] == sorted(want)  # sorted by key, keys as text


def test_word_count_job_in_process(tmp_path):
    result = word_job(tmp_path).run(scheduler="sync")
    assert result.n_chunks == 8
    check_word_counts(tmp_path / "out" / "output.csv")
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_word_count_job_on_the_cluster(tmp_path, client):
    word_job(tmp_path, assembler_params={"output_name": "words/counts.csv"}).run(client=client)
    check_word_counts(tmp_path / "out" / "words" / "counts.csv")


def test_job_writes_parquet_from_csv_results(tmp_path):
    word_job(tmp_path, assembler_params={"format": "parquet",
                                         "aggregations": {"count": "sum", "first_line": "first"}}).run(scheduler="sync")
    table = pq.read_table(tmp_path / "out" / "output.parquet")
    assert table.column_names == ["word", "count", "first_line"]
    assert dict(zip(table["word"].to_pylist(), table["count"].to_pylist())) == expected_counts(TEXT)
    lines = TEXT.splitlines(True)
    chunks = ["".join(lines[i:i + 2]) for i in range(0, len(lines), 2)]  # lines_per_chunk: 2
    want = {}
    for chunk in chunks:
        for word in expected_counts(chunk):
            want.setdefault(word, chunk.splitlines()[0])
    assert dict(zip(table["word"].to_pylist(), table["first_line"].to_pylist())) == want


# -- every aggregation against the whole table ------------------------------------------------


def python_aggregate(rows: list[dict], keys: list[str], aggregations: dict[str, str]) -> list[dict]:
    """The same merge computed row by row in plain Python, over the whole table."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key in sorted(groups, key=lambda k: tuple((v is None, v if v is not None else "") for v in k)):
        members = groups[key]
        merged = dict(zip(keys, key))
        for column, how in aggregations.items():
            values = [m[column] for m in members]
            present = [v for v in values if v is not None]
            merged[column] = {
                "sum": lambda: sum(present) if present else None,
                "min": lambda: min(present) if present else None,
                "max": lambda: max(present) if present else None,
                "mean": lambda: sum(present) / len(present) if present else None,
                "count": lambda: len(present),
                "first": lambda: values[0],
                "last": lambda: values[-1],
            }[how]()
        out.append(merged)
    return out


def write_result(folder, index: int, name: str, rows: list[dict], columns: list[str], fmt: str) -> ChunkResult:
    """One chunk's result file holding ``rows``, in format ``fmt``."""
    path = os.path.join(folder, f"{index}-{name}")
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(
            [(c, pa.string() if c.startswith("k") else pa.int64()) for c in columns])), path)
    elif fmt == "jsonl":
        with open(path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    else:
        import csv

        with open(path, "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t" if fmt == "tsv" else ",")
            writer.writerow(columns)
            writer.writerows([["" if r[c] is None else r[c] for c in columns] for r in rows])
    return ChunkResult(index, (ResultFile(name, os.path.getsize(path), "file://" + path, path),))


def read_output(path: str, fmt: str) -> list[dict]:
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt == "jsonl":
        return [json.loads(line) for line in open(path)]
    import pyarrow.csv as pcsv

    return pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
                         convert_options=pcsv.ConvertOptions(column_types={"k": pa.string()})).to_pylist()


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
    return a == b


AGGREGATIONS = ["sum", "min", "max", "first", "last", "count", "mean"]

rows_strategy = st.lists(
    st.fixed_dictionaries({
        "k": st.sampled_from(["a", "b", "c", "d e", "é", "007", "7"]),
        "v": st.one_of(st.none(), st.integers(-10**6, 10**6)),
    }).map(lambda r: {"k": r["k"], **{f"v_{a}": r["v"] for a in AGGREGATIONS}}),
    min_size=1, max_size=60,
)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, cuts=st.lists(st.integers(0, 60), max_size=6),
       out_fmt=st.sampled_from(["jsonl", "parquet", "csv"]))
def test_merging_chunks_equals_aggregating_the_whole_table(tmp_path_factory, fmt, rows, cuts, out_fmt):
    folder = str(tmp_path_factory.mktemp("chunks"))
    bounds = sorted({0, len(rows), *(c for c in cuts if c < len(rows))})
    ext = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}[fmt]
    columns = list(rows[0])
    results = [write_result(folder, i, "part" + ext, rows[lo:hi], columns, fmt)
               for i, (lo, hi) in enumerate(zip(bounds, bounds[1:]))]
    # The same values under every aggregation, one column each.
    aggregations = {f"v_{a}": a for a in AGGREGATIONS}
    MergeKey().assemble(results, folder, {"on": "k", "aggregations": aggregations, "format": out_fmt})
    got = read_output(os.path.join(folder, "output." + out_fmt), out_fmt)
    want = python_aggregate(rows, ["k"], aggregations)
    assert [r["k"] for r in got] == [r["k"] for r in want]
    for g, w in zip(got, want):
        assert all(same(g[c], w[c]) for c in aggregations), (g, w)


def test_mean_is_over_all_rows_not_a_mean_of_chunk_means(tmp_path):
    rows = [[{"k": "a", "x": 1}], [{"k": "a", "x": 2}, {"k": "a", "x": 3}, {"k": "a", "x": 4}]]
    results = [write_result(str(tmp_path), i, "p.jsonl", r, ["k", "x"], "jsonl") for i, r in enumerate(rows)]
    MergeKey().assemble(results, str(tmp_path), {"on": "k", "aggregations": {"x": "mean"}})
    assert read_output(str(tmp_path / "output.jsonl"), "jsonl") == [{"k": "a", "x": 2.5}]  # not (1 + 3) / 2


def test_many_key_columns_and_first_last_in_chunk_then_row_order(tmp_path):
    rows = [[{"a": "x", "b": 2, "v": "c0r0"}, {"a": "x", "b": 1, "v": "c0r1"}],
            [{"a": "x", "b": 2, "v": "c1r0"}, {"a": "x", "b": 1, "v": None}, {"a": "x", "b": 2, "v": "c1r2"}]]
    results = [write_result(str(tmp_path), i, "p.jsonl", r, ["a", "b", "v"], "jsonl") for i, r in enumerate(rows)]
    MergeKey().assemble(results, str(tmp_path), {"on": ["a", "b"], "aggregations": {"v": "first"},
                                                 "output_name": "first.jsonl"})
    MergeKey().assemble(results, str(tmp_path), {"on": ["a", "b"], "aggregations": {"v": "last"},
                                                 "output_name": "last.jsonl"})
    assert read_output(str(tmp_path / "first.jsonl"), "jsonl") == [{"a": "x", "b": 1, "v": "c0r1"},
                                                                  {"a": "x", "b": 2, "v": "c0r0"}]
    assert read_output(str(tmp_path / "last.jsonl"), "jsonl") == [{"a": "x", "b": 1, "v": None},
                                                                 {"a": "x", "b": 2, "v": "c1r2"}]


def test_empty_and_filtered_results(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "log.txt").write_text("not a table")
    results = [ChunkResult(0, (ResultFile("part.csv", 0, "file://x", str(tmp_path / "empty.csv")),
                               ResultFile("log.txt", 11, "file://y", str(tmp_path / "log.txt")))),
               write_result(str(tmp_path), 1, "part.csv", [{"k": "a", "x": 1}], ["k", "x"], "csv")]
    with pytest.raises(FieldError, match=r"params.assembler.input_format: chunk 0 \(log.txt\)"):
        MergeKey().assemble(results, str(tmp_path), {"on": "k", "aggregations": {"x": "sum"}})
    MergeKey().assemble(results, str(tmp_path), {"on": "k", "aggregations": {"x": "sum"}, "pattern": "*.csv",
                                                 "format": "tsv"})
    assert (tmp_path / "output.tsv").read_text() == '"k"\t"x"\n"a"\t1\n'
    # No result file at all: the header alone.
    MergeKey().assemble([ChunkResult(0, ())], str(tmp_path), {"on": ["k", "j"], "aggregations": {"x": "sum"},
                                                              "output_name": "none.csv"})
    assert (tmp_path / "none.csv").read_text() == '"k","j","x"\n'


# -- bad inputs ------------------------------------------------------------------------------


def failing_job(tmp_path, rows_by_chunk: dict[str, str], name="part.csv", **assembler):
    """A job whose app writes, for chunk i, the text ``rows_by_chunk[str(i)]`` as ``name``."""
    (tmp_path / "in.txt").write_text("".join(f"{i}\n" for i in range(len(rows_by_chunk))))
    out = tmp_path / "out"
    out.mkdir()
    (out / "before.txt").write_text("kept")
    job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app=write_table_app,
                 assembler="merge-key", destination=str(out) + "/",
                 params={"partitioner": {"lines_per_chunk": 1}, "app": {"tables": rows_by_chunk, "name": name},
                         "assembler": {"on": "word", "aggregations": {"count": "sum"}, **assembler}})
    return job, out


def write_table_app(chunk_path, results_dir, params):
    """Writes ``params["tables"][n]`` as ``params["name"]``, where ``n`` is the chunk's content."""
    n = open(chunk_path).read().strip()
    with open(os.path.join(results_dir, params["name"]), "w") as f:
        f.write(params["tables"][n])


GOOD = "word,count\nto,1\n"
FIRST_JSON = '{"word": "to", "count": 1, "tag": "x"}\n'


@pytest.mark.parametrize("tables, name, assembler, message", [
    pytest.param({"0": GOOD, "1": GOOD, "2": GOOD, "3": "term,count\nbe,2\n"}, "part.csv", {},
                  'chunk 3 (part.csv): no column "word"', id="missing-key-column"),
    pytest.param({"0": GOOD, "1": "word,n\nbe,2\n"}, "part.csv", {},
                  'params.assembler.aggregations.count: no column "count" in chunk 1 (part.csv)',
                  id="missing-aggregated-column"),
    pytest.param({"0": GOOD, "1": 'word,count\nto,1\n"multi\nline",2\nbe,3,extra\n'}, "part.csv", {},
                  "chunk 1 (part.csv), line 5: expected 2 columns, got 3", id="ragged-csv"),
    pytest.param({"0": GOOD, "1": "word,count\nbe,many\n"}, "part.csv", {},
                  'chunk 1 (part.csv): column "count" holds string, sum needs numbers', id="text-summed"),
    pytest.param({"0": FIRST_JSON, "1": FIRST_JSON, "2": '{"word": "be", "count": 2, "tag": 5}\n'}, "part.jsonl",
                  {"aggregations": {"count": "sum", "tag": "first"}},
                  'chunk 2 (part.jsonl): column "tag" holds int64, earlier results string', id="types-clash"),
    pytest.param({"0": '{"word": "to", "count": 1}\n{"word": "be"\n'}, "part.jsonl", {},
                  "chunk 0 (part.jsonl), line 2: not valid JSON", id="invalid-json-lines"),
    pytest.param({"0": GOOD}, "part.csv", {"aggregations": {"word": "count"}},
                  'params.assembler.aggregations.word: "word" is a key column', id="key-aggregated"),
])
def test_bad_results_fail_the_job_and_leave_the_destination_untouched(tmp_path, tables, name, assembler, message):
    job, out = failing_job(tmp_path, tables, name=name, **assembler)
    with pytest.raises(JobFailed) as info:
        job.run(scheduler="sync")
    assert message in str(info.value)
    assert sorted(os.listdir(out)) == ["before.txt"]  # no output, no _SUCCESS


@pytest.mark.parametrize("params, field", [
    ({"on": "word", "aggregations": {"count": "median"}}, "params.assembler.aggregations.count"),
    ({"aggregations": {"count": "sum"}}, "params.assembler.on"),
    ({"on": [], "aggregations": {}}, "params.assembler.on"),
    ({"on": "word", "format": "xlsx"}, "params.assembler.format"),
    ({"on": "word", "sort": True}, "params.assembler.sort"),
])
def test_bad_params_are_schema_errors(tmp_path, params, field):
    (tmp_path / "in.txt").write_text("x\n")
    job = bn.Job(source=str(tmp_path / "in.txt"), app=count_words, assembler="merge-key",
                 destination=str(tmp_path / "out") + "/", params={"assembler": params})
    with pytest.raises(JobValidationError) as info:
        job.validate(check_storage=False)
    assert field in info.value.fields
    if "median" in str(params):
        assert '"median"' in str(info.value) and '"mean"' in str(info.value)
