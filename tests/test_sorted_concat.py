"""The ``sorted-concat`` assembler: a streaming k-way merge of sorted results.

End to end as a job (synchronous and on the cluster), property tests on
generated tables (quoted fields with delimiters, quotes and newlines, unicode,
empty fields) split into random chunks, and bad inputs: each error names the
chunk, the file and the row, and the destination stays untouched.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bytenite_nb as bn
from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers import sorted_concat
from bytenite_nb.assemblers.sorted_concat import SortedConcat
from bytenite_nb.exceptions import JobFailed, ResultFormatError
from tests.helpers import crc32c

HEADER = ["name", "score", "note"]


def sort_rows_app(chunk_path, results_dir, params):
    """Sorts the chunk's ``name,score`` lines by score and writes them as CSV with a header."""
    with open(chunk_path) as f:
        rows = [line.rstrip("\n").split(",") + [f"line {i}"] for i, line in enumerate(f)]
    rows.sort(key=lambda r: int(r[1]))
    if any(r[0] == params.get("unsorted_in") for r in rows):
        rows.reverse()
    renamed = any(r[0] == params.get("renamed_in") for r in rows)
    with open(os.path.join(results_dir, "part.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "points", "note"] if renamed else HEADER)
        writer.writerows(rows)


def score_source(path, count=60, seed=3):
    rng = random.Random(seed)
    lines = [f"n{i},{rng.randint(-5, 5)}" for i in range(count)]
    path.write_text("".join(line + "\n" for line in lines))
    return lines


def csv_bytes(rows, lineterminator="\r\n", delimiter=",") -> bytes:
    """``rows`` as CSV. Ending lines with \\n alone, csv leaves a \\r in a field
    unquoted (a file no reader can read back): every field is quoted then."""
    out = io.StringIO()
    quoting = csv.QUOTE_MINIMAL if lineterminator == "\r\n" else csv.QUOTE_ALL
    csv.writer(out, lineterminator=lineterminator, delimiter=delimiter, quoting=quoting).writerows(rows)
    return out.getvalue().encode()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


class Staged:
    """Results written by hand into a folder, for calling the assembler directly."""

    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    def result(self, index: int, files: dict[str, bytes]) -> ChunkResult:
        out = []
        for name, data in files.items():
            self.count += 1
            path = os.path.join(self.folder, "staged", str(self.count), name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            out.append(ResultFile(name=name, size=len(data), url="file://" + path, local_path=path))
        return ChunkResult(index=index, files=tuple(out))

    def assemble(self, chunks: list[dict[str, bytes]], params: dict, name: str = "output.csv",
                 block: int | None = None) -> bytes:
        """The output of the assembler on results holding ``chunks``; ``block``: bytes
        read at a time (tiny blocks cut records, quoted ones too, everywhere)."""
        results = [self.result(i, files) for i, files in enumerate(chunks)]
        out = os.path.join(self.folder, f"out{self.count}")
        os.makedirs(out)
        default_block = sorted_concat.BLOCK
        sorted_concat.BLOCK = block or default_block
        try:
            checksums = SortedConcat().assemble(results, out, params)
        finally:
            sorted_concat.BLOCK = default_block
        with open(os.path.join(out, name), "rb") as f:
            data = f.read()
        if checksums:  # the checksum given is the output's
            assert checksums == {name: crc32c(data)}
        assert os.listdir(out) == [name]  # nothing spilled into the output folder
        assert not [n for n in os.listdir(self.folder) if n.startswith("sorted-concat-spill-")]  # nor left
        return data


@pytest.fixture
def staged(tmp_path):
    return Staged(str(tmp_path))


def split(rows: list, cuts: list[int]) -> list[list]:
    """``rows`` cut at the positions ``cuts`` (sorted, deduplicated)."""
    bounds = [0, *sorted({c % (len(rows) + 1) for c in cuts}), len(rows)]
    return [rows[a:b] for a, b in zip(bounds, bounds[1:])]


# -- end to end ----------------------------------------------------------------------------


def job(tmp_path, out, by="score", **app_params):
    return bn.Job(source=str(tmp_path / "scores.txt"), partitioner="split-lines", app=sort_rows_app,
                  assembler="sorted-concat", destination=str(out) + "/",
                  params={"partitioner": {"lines_per_chunk": 7}, "app": app_params,
                          "assembler": {"by": by, "output_name": "scores.csv"}},
                  config={"maxTaskRetries": 0})


def expected_scores(lines: list[str]) -> bytes:
    rows = [line.split(",") for line in lines]
    rows = [r + [f"line {i % 7}"] for i, r in enumerate(rows)]
    return csv_bytes([HEADER, *sorted(rows, key=lambda r: int(r[1]))])


def check_job_output(out, result, lines):
    data = (out / "scores.csv").read_bytes()
    assert data == expected_scores(lines)
    assert data.count(b"name,score,note") == 1
    manifest = json.loads((out / "_SUCCESS").read_text())
    assert [(f["name"], f["size"], f["crc32c"]) for f in manifest["files"]] == [
        ("scores.csv", len(data), crc32c(data))]
    assert result.n_chunks == 9


def test_job_merges_sorted_chunk_results(tmp_path):
    lines = score_source(tmp_path / "scores.txt")
    out = tmp_path / "out"
    result = job(tmp_path, out).run(scheduler="sync")
    check_job_output(out, result, lines)


def test_job_on_the_cluster(tmp_path, client):
    lines = score_source(tmp_path / "scores.txt")
    out = tmp_path / "out"
    result = job(tmp_path, out).run(client=client)
    check_job_output(out, result, lines)


@pytest.mark.parametrize("bad, says", [
    ({"unsorted_in": "n7"}, ["chunk 1, file 'part.csv': row ", "is out of order", "sort_chunks"]),
    ({"renamed_in": "n7"}, ["chunk 1, file 'part.csv': its header (name, points, note) differs from the header "
                            "of chunk 0, file 'part.csv', (name, score, note)"]),
    ({"by": ["score", "rank"]}, ["chunk 0, file 'part.csv': no column 'rank' in its header (name, score, note)"]),
])
def test_a_job_with_bad_results_fails_and_leaves_the_destination_untouched(tmp_path, bad, says):
    score_source(tmp_path / "scores.txt")  # chunk 1 holds lines 7 to 13: n7 to n13
    out = tmp_path / "out"
    out.mkdir()
    (out / "before.txt").write_text("kept")
    with pytest.raises(JobFailed) as failure:
        job(tmp_path, out, **bad).run(scheduler="sync")
    text = str(failure.value)
    for needle in says:
        assert needle in text, text
    assert sorted(os.listdir(out)) == ["before.txt"]


# -- property tests: CSV and TSV -------------------------------------------------------------------

# Text with what makes CSV hard: delimiters, quotes, line breaks, unicode, empty fields.
field_text = st.text(alphabet=st.sampled_from(list('ab,"\n\r\t é€😀 ;')) | st.characters(blacklist_categories=("Cs",),
                                                                                        blacklist_characters="\x00"),
                     max_size=8)
csv_row = st.tuples(field_text, st.integers(-20, 20), field_text)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def as_text_rows(rows):
    return [[a, str(n), b] for a, n, b in rows]


def key_function(by, numeric=("score",)):
    index = {"name": 0, "score": 1, "note": 2}
    return lambda r: tuple(int(r[index[c]]) if c in numeric else r[index[c]] for c in by)


@PROPERTY
@given(rows=st.lists(csv_row, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=6),
       by=st.sampled_from([["name"], ["score"], ["score", "name"], ["note", "score"]]),
       descending=st.booleans(), terminator=st.sampled_from(["\r\n", "\n"]), delimiter=st.sampled_from([",", "\t"]),
       block=st.sampled_from([1, 7, 50, None]))
def test_merge_equals_the_stable_sort_of_everything(staged, rows, cuts, by, descending, terminator, delimiter, block):
    rows = as_text_rows(rows)
    key = key_function(by)
    chunks = [sorted(c, key=key, reverse=descending) for c in split(rows, cuts)]
    ext = "csv" if delimiter == "," else "tsv"
    files = [{f"part.{ext}": csv_bytes([HEADER, *c], terminator, delimiter)} for c in chunks]
    params = {"by": by if len(by) > 1 else by[0], "descending": descending,
              "types": {"name": "string", "note": "string"}}
    data = staged.assemble(files, params, f"output.{ext}", block)
    everything = [r for c in chunks for r in c]
    assert data == csv_bytes([HEADER, *sorted(everything, key=key, reverse=descending)], terminator, delimiter)


@PROPERTY
@given(rows=st.lists(csv_row, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=6),
       by=st.sampled_from([["name"], ["score", "note"]]), descending=st.booleans(),
       sort_buffer=st.sampled_from([1, 40, 2**20]), block=st.sampled_from([3, 30, None]))
def test_sort_chunks_sorts_unsorted_results(staged, rows, cuts, by, descending, sort_buffer, block):
    rows = as_text_rows(rows)
    key = key_function(by)
    chunks = split(rows, cuts)
    files = [{"part.csv": csv_bytes([HEADER, *c])} for c in chunks]
    params = {"by": by, "descending": descending, "sort_chunks": True, "sort_buffer": sort_buffer,
              "types": {"name": "string", "note": "string"}}
    data = staged.assemble(files, params, block=block)
    assert data == csv_bytes([HEADER, *sorted(rows, key=key, reverse=descending)])


def test_external_sort_spills_runs_and_merges_them(staged, monkeypatch):
    rng = random.Random(5)
    rows = [[f"k{rng.randint(0, 50)}", str(rng.randint(-100, 100)), "x" * rng.randint(0, 30)] for _ in range(3000)]
    files = [{"part.csv": csv_bytes([HEADER, *rows[i:i + 1000]])} for i in range(0, 3000, 1000)]
    spilled = []
    spill_run = sorted_concat._TextMerge.spill_run
    monkeypatch.setattr(sorted_concat._TextMerge, "spill_run",
                        lambda self, pieces, source: spilled.append(sum(len(k) for k, _ in pieces))
                        or spill_run(self, pieces, source))
    monkeypatch.setattr(sorted_concat, "MERGE_FAN_IN", 4)  # 3 results in ~30 runs: merged in groups first
    data = staged.assemble(files, {"by": ["score"], "sort_chunks": True, "sort_buffer": 2000}, block=500)
    assert data == csv_bytes([HEADER, *sorted(rows, key=lambda r: int(r[1]))])
    assert len(spilled) > 20 and sum(spilled) == 3000 and max(spilled) < 200


@pytest.mark.parametrize("sort_chunks", [False, True])
def test_memory_is_bounded_by_blocks_not_by_results(staged, sort_chunks, monkeypatch):
    """8 results of 1 MiB merged (or sorted in runs of 128 KiB, then merged 8 at a
    time) with blocks of 16 KiB: what Python allocates at its peak is a small
    part of the input."""
    import tracemalloc

    rng = random.Random(11)
    chunks = []
    for c in range(8):
        rows = [[f"w{rng.randint(0, 10**6)}", str(rng.randint(0, 10**9)), "x" * 60] for _ in range(13000)]
        if not sort_chunks:
            rows.sort(key=lambda r: int(r[1]))
        chunks.append({"part.csv": csv_bytes([HEADER, *rows])})
    total = sum(len(c["part.csv"]) for c in chunks)
    assert total > 7.5 * 2**20
    params = {"by": "score", "sort_chunks": sort_chunks, "sort_buffer": 128 * 2**10}
    results = [staged.result(i, files) for i, files in enumerate(chunks)]
    del chunks
    out = os.path.join(staged.folder, "out")
    os.makedirs(out)
    staged.assemble([{"part.csv": b"score\n1\n"}], params)  # imports done before measuring
    monkeypatch.setattr(sorted_concat, "BLOCK", 16 * 2**10)
    # Sorted in 64 runs: a block of each would be in memory if merged at once; 8 at a time
    monkeypatch.setattr(sorted_concat, "MERGE_FAN_IN", 8)
    tracemalloc.start()
    try:
        SortedConcat().assemble(results, out, params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert os.path.getsize(os.path.join(out, "output.csv")) == total - 7 * len(b"name,score,note\r\n")
    assert peak < total / 4, f"peak {peak} bytes for {total} bytes of results"


def test_many_results_are_merged_in_groups(staged, monkeypatch):
    monkeypatch.setattr(sorted_concat, "MERGE_FAN_IN", 3)
    rng = random.Random(9)
    chunks = [sorted([[f"r{c}-{i}", str(rng.randint(0, 9)), ""] for i in range(5)], key=lambda r: int(r[1]))
              for c in range(10)]
    data = staged.assemble([{"part.csv": csv_bytes([HEADER, *c])} for c in chunks], {"by": "score"})
    everything = [r for c in chunks for r in c]
    assert data == csv_bytes([HEADER, *sorted(everything, key=lambda r: int(r[1]))])


def test_numbers_compare_as_numbers_and_text_as_text(staged):
    chunks = [[["a", "9", ""], ["b", "10", ""]], [["c", "-1.5", ""], ["d", "1e3", ""]]]
    files = [{"part.csv": csv_bytes([HEADER, *c])} for c in chunks]
    numeric = staged.assemble(files, {"by": "score"})
    assert [r[1] for r in csv_rows(numeric)[1:]] == ["-1.5", "9", "10", "1e3"]
    text_chunks = [[["a", "10", ""], ["b", "9", ""]], [["c", "-1.5", ""], ["d", "1e3", ""]]]
    files = [{"part.csv": csv_bytes([HEADER, *c])} for c in text_chunks]
    text = staged.assemble(files, {"by": "score", "types": {"score": "string"}})
    assert [r[1] for r in csv_rows(text)[1:]] == ["-1.5", "10", "1e3", "9"]


def test_empty_values_sort_first_and_big_integers_stay_exact(staged):
    big = 2**70
    chunks = [[["a", "", ""], ["b", str(big), ""]], [["c", "3", ""], ["d", str(big + 1), ""]]]
    files = [{"part.csv": csv_bytes([HEADER, *c])} for c in chunks]
    data = staged.assemble(files, {"by": "score"})
    assert [r[0] for r in csv_rows(data)[1:]] == ["a", "c", "b", "d"]


def test_empty_results_and_a_missing_final_newline(staged):
    files = [{"part.csv": b""}, {"part.csv": b"name,score,note\na,1,x"}, {"part.csv": b"name,score,note\n"},
             {"part.csv": b"name,score,note\nb,0,y\n"}]
    assert staged.assemble(files, {"by": "score"}) == b"name,score,note\nb,0,y\na,1,x\n"
    assert staged.assemble([{"part.csv": b""}], {"by": "score"}) == b""


def test_pattern_chooses_the_result_files(staged):
    files = [{"a.csv": b"k\n2\n", "log.txt": b"not a table"}, {"a.csv": b"k\n1\n3\n"}]
    assert staged.assemble(files, {"by": "k", "pattern": "*.csv", "output_name": "all.csv"}, "all.csv") == \
        b"k\n1\n2\n3\n"


# -- JSON Lines and Parquet -----------------------------------------------------------------------


json_row = st.fixed_dictionaries({"name": field_text, "n": st.one_of(st.none(), st.integers(-5, 5)),
                                  "nested": st.lists(st.integers(), max_size=2)})


@PROPERTY
@given(rows=st.lists(json_row, max_size=30), cuts=st.lists(st.integers(0, 30), max_size=5),
       by=st.sampled_from([["name"], ["n", "name"]]), descending=st.booleans(), sort_chunks=st.booleans(),
       block=st.sampled_from([5, None]))
def test_json_lines(staged, rows, cuts, by, descending, sort_chunks, block):
    def key(r):
        return tuple((float("-inf") if r[c] is None else r[c]) for c in by)

    chunks = [c if sort_chunks else sorted(c, key=key, reverse=descending) for c in split(rows, cuts)]
    files = [{"part.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in c).encode()} for c in chunks]
    params = {"by": by, "descending": descending, "sort_chunks": sort_chunks, "sort_buffer": 100,
              "types": {"n": "number", "name": "string"}}
    data = staged.assemble(files, params, "output.jsonl", block)
    everything = [r for c in chunks for r in c]
    assert [json.loads(line) for line in data.decode().split("\n")[:-1]] == sorted(everything, key=key,
                                                                                reverse=descending)


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("name", pa.string()), ("n", pa.int64()), ("x", pa.float64())])
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    return sink.getvalue()


def parquet_rows(data: bytes) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pylist()


parquet_row = st.fixed_dictionaries({"name": st.one_of(st.none(), field_text),
                                     "n": st.one_of(st.none(), st.integers(-5, 5)),
                                     "x": st.floats(allow_nan=False)})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(parquet_row, max_size=30), cuts=st.lists(st.integers(0, 30), max_size=4),
       by=st.sampled_from([["n"], ["name", "n"]]), descending=st.booleans(), sort_chunks=st.booleans())
def test_parquet(staged, rows, cuts, by, descending, sort_chunks, monkeypatch):
    monkeypatch.setattr(sorted_concat, "PARQUET_BATCH", 4)  # several batches per result

    def key(r):
        return tuple((r[c] is not None, r[c]) for c in by)

    chunks = [c if sort_chunks else sorted(c, key=key, reverse=descending) for c in split(rows, cuts)]
    files = [{"part.parquet": parquet_bytes(c)} for c in chunks]
    params = {"by": by, "descending": descending, "sort_chunks": sort_chunks, "sort_buffer": 64}
    data = staged.assemble(files, params, "output.parquet")
    everything = [r for c in chunks for r in c]
    assert parquet_rows(data) == sorted(everything, key=key, reverse=descending)


# -- bad inputs ----------------------------------------------------------------------------------


def fails(staged, files, params, *needles):
    with pytest.raises(ResultFormatError) as error:
        staged.assemble(files, params)
    for needle in needles:
        assert needle in str(error.value), str(error.value)
    return str(error.value)


def test_an_unsorted_result_is_named_with_its_row(staged):
    files = [{"part.csv": b"k,v\n1,a\n2,b\n"}, {"part.csv": b"k,v\n1,a\n3,b\n2,c\n"}]
    fails(staged, files, {"by": "k"}, "chunk 1, file 'part.csv': row 3 is out of order", "its key 2 comes after 3",
          "not sorted ascending by k")
    fails(staged, files[:1], {"by": "k", "descending": True}, "chunk 0, file 'part.csv': row 2 is out of order")
    files = [{"part.jsonl": b'{"k": "b"}\n{"k": "a"}\n'}]
    fails(staged, files, {"by": "k"}, "chunk 0, file 'part.jsonl': row 2 is out of order", "'a' comes after 'b'")
    files = [{"part.parquet": parquet_bytes([{"name": "a", "n": 2, "x": 0.0}, {"name": "b", "n": 1, "x": 0.0}])}]
    fails(staged, files, {"by": "n"}, "chunk 0, file 'part.parquet': row 2 is out of order")


def test_a_different_header_is_named(staged):
    files = [{"part.csv": b"k,v\n1,a\n"}, {"part.csv": b"k,v\n2,a\n"}, {"part.csv": b"k,w\n3,a\n"}]
    fails(staged, files, {"by": "k"}, "chunk 2, file 'part.csv': its header (k, w) differs from the header of "
                                      "chunk 0, file 'part.csv', (k, v)")
    schema_a = parquet_bytes([{"name": "a", "n": 1, "x": 0.0}])
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"name": ["b"], "n": [1.5]}), sink)
    fails(staged, [{"p.parquet": schema_a}, {"p.parquet": sink.getvalue()}], {"by": "n"},
          "chunk 1, file 'p.parquet': its schema (name: string, n: double) differs")


def test_a_missing_by_column_is_named(staged):
    fails(staged, [{"part.csv": b"k,v\n1,a\n"}], {"by": ["k", "nope"]},
          "chunk 0, file 'part.csv': no column 'nope' in its header (k, v)")
    fails(staged, [{"part.jsonl": b'{"k": 1}\n{"j": 2}\n'}], {"by": "k"}, "chunk 0, file 'part.jsonl': row 2 has no 'k'")
    fails(staged, [{"p.parquet": parquet_bytes([])}], {"by": "zz"}, "chunk 0, file 'p.parquet': no column 'zz'")
    fails(staged, [{"part.csv": b"k,v\n1,a\n2\n"}], {"by": "v"},
          "chunk 0, file 'part.csv': row 2 has 1 fields, fewer than the header says")


def test_text_in_a_number_column_is_named(staged):
    files = [{"part.csv": b"k\n1\n2\n"}, {"part.csv": b"k\n3\nfour\n"}]
    fails(staged, files, {"by": "k"}, "chunk 1, file 'part.csv': row 2: {'k': 'four'} cannot be compared",
          "k as numbers", "set `types`")
    assert staged.assemble(files, {"by": "k", "types": {"k": "string"}, "sort_chunks": True}) == \
        b"k\n1\n2\n3\nfour\n"


def test_broken_files_are_named(staged):
    fails(staged, [{"part.csv": b'k,v\n1,"open\n2,b\n'}], {"by": "k"},
          "chunk 0, file 'part.csv'", "ends inside a quoted field")
    fails(staged, [{"part.jsonl": b'{"k": 1}\n{"k": 2\n'}], {"by": "k"}, "chunk 0, file 'part.jsonl': row 2: cannot read")
    fails(staged, [{"a.csv": b"k\n1\n"}, {"a.tsv": b"k\n1\n"}], {"by": "k"}, "chunk 1, file 'a.tsv': a tsv result")
    fails(staged, [{"a.txt": b"k\n1\n"}], {"by": "k"}, "chunk 0, file 'a.txt': no table format")


def test_the_schema_refuses_unknown_params_and_requires_by():
    from bytenite_nb.schema import check

    assert [e.field for e in check({}, SortedConcat.schema, "p")] == ["p.by"]
    assert check({"by": "k", "sort": True}, SortedConcat.schema, "p")
    assert check({"by": "k", "types": {"k": "date"}}, SortedConcat.schema, "p")
    assert not check({"by": ["k", "v"], "descending": True, "sort_chunks": True, "types": {"k": "number"},
                      "output_name": "o.csv", "sort_buffer": 10}, SortedConcat.schema, "p")
