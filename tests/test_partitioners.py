"""The built-in partitioners: passthrough, replicate, files, split-lines.

Plans are made through ``Job.plan`` (the same path a user takes) on the
synchronous scheduler; whole jobs run where running them is what proves the
point (what the app actually received). The split-lines invariants - chunks
end on line ends, never overlap, cover every byte - are checked with
hypothesis, and one pipeline example runs on the real cluster.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import zipfile

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractBufferedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bytenite_nb as bn
from bytenite_nb.exceptions import JobValidationError
from bytenite_nb.partitioners import split_lines
from bytenite_nb.partitioners.base import Source
from bytenite_nb.partitioners.split_lines import SplitLines, split_by_lines, split_by_size
from bytenite_nb.storage import FileInfo, Location, list_source


def make_job(source, partitioner, out, params=None, app="identity", assembler="concat", **kwargs):
    return bn.Job(source=str(source), partitioner=partitioner, app=app, assembler=assembler,
                  destination=str(out) + "/", params={"partitioner": params or {}}, **kwargs)


def plan(source, partitioner, params=None, *, tmp):
    """The chunk references of a job over ``source`` (its destination: a fresh folder under ``tmp``)."""
    return make_job(source, partitioner, tempfile.mkdtemp(dir=tmp), params).plan(scheduler="sync")


def chunk_bytes(ref) -> bytes:
    """What a byte-range chunk holds, read straight from its file."""
    with fsspec.open(ref.url, "rb") as f:
        f.seek(ref.start)
        return f.read() if ref.end is None else f.read(ref.end - ref.start)


def record_chunk(chunk_path, results_dir, params):
    """An app that writes down what its chunk was: raw bytes, or the members of a zip."""
    with open(chunk_path, "rb") as f:
        data = f.read()
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(chunk_path) as zf:
            seen = {n: zf.read(n).decode() for n in zf.namelist()}
        out = {"zip": seen}
    else:
        out = {"bytes": data.decode("latin-1")}
    with open(os.path.join(results_dir, "seen.json"), "w") as f:
        json.dump(out, f)


def seen_by_chunk(out_dir) -> list[dict]:
    """The seen.json of every chunk, in chunk order (passthrough assembler output)."""
    folders = sorted(d for d in os.listdir(out_dir) if d.startswith("chunk_"))
    return [json.load(open(os.path.join(out_dir, d, "seen.json"))) for d in folders]


# Writes "<CHUNK_NUMBER>:<chunk bytes>" as the chunk's result: the runtime contract seen from outside.
NUMBER_AND_DATA = {"command": [sys.executable, "-c", (
    "import os\n"
    "data = open(os.path.join(os.environ['TASK_DIR'], 'data.bin')).read()\n"
    "open(os.path.join(os.environ['TASK_RESULTS_DIR'], 'r.txt'), 'w')"
    ".write(os.environ['CHUNK_NUMBER'] + ':' + data + '|')\n")]}


# -- passthrough ----------------------------------------------------------------------


def test_passthrough_one_file_is_one_whole_chunk(tmp_path):
    src = tmp_path / "one.txt"
    src.write_bytes(b"alpha\nbeta\n")
    (ref,) = plan(src, "passthrough", tmp=tmp_path)
    assert ref.index == 0
    assert ref.url == "file://" + str(src)
    assert (ref.start, ref.end, ref.size) == (0, None, 11)
    assert ref.members == ()
    assert chunk_bytes(ref) == b"alpha\nbeta\n"


def test_passthrough_several_files_become_one_zip_chunk(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("A")
    (data / "b.txt").write_text("BB")
    (data / "sub" / "c.txt").write_text("CCC")
    (ref,) = plan(str(data) + "/", "passthrough", tmp=tmp_path)
    assert ref.names == ("a.txt", "b.txt", "sub/c.txt")
    assert ref.size == 6
    # The app gets one archive holding every file under its name relative to the source.
    out = tmp_path / "out"
    job = make_job(str(data) + "/", "passthrough", out, app=record_chunk, assembler="passthrough")
    result = job.run(scheduler="sync")
    assert result.n_chunks == 1
    assert seen_by_chunk(out) == [{"zip": {"a.txt": "A", "b.txt": "BB", "sub/c.txt": "CCC"}}]


def test_passthrough_glob_names_members_relative_to_the_glob_root(tmp_path):
    for name in ("x1.csv", "x2.csv", "notes.md"):
        (tmp_path / name).write_text(name)
    (ref,) = plan(tmp_path / "x*.csv", "passthrough", tmp=tmp_path)
    assert ref.names == ("x1.csv", "x2.csv")
    assert [m.rsplit("/", 1)[-1] for m in ref.members] == ["x1.csv", "x2.csv"]


def test_passthrough_bypass_source_is_one_empty_chunk(tmp_path):
    bypass = {"dataSourceDescriptor": "bypass"}
    job = bn.Job(source=bypass, partitioner="passthrough", app=record_chunk, assembler="passthrough",
                 destination=str(tmp_path / "out") + "/")
    (ref,) = job.plan(scheduler="sync")
    assert (ref.url, ref.members, ref.size) == (None, (), 0)
    job.run(scheduler="sync")
    assert seen_by_chunk(tmp_path / "out") == [{"bytes": ""}]


# -- replicate ------------------------------------------------------------------------


def test_replicate_gives_every_replica_the_same_data_and_its_own_number(tmp_path):
    src = tmp_path / "seed.txt"
    src.write_text("seed")
    out = tmp_path / "out"
    job = make_job(src, "replicate", out, {"num_replicas": 3}, app=NUMBER_AND_DATA)
    refs = job.plan(scheduler="sync")
    assert [r.index for r in refs] == [0, 1, 2]
    assert [r.meta["replica"] for r in refs] == [0, 1, 2]
    assert {(r.url, r.start, r.end) for r in refs} == {("file://" + str(src), 0, None)}
    job.run(scheduler="sync")
    assert (out / "output.txt").read_text() == "0:seed|1:seed|2:seed|"


def test_replicate_default_is_two_replicas(tmp_path):
    src = tmp_path / "seed.txt"
    src.write_text("x")
    assert len(plan(src, "replicate", tmp=tmp_path)) == 2


def test_replicate_fans_a_bypass_source_out(tmp_path):
    out = tmp_path / "out"
    job = bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="replicate", app=NUMBER_AND_DATA,
                 assembler="concat", destination=str(out) + "/", params={"partitioner": {"num_replicas": 4}})
    refs = job.plan(scheduler="sync")
    assert [(r.url, r.size) for r in refs] == [(None, 0)] * 4
    job.run(scheduler="sync")
    assert (out / "output.txt").read_text() == "0:|1:|2:|3:|"


@pytest.mark.parametrize("value, message", [
    (0, "params.partitioner.num_replicas: must be >= 1, got 0"),
    ("3", 'params.partitioner.num_replicas: expected integer, got "3"'),
])
def test_replicate_rejects_bad_num_replicas(tmp_path, value, message):
    src = tmp_path / "seed.txt"
    src.write_text("x")
    with pytest.raises(JobValidationError) as info:
        make_job(src, "replicate", tmp_path / "out", {"num_replicas": value}).validate()
    assert message in str(info.value)
    assert info.value.fields == ["params.partitioner.num_replicas"]


# -- files ----------------------------------------------------------------------------


@pytest.fixture
def five_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        (data / f"f{i}.txt").write_text(f"file {i}\n")
    return data


def test_files_one_chunk_per_file(tmp_path, five_files):
    refs = plan(str(five_files) + "/", "files", tmp=tmp_path)
    assert [r.label for r in refs] == [f"f{i}.txt" for i in range(5)]
    assert [chunk_bytes(r) for r in refs] == [f"file {i}\n".encode() for i in range(5)]
    assert all(r.members == () for r in refs)


def test_files_per_chunk_bundles_files_as_zip_members(tmp_path, five_files):
    refs = plan(str(five_files) + "/", "files", {"files_per_chunk": 2}, tmp=tmp_path)
    assert [r.names for r in refs] == [("f0.txt", "f1.txt"), ("f2.txt", "f3.txt"), ()]
    assert refs[2].label == "f4.txt" and refs[2].url.endswith("/f4.txt")  # a lone file stays a file
    out = tmp_path / "out"
    make_job(str(five_files) + "/", "files", out, {"files_per_chunk": 2}, app=record_chunk,
             assembler="passthrough").run(scheduler="sync")
    assert seen_by_chunk(out) == [
        {"zip": {"f0.txt": "file 0\n", "f1.txt": "file 1\n"}},
        {"zip": {"f2.txt": "file 2\n", "f3.txt": "file 3\n"}},
        {"bytes": "file 4\n"},
    ]


def test_files_pattern_keeps_matching_names_also_in_subfolders(tmp_path):
    data = tmp_path / "data"
    (data / "deep").mkdir(parents=True)
    (data / "a.csv").write_text("a")
    (data / "b.json").write_text("b")
    (data / "deep" / "c.csv").write_text("c")
    refs = plan(str(data) + "/", "files", {"pattern": "*.csv"}, tmp=tmp_path)
    assert [r.label for r in refs] == ["a.csv", "deep/c.csv"]


def test_files_pattern_matching_nothing_gives_no_chunks(tmp_path, five_files):
    assert plan(str(five_files) + "/", "files", {"pattern": "*.parquet"}, tmp=tmp_path) == []


@pytest.mark.parametrize("params, field", [
    ({"files_per_chunk": 0}, "params.partitioner.files_per_chunk"),
    ({"files_per_chunk": 1.5}, "params.partitioner.files_per_chunk"),
    ({"pattern": 7}, "params.partitioner.pattern"),
    ({"files_per_chunks": 2}, "params.partitioner.files_per_chunks"),
])
def test_files_rejects_bad_params(tmp_path, five_files, params, field):
    with pytest.raises(JobValidationError) as info:
        make_job(str(five_files) + "/", "files", tmp_path / "out", params).validate()
    assert info.value.fields == [field]
    if "files_per_chunks" in params:
        assert 'did you mean "files_per_chunk"' in str(info.value)


# -- split-lines ----------------------------------------------------------------------


def ranges(refs):
    return [(r.start, r.end) for r in refs]


def test_split_lines_chunk_size_cuts_after_the_first_newline_past_the_target(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"aa\nbbbbbb\nc\ndd\n")  # 15 bytes
    refs = plan(src, "split-lines", {"chunk_size": 4}, tmp=tmp_path)
    assert ranges(refs) == [(0, 10), (10, 15)]
    assert [chunk_bytes(r) for r in refs] == [b"aa\nbbbbbb\n", b"c\ndd\n"]
    assert [r.size for r in refs] == [10, 5]
    assert [r.index for r in refs] == [0, 1]


def test_split_lines_boundary_on_a_newline_is_kept(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"abc\ndef\nghi\n")
    assert ranges(plan(src, "split-lines", {"chunk_size": 4}, tmp=tmp_path)) == [(0, 4), (4, 8), (8, 12)]


def test_split_lines_lines_per_chunk(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"".join(f"{i}\n".encode() for i in range(10)))
    refs = plan(src, "split-lines", {"lines_per_chunk": 3}, tmp=tmp_path)
    assert [chunk_bytes(r) for r in refs] == [b"0\n1\n2\n", b"3\n4\n5\n", b"6\n7\n8\n", b"9\n"]


def test_split_lines_lines_per_chunk_and_chunk_size_cut_at_whichever_comes_first(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"a\nb\nc\nd\n" + b"x" * 20 + b"\n" + b"e\nf\n")
    refs = plan(src, "split-lines", {"lines_per_chunk": 3, "chunk_size": 10}, tmp=tmp_path)
    assert [chunk_bytes(r) for r in refs] == [b"a\nb\nc\n", b"d\n" + b"x" * 20 + b"\n", b"e\nf\n"]


def test_split_lines_without_trailing_newline_keeps_the_last_line(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"one\ntwo\nthree")
    for params in ({"chunk_size": 5}, {"lines_per_chunk": 2}, {"chunk_size": 100}):
        refs = plan(src, "split-lines", params, tmp=tmp_path)
        assert b"".join(chunk_bytes(r) for r in refs) == b"one\ntwo\nthree", params
        assert refs[-1].end == 13
    assert [chunk_bytes(r) for r in plan(src, "split-lines", {"lines_per_chunk": 2}, tmp=tmp_path)] == \
        [b"one\ntwo\n", b"three"]


def test_split_lines_empty_file_gives_no_chunks_and_others_still_split(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a-empty.txt").write_bytes(b"")
    (data / "b.txt").write_bytes(b"1\n2\n")
    for params in ({"chunk_size": 2}, {"lines_per_chunk": 1}):
        refs = plan(str(data) + "/", "split-lines", params, tmp=tmp_path)
        assert [(r.label, chunk_bytes(r)) for r in refs] == [("b.txt", b"1\n"), ("b.txt", b"2\n")]


def test_split_lines_empty_source_runs_to_an_empty_output(tmp_path):
    src = tmp_path / "empty.txt"
    src.write_bytes(b"")
    out = tmp_path / "out"
    result = make_job(src, "split-lines", out, {"chunk_size": 10}).run(scheduler="sync")
    assert result.n_chunks == 0
    manifest = json.loads((out / "_SUCCESS").read_text())
    assert manifest["chunkCount"] == 0
    assert [(f["name"], f["size"]) for f in manifest["files"]] == [("output", 0)]


def test_split_lines_chunks_never_span_two_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"a1\na2\n")
    (data / "b.txt").write_bytes(b"b1\nb2\nb3\n")
    refs = plan(str(data) + "/", "split-lines", {"chunk_size": 100}, tmp=tmp_path)
    assert [(r.label, chunk_bytes(r)) for r in refs] == [("a.txt", b"a1\na2\n"), ("b.txt", b"b1\nb2\nb3\n")]


def test_split_lines_line_longer_than_chunk_size_stays_whole(tmp_path):
    src = tmp_path / "in.txt"
    long = b"L" * 1000 + b"\n"
    src.write_bytes(b"s\n" + long + b"t\n" + long)
    refs = plan(src, "split-lines", {"chunk_size": 10}, tmp=tmp_path)
    assert [chunk_bytes(r) for r in refs] == [b"s\n" + long, b"t\n" + long]


def test_split_lines_line_longer_than_read_ahead_is_found(tmp_path):
    src = tmp_path / "in.txt"
    long = b"x" * 100_000 + b"\n"  # doubling read-ahead from 3 bytes needs many steps
    src.write_bytes(b"a\n" + long + b"b\n" + b"y" * 50_000)
    refs = plan(src, "split-lines", {"chunk_size": 5, "read_ahead": 3}, tmp=tmp_path)
    assert [chunk_bytes(r) for r in refs] == [b"a\n" + long, b"b\n" + b"y" * 50_000]


def test_split_lines_line_longer_than_the_largest_read_ahead(tmp_path):
    # Longer than the 8 MiB the read-ahead stops doubling at.
    src = tmp_path / "in.txt"
    long = b"z" * (9 * 2**20) + b"\n"
    src.write_bytes(b"head\n" + long + b"tail\n")
    refs = plan(src, "split-lines", {"chunk_size": 8, "read_ahead": 1024}, tmp=tmp_path)
    assert ranges(refs) == [(0, 5 + len(long)), (5 + len(long), 10 + len(long))]


def test_split_lines_defaults_to_64_mib_chunks(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"x\n" * 1000)
    assert ranges(plan(src, "split-lines", tmp=tmp_path)) == [(0, 2000)]


@pytest.mark.parametrize("params, message", [
    ({"chunk_size": "64k"}, 'params.partitioner.chunk_size: expected integer, got "64k"'),
    ({"chunk_size": 0}, "params.partitioner.chunk_size: must be >= 1, got 0"),
    ({"lines_per_chunk": -1}, "params.partitioner.lines_per_chunk: must be >= 1, got -1"),
    ({"read_ahead": 0}, "params.partitioner.read_ahead: must be >= 1, got 0"),
    ({"chunksize": 10}, 'params.partitioner.chunksize: unknown field (did you mean "chunk_size"?)'),
])
def test_split_lines_rejects_bad_params(tmp_path, params, message):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    with pytest.raises(JobValidationError) as info:
        make_job(src, "split-lines", tmp_path / "out", params).validate()
    assert message in str(info.value)


def test_split_lines_reports_a_file_shorter_than_listed(tmp_path):
    # The listing says 100 bytes; the data ends sooner (the file changed under us).
    src = tmp_path / "in.txt"
    src.write_bytes(b"abc")
    location = Location("file://" + str(src))
    source = Source(location, [FileInfo(location.url, "in.txt", 100)])
    with pytest.raises(bn.ByteniteNBError, match="in.txt: data ends at offset 3, but its size is 100 bytes"):
        SplitLines().plan(source, {"chunk_size": 1})


# -- split-lines invariants (hypothesis) --------------------------------------------


lines_strategy = st.lists(
    st.one_of(
        st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")),
        st.integers(min_value=0, max_value=300).map(lambda n: b"w" * n),  # long lines
    ),
    max_size=25,
)


@st.composite
def text_and_params(draw):
    lines = draw(lines_strategy)
    data = b"\n".join(lines)
    if lines and draw(st.booleans()):
        data += b"\n"
    params = {}
    mode = draw(st.sampled_from(["size", "lines", "both"]))
    if mode in ("size", "both"):
        params["chunk_size"] = draw(st.integers(min_value=1, max_value=64))
    if mode in ("lines", "both"):
        params["lines_per_chunk"] = draw(st.integers(min_value=1, max_value=6))
    params["read_ahead"] = draw(st.integers(min_value=1, max_value=16))
    return data, params


def check_partition(data: bytes, spans: list[tuple[int, int]], params: dict) -> None:
    """The split-lines contract for one file's ``(start, end)`` spans."""
    chunk_size, lines = params.get("chunk_size"), params.get("lines_per_chunk")
    pos = 0
    for k, (start, end) in enumerate(spans):
        assert start == pos, f"gap or overlap at {pos}: {spans}"
        assert end > start, f"empty chunk {start}:{end}"
        piece = data[start:end]
        assert end == len(data) or piece.endswith(b"\n"), f"chunk {start}:{end} cuts a line"
        if lines is not None:
            assert piece.count(b"\n") <= lines, f"chunk {start}:{end} has too many lines"
        if chunk_size is not None:
            # Cut at the first line end at or past chunk_size bytes, not at a later one.
            assert b"\n" not in piece[chunk_size - 1:-1], f"chunk {start}:{end} runs past a cut"
        if k < len(spans) - 1:  # every chunk but the last is full by one measure
            full_lines = lines is not None and piece.count(b"\n") == lines
            big_enough = chunk_size is not None and len(piece) >= chunk_size
            assert full_lines or big_enough, f"chunk {start}:{end} was cut early"
        pos = end
    assert pos == len(data), f"bytes {pos}:{len(data)} are not covered"


@settings(max_examples=300, deadline=None)
@given(text_and_params())
def test_split_lines_spans_cover_every_byte_once_and_end_on_line_ends(case):
    data, params = case
    size_only = "lines_per_chunk" not in params
    if size_only:
        spans = split_by_size(io.BytesIO(data), len(data), params["chunk_size"], params["read_ahead"])
    else:
        spans = split_by_lines(io.BytesIO(data), len(data), params["lines_per_chunk"], params.get("chunk_size"))
    check_partition(data, spans, params)
    if "lines_per_chunk" in params and "chunk_size" not in params:
        # Every chunk but the last holds exactly lines_per_chunk lines.
        assert all(data[s:e].count(b"\n") == params["lines_per_chunk"] for s, e in spans[:-1])


many_short_lines = st.lists(st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"")), max_size=300).map(
    lambda lines: b"\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(many_short_lines, st.integers(min_value=1, max_value=60), st.none() | st.integers(min_value=1, max_value=200),
       st.integers(min_value=1, max_value=9))
def test_split_by_lines_is_the_same_whatever_the_scan_block(data, lines, chunk_size, block):
    # Counting lines reads 8 MiB blocks; tiny blocks make every cut and count cross block edges.
    whole = split_by_lines(io.BytesIO(data), len(data), lines, chunk_size)
    check_partition(data, whole, {"lines_per_chunk": lines} | ({"chunk_size": chunk_size} if chunk_size else {}))
    saved = split_lines.SCAN_BLOCK
    split_lines.SCAN_BLOCK = block
    try:
        assert split_by_lines(io.BytesIO(data), len(data), lines, chunk_size) == whole
    finally:
        split_lines.SCAN_BLOCK = saved


class TallyBytes(bytes):
    """Bytes that add up how much of themselves ``count`` and ``find`` look at."""

    scanned = 0

    def count(self, sub, start=0, end=None):
        end = len(self) if end is None else min(end, len(self))
        TallyBytes.scanned += max(0, end - start)
        return bytes.count(self, sub, start, end)

    def find(self, sub, start=0, end=None):
        end = len(self) if end is None else min(end, len(self))
        at = bytes.find(self, sub, start, end)
        TallyBytes.scanned += max(0, (end if at < 0 else at + 1) - start)
        return at


class TallyReader(io.BytesIO):
    def read(self, n=-1):
        return TallyBytes(super().read(n))


@pytest.mark.parametrize("lines, chunk_size", [(1, None), (10, None), (1000, None), (3, 50), (100, 7)])
def test_counting_lines_looks_at_each_byte_a_few_times_only(lines, chunk_size):
    # Work, not time: a line count that re-read the rest of its block at every line end was quadratic.
    data = b"ab\n" * 30_000
    TallyBytes.scanned = 0
    spans = split_by_lines(TallyReader(data), len(data), lines, chunk_size)
    check_partition(data, spans, {"lines_per_chunk": lines} | ({"chunk_size": chunk_size} if chunk_size else {}))
    assert TallyBytes.scanned <= 4 * len(data), TallyBytes.scanned / len(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(text_and_params().map(lambda c: c[0]), min_size=1, max_size=3), text_and_params())
def test_split_lines_plan_over_several_files_covers_each_file(tmp_path, contents, case):
    _, params = case
    folder = tempfile.mkdtemp(dir=tmp_path)
    for i, data in enumerate(contents):
        with open(os.path.join(folder, f"part-{i}.txt"), "wb") as f:
            f.write(data)
    location = Location("file://" + folder + "/")
    refs = list(SplitLines().plan(Source(location, list_source(location)), params))
    for i, data in enumerate(contents):
        mine = [r for r in refs if r.label == f"part-{i}.txt"]
        check_partition(data, [(r.start, r.end) for r in mine], params)
        assert all(r.size == r.end - r.start for r in mine)


def pipeline_job(tmp_path, data: bytes, params: dict):
    folder = tempfile.mkdtemp(dir=tmp_path)
    src = os.path.join(folder, "in.txt")
    with open(src, "wb") as f:
        f.write(data)
    return make_job(src, "split-lines", os.path.join(folder, "out"), params), os.path.join(folder, "out")


def assert_identical_output(out: str, data: bytes) -> None:
    manifest = json.loads(open(os.path.join(out, "_SUCCESS")).read())
    (entry,) = manifest["files"]
    with open(os.path.join(out, entry["name"]), "rb") as f:
        assert f.read() == data
    assert entry["size"] == len(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text_and_params())
def test_split_lines_identity_concat_is_byte_identical(tmp_path, case):
    data, params = case
    job, out = pipeline_job(tmp_path, data, params)
    result = job.run(scheduler="sync")
    assert result.ok
    assert_identical_output(out, data)


def test_split_lines_identity_concat_on_the_cluster(tmp_path, client):
    data = b"short\n" + b"L" * 5000 + b"\n\n" + b"mid line\n" * 200 + b"\xff\x00tail without newline"
    params = {"chunk_size": 64, "read_ahead": 7}
    job, out = pipeline_job(tmp_path, data, params)
    result = job.run(client=client)
    assert result.n_chunks == len(job.plan(scheduler="sync")) > 10
    assert_identical_output(out, data)


# -- planning reads only near the boundaries -----------------------------------------


class CountingFile(AbstractBufferedFile):
    """A local file read only through ranged reads, like an object store's, counted."""

    def _fetch_range(self, start, end):
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        CountingFileSystem.fetched += len(data)
        CountingFileSystem.requests += 1
        return data


class CountingFileSystem(LocalFileSystem):
    protocol = "counting"
    root_marker = "/"
    fetched = 0
    requests = 0

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        assert mode == "rb"
        path = self._strip_protocol(path)
        return CountingFile(self, path, mode, block_size=block_size or 65536,
                            size=os.path.getsize(path), cache_type="readahead")


@pytest.fixture
def counting_fs():
    fsspec.register_implementation("counting", CountingFileSystem, clobber=True)
    CountingFileSystem.fetched = CountingFileSystem.requests = 0
    yield CountingFileSystem


def test_planning_by_size_reads_only_near_the_boundaries(tmp_path, counting_fs):
    line = b"0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghij\n"  # 60 bytes
    src = tmp_path / "big.txt"
    with open(src, "wb") as f:
        for _ in range(16 * 2**20 // len(line)):
            f.write(line)
    size = os.path.getsize(src)
    job = make_job("counting://" + str(src), "split-lines", tmp_path / "out",
                   {"chunk_size": 2**20, "read_ahead": 4096})
    refs = job.plan(scheduler="sync")
    assert len(refs) == 16
    check_partition(src.read_bytes(), ranges(refs), {"chunk_size": 2**20})
    # 15 boundaries, a few KiB read around each: a small fraction of the 16 MiB.
    assert 0 < counting_fs.fetched < size // 50, counting_fs.fetched
    assert counting_fs.requests <= 2 * len(refs)


def test_planning_by_lines_has_to_scan_the_whole_file(tmp_path, counting_fs):
    # The contrast that shows the counter counts: counting lines reads everything.
    src = tmp_path / "small.txt"
    src.write_bytes(b"x\n" * 50_000)
    refs = make_job("counting://" + str(src), "split-lines", tmp_path / "out",
                    {"lines_per_chunk": 10_000}).plan(scheduler="sync")
    assert len(refs) == 5
    assert counting_fs.fetched >= 100_000


@pytest.mark.parametrize("read_ahead", [1, 3, 64])
def test_planning_through_ranged_reads_keeps_long_lines_whole(tmp_path, counting_fs, read_ahead):
    src = tmp_path / "long.txt"
    data = b"a\n" + b"L" * 5000 + b"\n" + b"b\n" * 30 + b"M" * 3000
    src.write_bytes(data)
    refs = make_job("counting://" + str(src), "split-lines", tmp_path / "out",
                    {"chunk_size": 10, "read_ahead": read_ahead}).plan(scheduler="sync")
    check_partition(data, ranges(refs), {"chunk_size": 10})
    assert data[refs[0].start:refs[0].end] == b"a\n" + b"L" * 5000 + b"\n"
    assert data[refs[-1].start:refs[-1].end].endswith(b"M" * 3000)


def test_chunk_refs_survive_the_saved_plan(tmp_path, five_files):
    # A resumed run reads the plan back from JSON: every kind of reference must come back whole.
    refs = (plan(str(five_files) + "/", "files", {"files_per_chunk": 2}, tmp=tmp_path)
            + plan(five_files / "f0.txt", "replicate", {"num_replicas": 2}, tmp=tmp_path)
            + plan(five_files / "f1.txt", "split-lines", {"chunk_size": 2}, tmp=tmp_path)
            + bn.Job(source={"dataSourceDescriptor": "bypass"}, app="identity",
                     destination=str(tmp_path / "o")).plan(scheduler="sync"))
    for ref in refs:
        back = bn.ChunkRef.from_dict(json.loads(json.dumps(ref.to_dict())))
        assert back == ref and back.meta == ref.meta
    assert {r.meta.get("replica") for r in refs} >= {0, 1}
