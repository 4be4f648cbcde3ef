"""S3 as source, destination and staging, through moto's S3 server on loopback
and the real LocalCluster: the workers reach the server exactly as they
would reach AWS (endpoint and dummy credentials from the environment)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

import bytenite_nb as bn
from bytenite_nb.exceptions import JobValidationError
from tests.helpers import check_success_objects, crc32c


def text(n_lines: int, tag: str = "") -> bytes:
    return "".join(f"{tag}line {i:05d} {'x' * (i % 37)}\n" for i in range(n_lines)).encode()


def listing(fs, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` (relative key -> bytes), read fresh from the server."""
    fs.invalidate_cache()
    found = fs.find(prefix)
    return {key[len(prefix):].lstrip("/"): fs.cat_file(key) for key in found}


def check_success(fs, prefix: str, result) -> dict:
    """``_SUCCESS`` under ``prefix`` lists exactly the other objects there, with true sizes and checksums."""
    return check_success_objects(listing(fs, prefix), result, f"s3://{prefix}")


def upper(chunk_path, results_dir, params):
    with open(chunk_path, "rb") as f:
        data = f.read()
    if b"boom" in data:
        raise RuntimeError("this chunk is broken")
    return data.upper()


# -- sources and destinations --------------------------------------------------------


def test_aws_descriptors_split_lines_concat(s3, client):
    fs, bucket = s3
    data = text(4000)
    fs.pipe_file(f"{bucket}/in/data.txt", data)
    job = bn.Job(
        source={"dataSourceDescriptor": "aws",
                "params": {"bucketName": bucket, "name": "in/data.txt", "cloudRegion": "us-east-1"}},
        destination={"dataSourceDescriptor": "s3", "params": {"bucketName": bucket, "name": "out/"}},
        partitioner="split-lines", app="identity", assembler="concat",
        params={"partitioner": {"chunk_size": 16 * 1024, "read_ahead": 100}})
    refs = job.plan(client=client)
    assert len(refs) == len(data) // (16 * 1024) + 1
    assert {r.url for r in refs} == {f"s3://{bucket}/in/data.txt"}
    assert b"".join(data[r.start:r.end] for r in refs) == data
    result = job.run(client=client)
    assert result.ok and result.n_chunks == len(refs)
    assert result.output_urls == [f"s3://{bucket}/out/output.bin"]
    assert fs.cat_file(f"{bucket}/out/output.bin") == data
    manifest = check_success(fs, f"{bucket}/out", result)
    assert (manifest["partitioner"], manifest["assembler"]) == ("split-lines", "concat")
    # The source was only read.
    assert listing(fs, f"{bucket}/in") == {"data.txt": data}


def test_glob_source_files_partitioner_zip_assembler(s3, client):
    fs, bucket = s3
    logs = {f"logs/2026/day{i}.log": text(50 + i, tag=f"d{i} ") for i in range(3)}
    for key, data in logs.items():
        fs.pipe_file(f"{bucket}/{key}", data)
    fs.pipe_file(f"{bucket}/logs/2026/readme.txt", b"not a log\n")
    job = bn.Job(source=f"s3://{bucket}/logs/2026/*.log", partitioner="files", app=upper, assembler="zip",
                 destination=f"s3://{bucket}/archive/")
    result = job.run(client=client)
    assert result.n_chunks == 3
    check_success(fs, f"{bucket}/archive", result)
    archive = fs.cat_file(f"{bucket}/archive/results_archive.zip")
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == {
            f"chunk_000{i}/result.bin": logs[f"logs/2026/day{i}.log"].upper() for i in range(3)}


def test_prefix_source_files_partitioner_passthrough_assembler(s3, client):
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/data/part-0.txt", b"zero\n")
    fs.pipe_file(f"{bucket}/data/part-1.txt", b"one\n")
    fs.pipe_file(f"{bucket}/data/other.txt", b"other\n")
    job = bn.Job(source=f"s3://{bucket}/data/part-", partitioner="files", app="identity", assembler="passthrough",
                 destination={"dataSourceDescriptor": "aws", "params": {"bucketName": bucket, "name": "results"}})
    assert [r.label for r in job.plan(client=client)] == ["part-0.txt", "part-1.txt"]
    result = job.run(client=client)
    objects = listing(fs, f"{bucket}/results")
    assert objects.pop("chunk_0000/result.bin") == b"zero\n"
    assert objects.pop("chunk_0001/result.bin") == b"one\n"
    assert list(objects) == ["_SUCCESS"]
    check_success(fs, f"{bucket}/results", result)


def test_folder_source_keeps_relative_names(s3):
    fs, bucket = s3
    for key in ("tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c.txt"):
        fs.pipe_file(f"{bucket}/{key}", key.encode())
    job = bn.Job(source={"dataSourceDescriptor": "s3", "params": {"bucketName": bucket, "name": "tree/"}},
                 partitioner="passthrough", app="identity", destination=f"s3://{bucket}/out/")
    (ref,) = job.plan(scheduler="sync")
    assert ref.names == ("a.txt", "sub/b.txt", "sub/deeper/c.txt")
    assert ref.size == sum(len(k) for k in ("tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c.txt"))


def test_local_source_to_plain_s3_url_destination(s3, client, tmp_path):
    fs, bucket = s3
    src = tmp_path / "in.txt"
    src.write_bytes(text(300))
    job = bn.Job(source=str(src), partitioner="split-lines", app=upper, assembler="concat",
                 destination=f"s3://{bucket}/results/run1", params={"partitioner": {"lines_per_chunk": 70},
                                                                    "assembler": {"output_name": "upper.txt"}})
    result = job.run(client=client)
    assert result.n_chunks == 5
    assert fs.cat_file(f"{bucket}/results/run1/upper.txt") == text(300).upper()
    check_success(fs, f"{bucket}/results/run1", result)


# -- failures leave the destination alone ------------------------------------------------


@pytest.fixture
def earlier_output(s3):
    """A destination prefix that already holds the output of an earlier run."""
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/out/output.bin", b"earlier output\n")
    fs.pipe_file(f"{bucket}/out/_SUCCESS", b'{"jobId": "earlier"}')
    return listing(fs, f"{bucket}/out")


def test_failing_chunk_leaves_the_destination_prefix_untouched(s3, client, earlier_output):
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/in.txt", b"fine\n" * 20 + b"boom\n" + b"fine\n" * 20)
    job = bn.Job(source=f"s3://{bucket}/in.txt", partitioner="split-lines", app=upper, assembler="concat",
                 destination=f"s3://{bucket}/out/", params={"partitioner": {"lines_per_chunk": 10}},
                 config={"maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed) as info:
        job.run(client=client)
    assert "1 of 5 chunk(s) failed" in str(info.value) and "this chunk is broken" in str(info.value)
    assert listing(fs, f"{bucket}/out") == earlier_output


def test_failing_assembly_leaves_the_destination_prefix_untouched(s3, client, earlier_output):
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/in.txt", b"a\nb\n")

    def half_then_fail(results, output_dir, params):
        with open(f"{output_dir}/output.bin", "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    job = bn.Job(source=f"s3://{bucket}/in.txt", app="identity", assembler=half_then_fail,
                 destination=f"s3://{bucket}/out/")
    with pytest.raises(bn.JobFailed, match="OSError: disk full"):
        job.run(client=client)
    assert listing(fs, f"{bucket}/out") == earlier_output


# -- validation ---------------------------------------------------------------------------


def test_missing_source_bucket_fails_validation(s3):
    fs, bucket = s3
    job = bn.Job(source={"dataSourceDescriptor": "aws", "params": {"bucketName": bucket + "-missing", "name": "in.txt"}},
                 app="identity", destination=f"s3://{bucket}/out/")
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert info.value.fields == ["dataSource"]
    message = str(info.value)
    assert f"invalid job: dataSource: cannot list s3://{bucket}-missing/in.txt" in message
    assert "bucket does not exist" in message and message.count("dataSource") == 1


def test_missing_source_key_fails_validation(s3):
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/present.txt", b"x")
    for source in (f"s3://{bucket}/absent.txt", f"s3://{bucket}/nothing-*.txt",
                   {"dataSourceDescriptor": "s3", "params": {"bucketName": bucket, "name": "absent/"}}):
        job = bn.Job(source=source, app="identity", destination=f"s3://{bucket}/out/")
        with pytest.raises(JobValidationError) as info:
            job.validate()
        assert info.value.fields == ["dataSource"], source
        url = source if isinstance(source, str) else f"s3://{bucket}/absent/"
        assert str(info.value) == f"invalid job: dataSource: nothing matches {url}"


def test_missing_destination_bucket_fails_validation(s3, tmp_path):
    fs, bucket = s3
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    job = bn.Job(source=str(src), app="identity",
                 destination={"dataSourceDescriptor": "aws", "params": {"bucketName": bucket + "-gone", "name": "out/"}})
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert info.value.fields == ["dataDestination"]
    assert str(info.value) == (f"invalid job: dataDestination: bucket '{bucket}-gone' does not exist "
                               f"or is not reachable (s3://{bucket}-gone/out/)")
    # Nothing ran, nothing was recorded.
    assert not fs.exists(bucket + "-gone")


def test_descriptor_without_bucket_name_names_the_param(tmp_path):
    job = bn.Job(source={"dataSourceDescriptor": "aws", "params": {"name": "in.txt"}}, app="identity",
                 destination={"dataSourceDescriptor": "s3", "params": {"bucketName": ""}})
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert sorted(info.value.fields) == ["dataDestination.params.bucketName", "dataSource.params.bucketName"]


# -- staging on S3 ----------------------------------------------------------------------------


def upper_once_staged(chunk_path, results_dir, params):
    """``upper``, after checking that the job is staged where ``params["staging"]`` says."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(params["staging"])
    names = {key.rsplit("/", 1)[-1] for key in fs.find(root)}
    assert {"job.json", "plan.json"} <= names, names
    return upper(chunk_path, results_dir, params)


def test_staging_on_s3_end_to_end(s3, client, tmp_path):
    fs, bucket = s3
    src = tmp_path / "in.txt"
    data = text(2000)
    src.write_bytes(data)
    out = tmp_path / "out"
    staging = f"s3://{bucket}/staging"
    job = bn.Job(source=str(src), partitioner="split-lines", app=upper_once_staged, assembler="concat",
                 destination=str(out), params={"partitioner": {"chunk_size": 8192}, "app": {"staging": staging}},
                 config={"staging": staging, "maxTaskRetries": 0})
    result = job.run(client=client)
    assert result.n_chunks > 5
    produced = (out / "output.bin").read_bytes()
    assert produced == data.upper()
    (entry,) = json.loads((out / "_SUCCESS").read_text())["files"]
    assert entry["crc32c"] == crc32c(produced) and entry["size"] == len(produced)
    # The staged chunks are gone from the bucket once the job is complete.
    assert listing(fs, f"{bucket}/staging") == {}


def test_staging_on_s3_keeps_commits_when_asked(s3, client):
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/in.txt", b"".join(b"%d\n" % i for i in range(6)))
    job = bn.Job(source=f"s3://{bucket}/in.txt", partitioner="split-lines", app=upper, assembler="zip",
                 destination=f"s3://{bucket}/out/", params={"partitioner": {"lines_per_chunk": 2}},
                 config={"staging": f"s3://{bucket}/staging", "keepStaging": True})
    result = job.run(client=client, id="kept-staging")
    staged = listing(fs, f"{bucket}/staging/kept-staging")
    commits = sorted(k for k in staged if k.startswith("commits/"))
    assert commits == [f"commits/{i:08d}.json" for i in range(3)]
    for i, key in enumerate(commits):
        record = json.loads(staged[key])
        assert record["index"] == i and record["files"] == [["result.bin", 4]]
        assert staged[f"results/{i:08d}-{record['token']}/result.bin"] == b"%d\n%d\n" % (2 * i, 2 * i + 1)
    assert json.loads(staged["plan.json"])[0]["url"] == f"s3://{bucket}/in.txt"
    with zipfile.ZipFile(io.BytesIO(fs.cat_file(f"{bucket}/out/results_archive.zip"))) as zf:
        assert zf.read("chunk_0002/result.bin") == b"4\n5\n"
    check_success(fs, f"{bucket}/out", result)


def test_staging_on_s3_with_passthrough_and_several_results(s3, tmp_path):
    # Results read back from the bucket (no local path) by the passthrough assembler.
    fs, bucket = s3
    src = tmp_path / "in.txt"
    src.write_text("a\nb\nc\n")

    def two_files(chunk_path, results_dir, params):
        data = open(chunk_path, "rb").read()
        open(f"{results_dir}/copy.txt", "wb").write(data)
        open(f"{results_dir}/size.txt", "w").write(str(len(data)))

    out = tmp_path / "out"
    job = bn.Job(source=str(src), partitioner="split-lines", app=two_files, assembler="passthrough",
                 destination=str(out), params={"partitioner": {"lines_per_chunk": 1}},
                 config={"staging": f"s3://{bucket}/stage"})
    job.run(scheduler="sync")
    assert {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*.txt")} == {
        "chunk_0000/copy.txt": "a\n", "chunk_0000/size.txt": "2",
        "chunk_0001/copy.txt": "b\n", "chunk_0001/size.txt": "2",
        "chunk_0002/copy.txt": "c\n", "chunk_0002/size.txt": "2",
    }
    assert listing(fs, f"{bucket}/stage") == {}


def test_bad_staging_url_fails_validation(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    job = bn.Job(source=str(src), app="identity", destination=str(tmp_path / "out"), config={"staging": ""})
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert info.value.fields == ["config.staging"]
