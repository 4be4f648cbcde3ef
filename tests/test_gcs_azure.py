"""Google Cloud Storage and Azure Blob Storage as sources and destinations,
through their emulators on loopback (gcp-storage-emulator, azurite) and the
real LocalCluster: the workers reach them exactly as they would reach the
clouds, with endpoints and credentials from each backend's standard
environment (see tests/conftest.py) or from the job's storage options.

Every test runs once per store: ``[gcs]`` and ``[azure]``.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import zipfile
from dataclasses import dataclass
from typing import Any

import nbformat
import papermill
import pytest

import bytenite_nb as bn
from bytenite_nb import store as st
from bytenite_nb.exceptions import JobValidationError
from bytenite_nb.papermill_io import handler
from tests.helpers import check_success_objects


@dataclass
class Bucket:
    """A fresh bucket (GCS) or container (Azure) on an emulator, and how a job names it."""

    kind: str
    fs: Any
    name: str
    scheme: str        # what plain URLs say: gs, az
    other_scheme: str  # the backend's other spelling: gcs, abfs
    descriptor: str    # the ByteNite descriptor: gcp, azure
    secrets: tuple     # credentials the session gives this store (none for the anonymous GCS emulator)

    def url(self, key: str = "", scheme: str | None = None) -> str:
        return f"{scheme or self.scheme}://{self.name}/{key}"

    def descriptor_for(self, key: str, bucket: str | None = None) -> dict:
        return {"dataSourceDescriptor": self.descriptor, "params": {"bucketName": bucket or self.name, "name": key}}

    def put(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.name}/{key}", data)

    def listing(self, prefix: str) -> dict[str, bytes]:
        """Every object under ``prefix`` (relative key -> bytes), read fresh from the emulator."""
        self.fs.invalidate_cache()
        root = f"{self.name}/{prefix}".rstrip("/")
        return {key[len(root):].lstrip("/"): self.fs.cat_file(key) for key in self.fs.find(root)}


@pytest.fixture(params=["gcs", "azure"])
def bucket(request) -> Bucket:
    fs, name = request.getfixturevalue(request.param)
    if request.param == "gcs":
        return Bucket("gcs", fs, name, "gs", "gcs", "gcp", ())
    azurite = request.getfixturevalue("azurite_server")
    return Bucket("azure", fs, name, "az", "abfs", "azure", (azurite.key,))


def text(n_lines: int, tag: str = "") -> bytes:
    return "".join(f"{tag}line {i:05d} {'y' * (i % 41)}\n" for i in range(n_lines)).encode()


def check_success(b: Bucket, prefix: str, result, scheme: str | None = None) -> dict:
    """``_SUCCESS`` under ``prefix`` lists exactly the other objects there, with true sizes and
    checksums, and names them with the scheme the destination was given with."""
    return check_success_objects(b.listing(prefix), result, f"{scheme or b.scheme}://{b.name}/{prefix}")


def everything_stored(home) -> str:
    """Every byte under a BYTENITE_NB_HOME: the job store's SQL dump, and every file
    (database, write-ahead log, staging)."""
    parts = []
    db = os.path.join(home, "jobs.sqlite")
    if os.path.exists(db):
        conn = sqlite3.connect(db)
        try:
            parts.append("\n".join(conn.iterdump()))
        finally:
            conn.close()
    for folder, _, names in os.walk(home):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                parts.append(f.read().decode("latin-1"))
    return "\n".join(parts)


def upper(chunk_path, results_dir, params):
    with open(chunk_path, "rb") as f:
        data = f.read()
    if b"boom" in data:
        raise RuntimeError("this chunk is broken")
    return data.upper()


# -- jobs from a descriptor to a plain URL ------------------------------------------------


def test_descriptor_source_split_lines_identity_concat(bucket, client, bnb_home):
    b = bucket
    data = text(3000)
    b.put("in/data.txt", data)
    job = bn.Job(source=b.descriptor_for("in/data.txt"), destination=b.url("out/"),
                 partitioner="split-lines", app="identity", assembler="concat",
                 params={"partitioner": {"chunk_size": 16 * 1024, "read_ahead": 100}})
    refs = job.plan(client=client)
    assert len(refs) == len(data) // (16 * 1024) + 1
    assert {r.url for r in refs} == {b.url("in/data.txt")}
    assert b"".join(data[r.start:r.end] for r in refs) == data
    result = job.run(client=client)
    assert result.ok and result.n_chunks == len(refs)
    assert result.output_urls == [b.url("out/output.bin")]
    assert b.fs.cat_file(f"{b.name}/out/output.bin") == data
    manifest = check_success(b, "out", result)
    assert (manifest["partitioner"], manifest["assembler"]) == ("split-lines", "concat")
    # The source was only read.
    assert b.listing("in") == {"data.txt": data}
    # The record says where the output went, and holds no credential.
    record = st.default_store().get_job(result.job_id)
    assert record["state"] == st.COMPLETE
    assert record["spec"]["dataSource"] == b.descriptor_for("in/data.txt")
    stored = everything_stored(bnb_home)
    assert result.job_id in stored  # the scan does see the records
    for secret in b.secrets:
        assert secret not in stored and secret not in json.dumps(manifest)


def test_descriptor_folder_source_files_zip_to_the_other_scheme(bucket, client):
    b = bucket
    logs = {f"logs/2026/day{i}.log": text(40 + i, tag=f"d{i} ") for i in range(3)}
    logs["logs/2026/deeper/day3.log"] = text(7, tag="d3 ")
    for key, data in logs.items():
        b.put(key, data)
    b.put("logs/2025/day0.log", b"last year\n")
    # gcs:// and abfs:// are the same stores as gs:// and az://
    job = bn.Job(source=b.descriptor_for("logs/2026/"), partitioner="files", app=upper, assembler="zip",
                 destination=b.url("archive", scheme=b.other_scheme))
    assert [r.label for r in job.plan(client=client)] == ["day0.log", "day1.log", "day2.log", "deeper/day3.log"]
    result = job.run(client=client)
    assert result.n_chunks == 4
    check_success(b, "archive", result, scheme=b.other_scheme)
    with zipfile.ZipFile(io.BytesIO(b.fs.cat_file(f"{b.name}/archive/results_archive.zip"))) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == {
            "chunk_0000/result.bin": logs["logs/2026/day0.log"].upper(),
            "chunk_0001/result.bin": logs["logs/2026/day1.log"].upper(),
            "chunk_0002/result.bin": logs["logs/2026/day2.log"].upper(),
            "chunk_0003/result.bin": logs["logs/2026/deeper/day3.log"].upper(),
        }


def test_glob_source_and_a_second_run_replaces_the_output(bucket, client):
    b = bucket
    for i in range(3):
        b.put(f"parts/p{i}.txt", f"part {i}\n".encode())
    b.put("parts/notes.md", b"not a part\n")
    first = bn.Job(source=b.url("parts/p*.txt"), partitioner="files", app="identity", assembler="passthrough",
                   destination=b.url("res"))
    first.run(client=client)
    assert sorted(b.listing("res")) == ["_SUCCESS", "chunk_0000/result.bin", "chunk_0001/result.bin",
                                        "chunk_0002/result.bin"]
    # A second run with fewer outputs: what the first run wrote and this one did not is gone.
    second = bn.Job(source=b.url("parts/p1*.txt"), partitioner="files", app=upper, assembler="passthrough",
                    destination=b.url("res"))
    result = second.run(client=client)
    objects = b.listing("res")
    assert objects.pop("chunk_0000/result.bin") == b"PART 1\n"
    assert list(objects) == ["_SUCCESS"]
    check_success(b, "res", result)


# -- failures leave the destination alone ---------------------------------------------------


@pytest.fixture
def earlier_output(bucket):
    """A destination that already holds the output of an earlier run."""
    bucket.put("out/output.bin", b"earlier output\n")
    bucket.put("out/_SUCCESS", b'{"jobId": "earlier"}')
    return bucket.listing("out")


def test_failing_chunk_leaves_the_destination_untouched(bucket, client, earlier_output):
    b = bucket
    b.put("in.txt", b"fine\n" * 20 + b"boom\n" + b"fine\n" * 20)
    job = bn.Job(source=b.descriptor_for("in.txt"), partitioner="split-lines", app=upper, assembler="concat",
                 destination=b.url("out/"), params={"partitioner": {"lines_per_chunk": 10}},
                 config={"maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed) as info:
        job.run(client=client)
    assert "1 of 5 chunk(s) failed" in str(info.value) and "this chunk is broken" in str(info.value)
    assert b.listing("out") == earlier_output
    assert st.default_store().get_job(info.value.result.job_id)["state"] == st.FAILED


def test_failing_assembly_leaves_the_destination_untouched(bucket, client, earlier_output):
    b = bucket
    b.put("in.txt", b"a\nb\n")

    def half_then_fail(results, output_dir, params):
        with open(f"{output_dir}/output.bin", "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    job = bn.Job(source=b.descriptor_for("in.txt"), app="identity", assembler=half_then_fail,
                 destination=b.url("out/"))
    with pytest.raises(bn.JobFailed, match="OSError: disk full"):
        job.run(client=client)
    assert b.listing("out") == earlier_output


# -- validation -------------------------------------------------------------------------------


def test_missing_source_bucket_fails_validation(bucket):
    b = bucket
    missing = b.name + "-missing"
    job = bn.Job(source=b.descriptor_for("in.txt", bucket=missing), app="identity", destination=b.url("out/"))
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert info.value.fields == ["dataSource"]
    assert str(info.value) == (f"invalid job: dataSource: cannot list {b.scheme}://{missing}/in.txt: "
                               f"bucket {missing!r} does not exist")
    assert st.default_store().list_jobs() == []


def test_missing_source_object_fails_validation(bucket):
    b = bucket
    b.put("present.txt", b"x")
    for source, url in ((b.url("absent.txt"), b.url("absent.txt")),
                        (b.url("nothing-*.txt"), b.url("nothing-*.txt")),
                        (b.descriptor_for("absent/"), b.url("absent/"))):
        job = bn.Job(source=source, app="identity", destination=b.url("out/"))
        with pytest.raises(JobValidationError) as info:
            job.validate()
        assert info.value.fields == ["dataSource"], source
        assert str(info.value) == f"invalid job: dataSource: nothing matches {url}"


def test_missing_destination_bucket_fails_validation(bucket, tmp_path):
    b = bucket
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    gone = b.name + "-gone"
    for destination, url in ((b.descriptor_for("out/", bucket=gone), f"{b.scheme}://{gone}/out/"),
                             (f"{b.scheme}://{gone}/out/", f"{b.scheme}://{gone}/out/"),
                             (f"{b.other_scheme}://{gone}", f"{b.other_scheme}://{gone}")):
        job = bn.Job(source=str(src), app="identity", destination=destination)
        with pytest.raises(JobValidationError) as info:
            job.run(scheduler="sync")
        assert info.value.fields == ["dataDestination"], destination
        assert str(info.value) == (f"invalid job: dataDestination: bucket {gone!r} does not exist "
                                   f"or is not reachable ({url})")
    # Nothing ran, nothing was recorded, nothing was made.
    assert st.default_store().list_jobs() == []
    b.fs.invalidate_cache()
    assert not b.fs.exists(gone)


def test_descriptor_without_bucket_name_names_the_param(bucket):
    b = bucket
    job = bn.Job(source={"dataSourceDescriptor": b.descriptor, "params": {"name": "in.txt"}}, app="identity",
                 destination={"dataSourceDescriptor": b.descriptor, "params": {"bucketName": "", "name": "out/"}})
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert sorted(info.value.fields) == ["dataDestination.params.bucketName", "dataSource.params.bucketName"]


# -- credentials in a job's storage options (Azure) -----------------------------------------------


def test_azure_credentials_from_storage_options_reach_workers_and_no_record(azure, azurite_server, client,
                                                                           bnb_home, tmp_path):
    """The job names a second azurite account whose key is only in the job's storage
    options: the workers use it, and it is in no record, staging file, manifest or saved job."""
    import adlfs

    az = azurite_server
    other = adlfs.AzureBlobFileSystem(connection_string=az.connection_string(az.other_account, az.other_key))
    container = azure[1] + "-other"
    other.mkdir(container)
    try:
        data = text(500)
        other.pipe_file(f"{container}/in.txt", data)
        options = {"connection_string": az.connection_string(az.other_account, az.other_key)}
        job = bn.Job(source={"dataSourceDescriptor": "azure",
                             "params": {"bucketName": container, "name": "in.txt"}},
                     destination=f"az://{container}/out/", partitioner="split-lines", app=upper,
                     assembler="concat", params={"partitioner": {"lines_per_chunk": 100}},
                     storage_options=options, config={"keepStaging": True})
        result = job.run(client=client, id="other-account")
        assert result.n_chunks == 5
        other.invalidate_cache()
        assert other.cat_file(f"{container}/out/output.bin") == data.upper()
        success = other.cat_file(f"{container}/out/_SUCCESS").decode()
        assert json.loads(success)["jobId"] == "other-account"
        # The development account (the environment's) has no such container: the options were used.
        azure[0].invalidate_cache()
        assert not azure[0].exists(container)
        # The key is nowhere: store, events, staging, manifest, result, the job written back.
        stored = everything_stored(bnb_home)
        assert "other-account" in stored  # the scan does see the records
        for place in (stored, success, json.dumps(result.to_dict()), job.to_json(),
                      json.dumps(st.default_store().events(job_id="other-account"), default=str)):
            assert az.other_key not in place and az.key not in place
        job.save(tmp_path / "job.json")
        assert az.other_key not in (tmp_path / "job.json").read_text()
    finally:
        other.rm(container, recursive=True)


def test_azure_wrong_key_in_storage_options_fails_validation_without_showing_it(azure, azurite_server, tmp_path):
    fs, container = azure
    fs.pipe_file(f"{container}/in.txt", b"x\n")
    wrong = "d3Jvbmcga2V5IGZvciB0aGUgdGVzdHM="
    job = bn.Job(source={"dataSourceDescriptor": "azure", "params": {"bucketName": container, "name": "in.txt"}},
                 app="identity", destination=str(tmp_path / "out"),
                 storage_options={"connection_string": azurite_server.connection_string(key=wrong)})
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert info.value.fields == ["dataSource"]
    assert wrong not in str(info.value) and azurite_server.key not in str(info.value)


# -- papermill through the bytenite-nb I/O handler ------------------------------------------------


def job_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("n = 2\nword = 'ab'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print('result:', word * n)")]
    return nb


def printed(nb_text: str) -> str:
    nb = nbformat.reads(nb_text, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.parametrize("out_scheme", ["main", "other"])
def test_papermill_reads_and_writes_notebooks(bucket, out_scheme):
    from papermill.iorw import papermill_io

    b = bucket
    scheme = b.scheme if out_scheme == "main" else b.other_scheme
    b.put("notebooks/in.ipynb", nbformat.writes(job_notebook()).encode())
    source, output = b.url("notebooks/in.ipynb"), b.url("runs/out.ipynb", scheme=scheme)
    assert papermill_io.get_handler(source) is handler and papermill_io.get_handler(output) is handler
    papermill.execute_notebook(source, output, parameters={"word": "cloud", "n": 3}, progress_bar=False)
    written = b.fs.cat_file(f"{b.name}/runs/out.ipynb").decode()
    assert "result: cloudcloudcloud" in printed(written)
    assert not any(secret in written for secret in b.secrets)
    assert handler.listdir(b.url("runs", scheme=scheme)) == [b.url("runs/out.ipynb", scheme=scheme)]


def test_papermill_missing_notebook_is_an_error(bucket):
    b = bucket
    with pytest.raises(FileNotFoundError):
        papermill.execute_notebook(b.url("notebooks/absent.ipynb"), b.url("runs/out.ipynb"), progress_bar=False)
    assert b.listing("runs") == {}
