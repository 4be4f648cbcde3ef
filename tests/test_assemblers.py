"""The built-in assemblers (passthrough, concat, zip), the ``_SUCCESS`` manifest,
and publishing: nothing reaches the destination unless assembly succeeds, and
no output name may leave the destination folder.

Jobs run on the synchronous scheduler unless the cluster is what is tested
(chunks finishing out of order on two worker processes).
"""

from __future__ import annotations

import json
import os
import time
import zipfile

import pytest

import bytenite_nb as bn
from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers.concat import Concat
from bytenite_nb.assemblers.passthrough import Passthrough
from bytenite_nb.exceptions import JobValidationError, UnsafePathError
from bytenite_nb.store import JobStore
from tests.helpers import crc32c


def write_files(chunk_path, results_dir, params):
    """Writes ``params["files"]``: name -> text, where ``{n}`` is the chunk's content (its number)."""
    n = open(chunk_path).read().strip()
    if n in params.get("skip", []):
        return
    for name, text in params["files"].items():
        path = os.path.join(results_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text.format(n=n))
    # Later chunks finish first on a cluster: assembly must not care.
    time.sleep(params.get("sleep", 0) * (10 - int(n)))


@pytest.fixture
def numbers(tmp_path):
    """A source whose line i is ``i``: with one line per chunk, chunk i holds its own number."""
    def make(count):
        path = tmp_path / f"numbers-{count}.txt"
        path.write_text("".join(f"{i}\n" for i in range(count)))
        return path
    return make


def run_job(numbers, out, files, count=3, assembler="passthrough", assembler_params=None, client=None, **app):
    job = bn.Job(source=str(numbers(count)), partitioner="split-lines", app=write_files, assembler=assembler,
                 destination=str(out) + "/",
                 params={"partitioner": {"lines_per_chunk": 1}, "app": {"files": files, **app},
                         "assembler": assembler_params or {}})
    return job.run(client=client) if client is not None else job.run(scheduler="sync")


def tree(folder) -> dict[str, bytes]:
    """Every file under ``folder`` by relative name."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, folder)] = open(full, "rb").read()
    return out


def manifest_of(out) -> dict:
    return json.loads((out / "_SUCCESS").read_text())


def check_manifest(out, result) -> dict:
    """``_SUCCESS`` lists exactly the outputs at the destination, with their true sizes and checksums."""
    manifest = manifest_of(out)
    assert manifest["jobId"] == result.job_id
    assert manifest["chunkCount"] == result.n_chunks
    on_disk = tree(out)
    del on_disk["_SUCCESS"]
    assert sorted(f["name"] for f in manifest["files"]) == sorted(on_disk)
    for entry in manifest["files"]:
        data = on_disk[entry["name"]]
        assert entry["size"] == len(data)
        assert entry["crc32c"] == crc32c(data)
        assert entry["url"] == "file://" + str(out / entry["name"])
    assert result.outputs == manifest["files"]
    return manifest


def local_result(tmp_path, index, files: dict[str, bytes]) -> ChunkResult:
    """A committed chunk made by hand, for calling an assembler directly."""
    out = []
    for name, data in files.items():
        path = tmp_path / "staged" / str(index) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(ResultFile(name=name, size=len(data), url="file://" + str(path), local_path=str(path)))
    return ChunkResult(index=index, files=tuple(out))


# -- passthrough ------------------------------------------------------------------------


def test_passthrough_puts_every_chunk_in_its_own_folder(tmp_path, numbers):
    out = tmp_path / "out"
    result = run_job(numbers, out, {"result.txt": "r{n}", "sub/detail.txt": "d{n}"})
    assert tree(out) | {"_SUCCESS": b""} == {
        "chunk_0000/result.txt": b"r0", "chunk_0000/sub/detail.txt": b"d0",
        "chunk_0001/result.txt": b"r1", "chunk_0001/sub/detail.txt": b"d1",
        "chunk_0002/result.txt": b"r2", "chunk_0002/sub/detail.txt": b"d2",
        "_SUCCESS": b"",
    }
    check_manifest(out, result)


def test_passthrough_chunk_without_results_leaves_no_folder(tmp_path, numbers):
    out = tmp_path / "out"
    run_job(numbers, out, {"r.txt": "{n}"}, skip=["1"])
    assert sorted(tree(out)) == ["_SUCCESS", "chunk_0000/r.txt", "chunk_0002/r.txt"]


def test_passthrough_folder_names_widen_with_the_chunk_count_and_sort_in_chunk_order(tmp_path):
    results = [ChunkResult(index=i, files=()) for i in range(12000)]
    for i in (7, 999, 11999):
        results[i] = local_result(tmp_path, i, {"r.txt": str(i).encode()})
    out = tmp_path / "assembled"
    out.mkdir()
    Passthrough().assemble(results, str(out), {})
    found = tree(out)
    assert found == {"chunk_00007/r.txt": b"7", "chunk_00999/r.txt": b"999", "chunk_11999/r.txt": b"11999"}
    assert sorted(found) == ["chunk_00007/r.txt", "chunk_00999/r.txt", "chunk_11999/r.txt"]


# -- concat ------------------------------------------------------------------------------


def test_concat_follows_chunk_order_then_name_order_on_the_cluster(tmp_path, numbers, client):
    out = tmp_path / "out"
    # b.txt before a.txt when written; chunk 0 sleeps longest so it finishes last.
    result = run_job(numbers, out, {"b.txt": "B{n};", "a.txt": "A{n};"}, count=6, assembler="concat",
                     client=client, sleep=0.03)
    assert (out / "output.txt").read_text() == "".join(f"A{i};B{i};" for i in range(6))
    assert check_manifest(out, result)["chunkCount"] == 6


def test_concat_pattern_keeps_only_matching_results_and_names_output_after_them(tmp_path, numbers):
    out = tmp_path / "out"
    run_job(numbers, out, {"part.csv": "{n},x\n", "debug.log": "noise {n}\n"}, assembler="concat",
            assembler_params={"pattern": "*.csv"})
    assert tree(out).keys() == {"output.csv", "_SUCCESS"}
    assert (out / "output.csv").read_text() == "0,x\n1,x\n2,x\n"


def test_concat_separator_goes_between_chunks_only(tmp_path, numbers):
    out = tmp_path / "out"
    result = run_job(numbers, out, {"1.txt": "<{n}", "2.txt": "{n}>"}, count=4, assembler="concat",
                     assembler_params={"separator": "\n--\n"}, skip=["2"])
    # No separator inside a chunk, none for the chunk that wrote nothing, none at the ends.
    assert (out / "output.txt").read_text() == "<00>\n--\n<11>\n--\n<33>"
    check_manifest(out, result)  # the separators are in the checksum too


def test_concat_output_name_may_be_a_subfolder_path(tmp_path, numbers):
    out = tmp_path / "out"
    result = run_job(numbers, out, {"r": "{n}"}, assembler="concat",
                     assembler_params={"output_name": "reports/all.txt"})
    assert tree(out).keys() == {"reports/all.txt", "_SUCCESS"}
    assert (out / "reports" / "all.txt").read_text() == "012"
    check_manifest(out, result)


def test_concat_default_name_without_extension_is_output(tmp_path, numbers):
    out = tmp_path / "out"
    run_job(numbers, out, {"result": "{n}"}, assembler="concat")
    assert (out / "output").read_text() == "012"


def test_concat_of_no_results_is_one_empty_output(tmp_path, numbers):
    out = tmp_path / "out"
    result = run_job(numbers, out, {"r.txt": "{n}"}, assembler="concat", skip=["0", "1", "2"])
    assert tree(out) == {"output": b"", "_SUCCESS": (out / "_SUCCESS").read_bytes()}
    assert check_manifest(out, result)["files"][0]["crc32c"] == crc32c(b"")


@pytest.mark.parametrize("algorithm", ["crc32c", "sha256"])
@pytest.mark.parametrize("where", ["local", "streamed"])
def test_concat_returns_the_checksum_of_what_it_wrote(tmp_path, algorithm, where):
    import dataclasses
    import hashlib

    from bytenite_nb.transfer import checksum_algorithm

    # Parts larger than the copy buffer, so the checksum spans several blocks of each.
    results = [local_result(tmp_path, i, {"r.txt": f"part {i}\n".encode() * 300_000}) for i in range(3)]
    if where == "streamed":  # read through fsspec, as parts on an object store are
        results = [dataclasses.replace(r, files=tuple(dataclasses.replace(f, local_path=None) for f in r.files))
                   for r in results]
    out = tmp_path / "assembled"
    out.mkdir()
    with checksum_algorithm(algorithm):
        sums = Concat().assemble(results, str(out), {"separator": "#"})
    data = (out / "output.txt").read_bytes()
    assert data == "#".join(f"part {i}\n" * 300_000 for i in range(3)).encode()
    expected = crc32c(data) if algorithm == "crc32c" else hashlib.sha256(data).hexdigest()
    assert sums == {"output.txt": expected}


@pytest.mark.parametrize("cpus", [2, 3, 4])
def test_concat_written_by_several_threads_is_whole_and_its_crc32c_combines(tmp_path, monkeypatch, cpus):
    from bytenite_nb.assemblers import concat

    monkeypatch.setattr(concat, "PARALLEL_MIN", 1)
    monkeypatch.setattr(concat.os, "cpu_count", lambda: cpus)
    # Odd sizes and a three-byte separator, so range boundaries fall inside
    # files and inside separators; one chunk has no results at all.
    sizes = [1, 70_001, 0, 333_333, 2, 1_048_577]
    results = [local_result(tmp_path, i, {"r.bin": os.urandom(n)}) for i, n in enumerate(sizes) if n]
    results.insert(2, ChunkResult(index=99, files=()))
    out = tmp_path / "assembled"
    out.mkdir()
    sums = Concat().assemble(results, str(out), {"separator": "#-#", "output_name": "all.bin"})
    data = (out / "all.bin").read_bytes()
    assert data == b"#-#".join(r.files[0].open().read() for r in results if r.files)
    assert sums == {"all.bin": crc32c(data)}


@pytest.mark.parametrize("cpus", [2, 4])
def test_concat_ranges_may_split_a_separator(tmp_path, monkeypatch, cpus):
    from bytenite_nb.assemblers import concat

    monkeypatch.setattr(concat, "PARALLEL_MIN", 1)
    monkeypatch.setattr(concat.os, "cpu_count", lambda: cpus)
    # 10 + 3 + 10 bytes: with 2 or 4 ranges one boundary is byte 11, inside "#-#".
    results = [local_result(tmp_path, i, {"r.txt": (str(i) * 10).encode()}) for i in range(2)]
    assert any(10 < 23 * i // cpus < 13 for i in range(1, cpus))
    out = tmp_path / "assembled"
    out.mkdir()
    sums = Concat().assemble(results, str(out), {"separator": "#-#"})
    assert (out / "output.txt").read_bytes() == b"0000000000#-#1111111111"
    assert sums == {"output.txt": crc32c(b"0000000000#-#1111111111")}


# -- zip ---------------------------------------------------------------------------------


def test_zip_archives_every_result_under_a_folder_per_chunk(tmp_path, numbers):
    out = tmp_path / "out"
    result = run_job(numbers, out, {"result.txt": "r{n}", "img/x.bin": "x{n}"}, assembler="zip")
    assert tree(out).keys() == {"results_archive.zip", "_SUCCESS"}
    with zipfile.ZipFile(out / "results_archive.zip") as zf:
        assert zf.testzip() is None
        assert {n: zf.read(n) for n in zf.namelist()} == {
            f"chunk_000{i}/{name}": f"{p}{i}".encode()
            for i in range(3) for name, p in (("result.txt", "r"), ("img/x.bin", "x"))}
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    check_manifest(out, result)


def test_zip_archive_name_and_stored_compression(tmp_path, numbers):
    out = tmp_path / "out"
    run_job(numbers, out, {"r.txt": "{n}" * 100}, assembler="zip",
            assembler_params={"archive_name": "bundle.zip", "compression": "stored"})
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        assert zf.namelist() == ["chunk_0000/r.txt", "chunk_0001/r.txt", "chunk_0002/r.txt"]
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        assert zf.read("chunk_0002/r.txt") == b"2" * 100


@pytest.mark.parametrize("params, message", [
    ({"compression": "bzip2"}, 'params.assembler.compression: expected one of "deflated", "stored"; got "bzip2"'),
    ({"archive_name": ""}, "params.assembler.archive_name: must not be empty"),
    ({"archive": "x.zip"}, 'params.assembler.archive: unknown field (did you mean "archive_name"?)'),
])
def test_zip_rejects_bad_params_before_running(tmp_path, numbers, params, message):
    job = bn.Job(source=str(numbers(2)), app="identity", assembler="zip", destination=str(tmp_path / "out"),
                 params={"assembler": params})
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert message in str(info.value)


def test_concat_rejects_bad_params_before_running(tmp_path, numbers):
    job = bn.Job(source=str(numbers(2)), app="identity", assembler="concat", destination=str(tmp_path / "out"),
                 params={"assembler": {"separator": 0, "output_name": ""}})
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert sorted(info.value.fields) == ["params.assembler.output_name", "params.assembler.separator"]


# -- publishing ---------------------------------------------------------------------------


def test_outputs_reach_the_destination_only_after_assembly(tmp_path, numbers):
    out = tmp_path / "out"

    def look_then_write(results, output_dir, params):
        # What the destination holds while the assembler works: nothing of this job.
        seen = sorted(tree(out)) if out.exists() else []
        with open(os.path.join(output_dir, "seen.json"), "w") as f:
            json.dump(seen, f)

    run_job(numbers, out, {"r.txt": "{n}"}, assembler=look_then_write)
    assert json.loads((out / "seen.json").read_text()) == []
    assert sorted(tree(out)) == ["_SUCCESS", "seen.json"]


def failing_assembler(results, output_dir, params):
    with open(os.path.join(output_dir, "partial.txt"), "w") as f:
        f.write("half an output")
    raise RuntimeError("assembly broke")


def test_assembler_that_raises_leaves_the_destination_untouched(tmp_path, numbers):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("from before")
    before = tree(out)
    with pytest.raises(bn.JobFailed) as info:
        run_job(numbers, out, {"r.txt": "{n}"}, assembler=failing_assembler)
    message = str(info.value)
    assert "assembler" in message and "RuntimeError: assembly broke" in message
    assert tree(out) == before
    job = JobStore().get_job(info.value.result.job_id)
    assert job["state"] == "FAILED" and "assembly broke" in job["error"]


def test_failed_assembly_keeps_an_earlier_complete_output(tmp_path, numbers):
    out = tmp_path / "out"
    first = run_job(numbers, out, {"r.txt": "{n}"}, assembler="concat")
    before = tree(out)
    with pytest.raises(bn.JobFailed):
        run_job(numbers, out, {"r.txt": "changed {n}"}, assembler=failing_assembler)
    assert tree(out) == before
    assert manifest_of(out)["jobId"] == first.job_id


@pytest.mark.parametrize("assembler, params", [
    ("concat", {"output_name": "../escaped.txt"}),
    ("concat", {"output_name": "a/../../escaped.txt"}),
    ("zip", {"archive_name": "../escaped.txt"}),
])
def test_output_names_leaving_the_destination_are_refused(tmp_path, numbers, assembler, params):
    """Refused at validation, before any chunk runs, naming the param."""
    out = tmp_path / "dest" / "out"
    with pytest.raises(JobValidationError, match=r"params\.assembler\.\w+_name: must be a relative name"):
        run_job(numbers, out, {"r.txt": "{n}"}, assembler=assembler, assembler_params=params)
    assert not out.exists()
    assert not (tmp_path / "dest" / "escaped.txt").exists()
    assert "escaped.txt" not in tree(tmp_path)


def test_absolute_output_name_is_refused(tmp_path, numbers):
    target = tmp_path / "elsewhere" / "abs.txt"
    out = tmp_path / "out"
    with pytest.raises(JobValidationError, match="must be a relative name inside the output folder"):
        run_job(numbers, out, {"r.txt": "{n}"}, assembler="concat", assembler_params={"output_name": str(target)})
    assert not target.exists() and not out.exists()


def test_output_path_helper_refuses_unsafe_names(tmp_path):
    from bytenite_nb.assemblers.base import output_path

    assert output_path(str(tmp_path), "a/b.txt") == str(tmp_path / "a" / "b.txt")
    for bad in ("../x", "/etc/passwd", "a/../../x", "", ".", "x\x00y"):
        with pytest.raises(UnsafePathError):
            output_path(str(tmp_path), bad)


def test_assembler_output_symlink_is_refused(tmp_path, numbers):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the destination")

    def link_out(results, output_dir, params):
        os.symlink(secret, os.path.join(output_dir, "link.txt"))

    out = tmp_path / "out"
    with pytest.raises(bn.JobFailed, match="symlink"):
        run_job(numbers, out, {"r.txt": "{n}"}, assembler=link_out)
    assert not out.exists()


def test_assembler_may_not_write_its_own_success_file(tmp_path, numbers):
    def fake_success(results, output_dir, params):
        with open(os.path.join(output_dir, "_SUCCESS"), "w") as f:
            f.write("{}")

    out = tmp_path / "out"
    with pytest.raises(bn.JobFailed, match="may not be called _SUCCESS"):
        run_job(numbers, out, {"r.txt": "{n}"}, assembler=fake_success)
    assert not out.exists()


def test_sha256_on_request_and_stale_outputs_removed(client, tmp_path):
    """config.checksum = sha256 gives sha256 sums; a later run to the same destination
    removes what the earlier _SUCCESS listed and the new one does not, and nothing else."""
    import hashlib
    import json

    import bytenite_nb as bn

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_text(f"file {i}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("not written by a job")
    three = bn.Job(source=str(src), partitioner="files", app="identity", assembler="passthrough",
                   destination=str(out), config={"checksum": "sha256"})
    three.run(client=client)
    manifest = json.loads((out / "_SUCCESS").read_text())
    assert manifest["checksum"] == "sha256"
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256((out / entry["name"]).read_bytes()).hexdigest()
    one = bn.Job(source=str(src / "f1.txt"), partitioner="files", app="identity", assembler="passthrough",
                 destination=str(out))
    one.run(client=client)
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == ["_SUCCESS", "chunk_0000/result.bin", "mine.txt"]
    assert (out / "chunk_0000" / "result.bin").read_text() == "file 1\n"
    assert json.loads((out / "_SUCCESS").read_text())["checksum"] == "crc32c"
