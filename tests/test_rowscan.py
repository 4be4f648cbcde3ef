"""The compiled row check (bytenite_nb/partitioners/rowscan.c) gives numpy's
answers, and the rows partitioner gives the same output with or without it."""

import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn
from bytenite_nb.partitioners import rows, rowscan

from .conftest import missing


@pytest.fixture(scope="module")
def compiled():
    if not rowscan.available():
        missing(f"the compiled row check {rowscan.LIBRARY} is not built (no C compiler when the package was "
                "installed; `python hatch_build.py` builds it)")


def numpy_answer(data: bytes, delimiter: str, fields: int) -> rowscan.RowScan:
    """What check_rows must say, from rows.row_fields (numpy)."""
    ends, counts = rows.row_fields(data, delimiter)
    bad = np.flatnonzero(counts != fields)
    first_bad = -1 if not len(bad) else (int(ends[bad[0] - 1]) if bad[0] else 0)
    end = int(ends[-1]) if len(ends) else 0
    trailing = 0
    if len(data) > end:
        trailing = int(rows.row_fields(data[end:], delimiter, final=True)[1][-1]) - 1
    inside = data.count(b'"') % 2 == 1
    return rowscan.RowScan(len(ends), end, first_bad, inside, trailing)


# Rows of a few fields, quoted fields holding delimiters, quotes and newlines,
# lengths that put quotes and newlines on both sides of the 64-byte blocks.
texts = hs.text(alphabet=hs.sampled_from(list('ab,\t"\n')), max_size=400).map(str.encode)


@settings(max_examples=400, deadline=None)
@given(data=texts, fields=hs.integers(1, 4), delimiter=hs.sampled_from([",", "\t"]))
def test_the_compiled_check_gives_numpys_answer(compiled, data, fields, delimiter):
    assert rowscan.check_rows(data, delimiter, fields) == numpy_answer(data, delimiter, fields)


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 127, 128, 129, 1000, 4096 + 17])
def test_block_edges(compiled, size):
    """A newline, a quote or a delimiter as the last byte of a block and the first of the next."""
    rng = np.random.default_rng(size)
    for _ in range(50):
        data = rng.choice(np.frombuffer(b'x,"\n', dtype=np.uint8), size=size, p=[0.55, 0.2, 0.1, 0.15]).tobytes()
        assert rowscan.check_rows(data, ",", 2) == numpy_answer(data, ",", 2)


def test_a_ragged_row_is_found_after_many_clean_ones(compiled):
    row = b'1,"a, ""b""\nc",x\n'
    data = row * 5000 + b"2,y\n" + row * 10 + b'3,"z\n'
    scan = rowscan.check_rows(data, ",", 3)
    assert scan == rowscan.RowScan(5011, len(row) * 5000 + 4 + len(row) * 10, len(row) * 5000, True, 1)


def test_a_delimiter_the_check_cannot_use_is_refused():
    for delimiter in ['"', "\n", "\0", ";;", "", "é"]:
        with pytest.raises(ValueError, match="cannot check rows delimited by"):
            rowscan.check_rows(b"a,b\n", delimiter, 2)


@settings(max_examples=200, deadline=None)
@given(data=texts)
def test_counting_a_byte(compiled, data):
    assert rowscan.count_byte(data, ord('"')) == data.count(b'"')
    assert rowscan.count_byte(memoryview(bytearray(data)), ord("\n")) == data.count(b"\n")


def run_rows(tmp_path, text: bytes, params: dict):
    (tmp_path / "t.csv").write_bytes(text)
    out = tmp_path / "out"
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="rows", app="identity", assembler="concat",
                 destination=str(out), params={"partitioner": params,
                                               "assembler": {"header": True, "output_name": "t.csv"}})
    job.run(scheduler="sync", force=True)
    return (out / "t.csv").read_bytes(), (out / "_SUCCESS").read_text()


@pytest.mark.parametrize("on_bad", ["skip", "fail"])
def test_the_same_output_and_errors_without_the_compiled_check(compiled, tmp_path, monkeypatch, on_bad):
    body = [b'%d,"note %d,\nmore",x\n' % (i, i) if i % 3 else b"%d,n,x\n" % i for i in range(3000)]
    text = b"id,note,x\n" + b"".join(body[:1700]) + b"ragged,row\n" + b"".join(body[1700:]) + b"4,last,row,extra"
    params = {"chunk_size": 7000, "on_bad": on_bad}

    def outcome():
        try:
            output, success = run_rows(tmp_path, text, params)
            return output, success.split('"skipped"')[1].split('"checksum"')[0]
        except bn.JobFailed as e:
            return str(e).split("FAILED: ", 1)[1]  # after the job's id

    with_compiled = outcome()
    monkeypatch.setattr(rowscan, "_lib", None)
    assert not rowscan.available()
    without = outcome()
    assert with_compiled == without
    if on_bad == "fail":
        line = 2 + sum(row.count(b"\n") for row in body[:1700])
        assert f"t.csv: line {line} (byte {len(text.split(b'ragged')[0])}): ragged row: 2 fields, the header has 3" \
            in with_compiled
    else:
        assert b"ragged,row" not in with_compiled[0] and b"extra" not in with_compiled[0]
        assert '"count": 2' in with_compiled[1]


def test_a_library_from_another_version_is_not_used(tmp_path, monkeypatch, caplog):
    """A stale build (the C file changed, the package not reinstalled) falls back to numpy, saying why."""
    if not rowscan.available():
        missing("the compiled row check is not built")
    monkeypatch.setattr(rowscan, "VERSION", rowscan.VERSION + 1)
    with caplog.at_level("WARNING", logger=rowscan.__name__):
        assert rowscan._load() is None
    assert "from another version of bytenite-nb" in caplog.text and "reinstall" in caplog.text


def compiler() -> list[str]:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        from hatch_build import find_compiler
    finally:
        sys.path.pop(0)
    found = find_compiler()
    if not found:
        missing("no C compiler on this machine (scripts/setup.d/apt-packages.txt lists gcc)")
    return found


def test_the_library_is_built_by_the_build_hook(tmp_path):
    """hatch_build.py compiles rowscan.c with the machine's compiler (as pip install does)."""
    compiler()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    copy = tmp_path / "tree"
    (copy / "bytenite_nb" / "partitioners").mkdir(parents=True)
    shutil.copy(os.path.join(root, "hatch_build.py"), copy)
    shutil.copy(os.path.join(root, "bytenite_nb", "partitioners", "rowscan.c"), copy / "bytenite_nb" / "partitioners")
    done = subprocess.run([sys.executable, "hatch_build.py"], cwd=copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert ctypes.CDLL(str(copy / "bytenite_nb" / "partitioners" / "_rowscan.native")).rowscan_version() == \
        rowscan.VERSION


def test_the_portable_code_gives_numpys_answer_too(tmp_path, monkeypatch):
    """The code a CPU without SSE2 or popcount runs (ARM, say), built here with -DROWSCAN_PORTABLE."""
    library = tmp_path / "portable.native"
    source = os.path.join(os.path.dirname(rowscan.__file__), "rowscan.c")
    done = subprocess.run([*compiler(), "-O2", "-fPIC", "-shared", "-DROWSCAN_PORTABLE", "-o", str(library), source],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    monkeypatch.setattr(rowscan, "LIBRARY", str(library))
    monkeypatch.setattr(rowscan, "_lib", rowscan._load())
    assert rowscan.available()
    rng = np.random.default_rng(7)
    for size in list(range(0, 200)) + [1000, 4096 + 17]:
        data = rng.choice(np.frombuffer(b'ab,\t"\n', dtype=np.uint8), size=size).tobytes()
        for delimiter, fields in ((",", 2), ("\t", 3), (",", 1)):
            assert rowscan.check_rows(data, delimiter, fields) == numpy_answer(data, delimiter, fields), data
        assert rowscan.count_byte(data, ord('"')) == data.count(b'"')
