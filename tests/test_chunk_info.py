"""What a chunk knows about itself (CHUNK_INFO), chunks a partitioner rewrites
on the worker, and concat's header mode: the core the data-aware components
build on."""

from __future__ import annotations

import json
import os

import pytest

import bytenite_nb as bn
from bytenite_nb.partitioners import ChunkRef, Partitioner

SEEN_BY_ASSEMBLER: list = []


def keep_info(chunk_path, results_dir, params, chunk_info):
    with open(os.path.join(results_dir, "info.json"), "w") as f:
        json.dump(chunk_info, f)


class WithHeader(Partitioner):
    """Rows of a CSV in groups of ``rows`` lines, each chunk given the header line."""

    schema = {"type": "object", "properties": {"rows": {"type": "integer", "minimum": 1}},
              "additionalProperties": False}

    def plan(self, source, params):
        for f in source.files:
            with source.open(f.url) as src:
                data = src.read()  # a test partitioner: small files only
            lines = data.splitlines(keepends=True)
            header, body = len(lines[0]), lines[1:]
            offset = header
            for first in range(0, len(body), params["rows"]):
                group = body[first:first + params["rows"]]
                size = sum(len(line) for line in group)
                yield ChunkRef(url=f.url, start=offset, end=offset + size, size=size + header, label=f.name,
                               meta={"rows": [first, first + len(group)], "header_bytes": header})
                offset += size

    def materialise(self, ref, dest, storage_options=None):
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(ref.url, **(storage_options or {}))
        with fs.open(path, "rb") as src, open(dest, "wb") as out:
            out.write(src.read(ref.meta["header_bytes"]))
            src.seek(ref.start)
            out.write(src.read(ref.end - ref.start))
        return os.path.getsize(dest)


def collect(results, output_dir, params):
    SEEN_BY_ASSEMBLER[:] = [r.info for r in results]
    with open(os.path.join(output_dir, "n.txt"), "w") as f:
        f.write(str(len(results)))


CSV = 'id,"note"\n1,"a, b"\n2,"two\nlines"\n3,c\n4,d\n5,"e ""q"""\n'


def test_apps_and_assemblers_see_what_their_chunk_covers(tmp_path, client):
    (tmp_path / "in.txt").write_text("a\nb\nc\nd\n")
    for app in (keep_info, {"command": ["sh", "-c", 'printf "%s" "$CHUNK_INFO" > "$TASK_RESULTS_DIR/info.json"']}):
        job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app=app, assembler="passthrough",
                     destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 2}})
        job.run(client=client, force=True)
        infos = [json.loads((tmp_path / "out" / f"chunk_000{i}" / "info.json").read_text()) for i in (0, 1)]
        assert [(i["index"], i["start"], i["end"]) for i in infos] == [(0, 0, 4), (1, 4, 8)]
        assert infos[1]["covers"].endswith("in.txt[4:8]")
    job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app="identity", assembler=collect,
                 destination=str(tmp_path / "out2"), params={"partitioner": {"lines_per_chunk": 1}})
    job.run(scheduler="sync")
    assert [(i["index"], i["start"]) for i in SEEN_BY_ASSEMBLER] == [(0, 0), (1, 2), (2, 4), (3, 6)]


class NumbersItsOwn(Partitioner):
    """Every file in halves, each half's meta giving its own ``index`` within its file, as a
    partitioner might: it must not pass for the chunk's number in the job."""

    schema = {"type": "object", "properties": {}, "additionalProperties": False}

    def plan(self, source, params):
        for f in source.files:
            for half, (start, end) in enumerate(((0, f.size // 2), (f.size // 2, f.size))):
                yield ChunkRef(url=f.url, start=start, end=end, label=f.name, meta={"index": half, "half": half})


def test_a_partitioners_meta_index_cannot_override_the_chunk_number(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / "in" / name).write_text("0123456789")
    command = {"command": ["sh", "-c", 'printf "%s" "$CHUNK_INFO" > "$TASK_RESULTS_DIR/info.json"; '
                                       'printf "%s" "$CHUNK_NUMBER" > "$TASK_RESULTS_DIR/number.txt"']}
    job = bn.Job(source=str(tmp_path / "in"), partitioner=NumbersItsOwn(), app=command, assembler="passthrough",
                 destination=str(tmp_path / "out"))
    assert job.run(scheduler="sync").n_chunks == 6
    folders = [tmp_path / "out" / f"chunk_000{i}" for i in range(6)]
    infos = [json.loads((folder / "info.json").read_text()) for folder in folders]
    assert [i["index"] for i in infos] == [int((folder / "number.txt").read_text()) for folder in folders] \
        == list(range(6))
    assert [(i["label"], i["half"]) for i in infos] == [(n, h) for n in ("a.txt", "b.txt", "c.txt") for h in (0, 1)]
    job = bn.Job(source=str(tmp_path / "in"), partitioner=NumbersItsOwn(), app="identity", assembler=collect,
                 destination=str(tmp_path / "out2"))
    job.run(scheduler="sync")
    assert [i["index"] for i in SEEN_BY_ASSEMBLER] == list(range(6))


def test_a_partitioner_rewrites_its_chunks_on_the_worker_and_concat_keeps_one_header(tmp_path, client):
    (tmp_path / "t.csv").write_bytes(CSV.encode())
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner=WithHeader(), app=keep_info_and_copy,
                 assembler="concat", destination=str(tmp_path / "out"),
                 params={"partitioner": {"rows": 2}, "assembler": {"header": True, "pattern": "*.csv",
                                                                    "output_name": "t.csv"}})
    result = job.run(client=client)
    assert result.n_chunks == 3
    # every chunk a table of its own, the header first; the output the input, byte for byte
    assert (tmp_path / "out" / "t.csv").read_bytes() == CSV.encode()


def keep_info_and_copy(chunk_path, results_dir, params, chunk_info):
    data = open(chunk_path, "rb").read()
    assert data.startswith(b'id,"note"\n'), data
    open(os.path.join(results_dir, f"part{chunk_info['rows'][0]}.csv"), "wb").write(data)


def test_concat_header_refuses_tables_whose_headers_differ(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,z\n3,4\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("before")
    job = bn.Job(source=str(tmp_path / "*.csv"), partitioner="files", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"assembler": {"header": True}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "chunk 1 (result.bin): its header b'x,z\\n' differs from chunk 0's" in str(e.value)
    assert sorted(os.listdir(tmp_path / "out")) == ["keep.txt"]


def test_concat_header_keeps_quoted_newlines_in_a_header(tmp_path):
    header = 'a,"multi\nline"\n'
    (tmp_path / "a.csv").write_text(header + "1,2\n")
    (tmp_path / "b.csv").write_text(header + "3,4\n")
    job = bn.Job(source=str(tmp_path / "*.csv"), partitioner="files", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"assembler": {"header": True, "output_name": "all.csv"}})
    job.run(scheduler="sync")
    assert (tmp_path / "out" / "all.csv").read_text() == header + "1,2\n3,4\n"
