"""on_bad: a record that cannot be read fails the job naming where it is, or
is skipped and counted in _SUCCESS: what the plan, a chunk's materialising
and the assembler skip all reach it, and a failed job publishes nothing."""

from __future__ import annotations

import json
import os

import pytest

import bytenite_nb as bn
from bytenite_nb.bad_records import BadRecords, collecting, summary
from bytenite_nb.exceptions import BadRecordError, FieldError
from bytenite_nb.partitioners import ChunkRef, Partitioner
from bytenite_nb.bad_records import ON_BAD_SCHEMA


class NumbersOnly(Partitioner):
    """One chunk per line; a line that is not a number is a bad record, found
    by the plan when it starts with ``!`` and on the worker otherwise."""

    schema = {"type": "object", "properties": {"on_bad": ON_BAD_SCHEMA}, "additionalProperties": False}

    def plan(self, source, params):
        bad = BadRecords.for_params(params)
        for f in source.files:
            with source.open(f.url) as src:
                data = src.read()
            offset = 0
            for n, line in enumerate(data.splitlines(keepends=True), 1):
                if line.startswith(b"!"):
                    bad.add("a line the plan refuses", file=f.name, line=n, offset=offset, record=line)
                else:
                    yield ChunkRef(url=f.url, start=offset, end=offset + len(line), label=f.name,
                                   meta={"line": n, "on_bad": params.get("on_bad", "fail")})
                offset += len(line)

    def materialise(self, ref, dest, storage_options=None):
        size = super().materialise(ref, dest, storage_options)
        with open(dest, "rb") as f:
            text = f.read()
        if not text.strip().isdigit():
            BadRecords(ref.meta["on_bad"]).add("not a number", file=ref.label, line=ref.meta["line"],
                                               offset=ref.start, chunk=ref.index, record=text)
            open(dest, "wb").close()
            return 0
        return size


def sum_numbers(results, output_dir, params):
    bad = BadRecords.for_params(params)
    total = 0
    for r in results:
        for f in r.files:
            text = open(f.local_path).read().strip()
            if text == "13":
                bad.add("unlucky", chunk=r.index, file=f.name)
            elif text:
                total += int(text)
    with open(os.path.join(output_dir, "sum.txt"), "w") as out:
        out.write(str(total))


DATA = "1\n!x\n2\nthree\n13\n4\n"


def job(tmp_path, on_bad):
    (tmp_path / "in.txt").write_text(DATA)
    return bn.Job(source=str(tmp_path / "in.txt"), partitioner=NumbersOnly(), app="identity", assembler=sum_numbers,
                  destination=str(tmp_path / "out"),
                  params={"partitioner": {"on_bad": on_bad}, "assembler": {"on_bad": on_bad}})


def test_skipped_records_of_every_stage_are_counted_in_success(tmp_path, client):
    result = job(tmp_path, "skip").run(client=client)
    assert result.warnings == ['3 bad record(s) skipped (on_bad: skip); _SUCCESS lists them under "skipped"']
    assert (tmp_path / "out" / "sum.txt").read_text() == "7"
    skipped = json.loads((tmp_path / "out" / "_SUCCESS").read_text())["skipped"]
    assert skipped["count"] == 3
    by_reason = {r["reason"]: r for r in skipped["records"]}
    assert by_reason["a line the plan refuses"] == {"reason": "a line the plan refuses", "file": "in.txt",
                                                    "line": 2, "offset": 2, "record": "!x\n"}
    assert by_reason["not a number"]["chunk"] == 2 and by_reason["not a number"]["line"] == 4
    assert by_reason["unlucky"]["chunk"] == 3


def test_fail_names_the_file_and_line_and_publishes_nothing(tmp_path):
    with pytest.raises(bn.JobFailed) as err:
        job(tmp_path, "fail").run(scheduler="sync")
    assert "in.txt: line 2 (byte 2): a line the plan refuses" in str(err.value)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_bad_record_found_on_a_worker_fails_its_chunk_at_once(tmp_path):
    (tmp_path / "in.txt").write_text("1\nthree\n")
    j = bn.Job(source=str(tmp_path / "in.txt"), partitioner=NumbersOnly(), app="identity", assembler="concat",
               destination=str(tmp_path / "out"), config={"maxTaskRetries": 3, "retryBackoff": 0})
    with pytest.raises(bn.JobFailed) as err:
        j.run(scheduler="sync")
    result = err.value.result
    assert "chunk 1: in.txt: line 2 (byte 2): not a number" in str(err.value)
    failed = [c for c in result.chunks if c["state"] == "FAILED"]
    assert [c["index"] for c in failed] == [1] and failed[0]["attempts"] == 1  # not retried: a permanent error
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_policy_is_checked_and_summary_keeps_the_exact_count():
    with pytest.raises(FieldError, match="on_bad: expected one of fail, skip, got 'ignore'"):
        BadRecords.for_params({"on_bad": "ignore"})
    with collecting() as found:
        bad = BadRecords("skip")
        for i in range(1500):
            bad.add("x", line=i + 1)
    got = summary(found, {"count": 2, "records": [{"reason": "earlier"}] * 2})
    assert got["count"] == 1502 and len(got["records"]) == 1000
    with pytest.raises(BadRecordError) as err:
        BadRecords().add("timestamp '2026-13-01' does not parse", file="a.log", line=9)
    assert (err.value.file, err.value.line) == ("a.log", 9)
