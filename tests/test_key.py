"""The key partitioner: rows regrouped by key columns into hash buckets, distinct
keys or key ranges, spilled to staging, each chunk one table."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn
from bytenite_nb import config
from bytenite_nb.partitioners.key import fnv1a_64, fnv1a_64_array

CELL = hs.text(alphabet=hs.sampled_from(list('ab ,"\n\r;é€1')), max_size=6)
KEY = hs.text(alphabet=hs.sampled_from(list("xyz1é\n,\"")), max_size=3)


def csv_text(rows, delimiter=",", lineterminator="\r\n") -> str:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator=lineterminator).writerows(rows)
    return out.getvalue()


def parse(data: bytes, delimiter=",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=delimiter))


def run_key(tmp_path, name: str, data: bytes, params: dict, client=None, on_bad=None):
    """key -> identity -> concat(header), and key -> identity -> passthrough (the chunks one by one)."""
    src = tmp_path / name
    src.write_bytes(data)
    kwargs = {"client": client} if client is not None else {"scheduler": "sync"}
    header = not name.endswith((".jsonl", ".parquet"))
    job = bn.Job(source=str(src), partitioner="key", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": params, "assembler": {"header": header, "output_name": name}})
    job.run(force=True, **kwargs)
    job.copy(assembler="passthrough", destination=str(tmp_path / "parts"),
             params={"partitioner": params}).run(force=True, **kwargs)
    parts = sorted(d for d in os.listdir(tmp_path / "parts") if d.startswith("chunk_"))
    pieces = [(tmp_path / "parts" / d / "result.bin").read_bytes() for d in parts]
    return (tmp_path / "out" / name).read_bytes(), pieces, job.plan(**kwargs)


def test_fnv1a_64_known_values():
    # the published FNV-1a 64-bit test vectors, and buckets users can check by hand
    assert fnv1a_64(b"") == 0xCBF29CE484222325
    assert fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a_64(b"foobar") == 0x85944171F73967E8
    assert [fnv1a_64(k.encode()) % 64 for k in ("paris", "tokyo", "zürich", "")] == [0, 57, 32, 37]


@settings(max_examples=60, deadline=None)
@given(hs.lists(hs.text(max_size=20), max_size=40))
def test_fnv1a_64_over_a_column_is_the_same_as_one_by_one(texts):
    import pyarrow as pa

    assert fnv1a_64_array(pa.array(texts, type=pa.string())).tolist() == [fnv1a_64(t.encode()) for t in texts]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=hs.lists(hs.tuples(KEY, CELL, CELL).map(list), min_size=1, max_size=30), buckets=hs.integers(1, 6),
       block=hs.sampled_from([1024, 2048]))
def test_buckets_round_trip_the_rows_and_each_key_is_in_its_bucket(tmp_path_factory, rows, buckets, block):
    tmp_path = tmp_path_factory.mktemp("key")
    text = csv_text([["k", "note", "x"], *rows])
    output, pieces, refs = run_key(tmp_path, "t.csv", text.encode(), {"columns": ["k"], "buckets": buckets,
                                                                       "block_size": block})
    parsed_out = parse(output)
    assert parsed_out[0] == ["k", "note", "x"]
    assert Counter(map(tuple, parsed_out[1:])) == Counter(map(tuple, rows))  # nothing lost, nothing duplicated
    assert sum(r.meta["rows"] for r in refs) == len(rows)
    assert [r.meta["bucket"] for r in refs] == sorted({fnv1a_64(r[0].encode()) % buckets for r in rows})
    for ref, piece in zip(refs, pieces):
        table = parse(piece)
        assert table[0] == ["k", "note", "x"] and len(table) - 1 == ref.meta["rows"]
        assert {fnv1a_64(r[0].encode()) % buckets for r in table[1:]} == {ref.meta["bucket"]}


def test_rows_keep_their_bytes_and_an_unterminated_last_row_gets_its_newline(tmp_path):
    text = 'k,v\n"b","x ""q""\ny"\na,1\nb,2\na,"3,4"'
    output, pieces, refs = run_key(tmp_path, "t.csv", text.encode(), {"columns": ["k"], "distinct": True})
    assert [r.meta["key"] for r in refs] == [{"k": "a"}, {"k": "b"}]
    assert pieces == [b'k,v\na,1\na,"3,4"\n', b'k,v\n"b","x ""q""\ny"\nb,2\n']
    assert [r.info()["covers"] for r in refs] == ["key {'k': 'a'}", "key {'k': 'b'}"]
    assert [(r.meta["rows"], r.meta["pieces"]) for r in refs] == [(2, []), (2, [])]  # a preview spills nothing


def test_tables_put_together_must_share_their_header(tmp_path):
    (tmp_path / "a.csv").write_text("k,v\n1,2\n")
    (tmp_path / "b.csv").write_text("k,w\n1,3\n")
    job = bn.Job(source=str(tmp_path / "*.csv"), partitioner="key", app="identity", assembler="concat",
                 destination=str(tmp_path / "o"), params={"partitioner": {"columns": ["k"], "distinct": True}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "b.csv: its header line differs from that of a.csv" in str(e.value)
    (tmp_path / "b.csv").write_text("k,v\n1,3\n0,4")
    job.params["assembler"] = {"header": True}
    job.run(scheduler="sync", force=True)
    assert (tmp_path / "o" / "output.bin").read_text() == "k,v\n0,4\n1,2\n1,3\n"


def test_same_key_same_bucket_across_runs_and_hash_seeds(tmp_path):
    keys = ["alpha", "béta", "", "γ", "1", "01", "x,y", "many words here"]
    rows = [[k, str(i)] for i, k in enumerate(keys * 3)]
    text = csv_text([["k", "i"], *rows]).encode()
    runs = []
    for n in (1, 2):
        (tmp_path / str(n)).mkdir()
        _, pieces, refs = run_key(tmp_path / str(n), "t.csv", text, {"columns": ["k"], "buckets": 7})
        runs.append({row[0]: ref.meta["bucket"] for ref, p in zip(refs, pieces) for row in parse(p)[1:]})
    assert runs[0] == runs[1] and len(runs[0]) == len(keys)
    script = ("import json, sys, pyarrow as pa; from bytenite_nb.partitioners.key import Key; "
              "keys = json.load(sys.stdin); "
              "codes, groups = Key().assign({'k': pa.array(keys)}, {'columns': ['k'], 'buckets': 7}, None); "
              "print(json.dumps(dict(zip(keys, codes.tolist()))))")
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))}
        out = subprocess.run([sys.executable, "-c", script], input=json.dumps(keys), capture_output=True, text=True,
                             env=env, check=True).stdout
        assert json.loads(out) == runs[0]


def test_several_key_columns_and_distinct_keys_in_key_order(tmp_path):
    rows = [["b", "1", "x"], ["a", "2", "y"], ["b", "1", "z"], ["a", "1", "w"]]
    output, pieces, refs = run_key(tmp_path, "t.tsv", csv_text([["k", "j", "v"], *rows], "\t", "\n").encode(),
                                   {"columns": ["k", "j"], "distinct": True})
    assert [r.meta["key"] for r in refs] == [{"k": "a", "j": "1"}, {"k": "a", "j": "2"}, {"k": "b", "j": "1"}]
    assert pieces == [b"k\tj\tv\na\t1\tw\n", b"k\tj\tv\na\t2\ty\n", b"k\tj\tv\nb\t1\tx\nb\t1\tz\n"]


def test_ranges_of_numbers_and_strings_and_a_key_in_no_range(tmp_path):
    rows = [[str(v), f"r{v}"] for v in (5, -3, 12, 0, 9.5, 100)]
    text = csv_text([["n", "r"], *rows], lineterminator="\n").encode()
    _, pieces, refs = run_key(tmp_path, "t.csv", text, {"columns": ["n"], "ranges": [[10, None], [None, 0], [0, 10]]})
    assert [r.meta["range"] for r in refs] == [[None, 0], [0, 10], [10, None]]
    assert [parse(p)[1:] for p in pieces] == [[["-3", "r-3"]], [["5", "r5"], ["0", "r0"], ["9.5", "r9.5"]],
                                              [["12", "r12"], ["100", "r100"]]]
    (tmp_path / "s").mkdir()
    _, pieces, refs = run_key(tmp_path / "s", "t.csv", b"name\nbob\nAnn\nzed\nann\n",
                              {"columns": ["name"], "ranges": [["a", None], ["A", "a"]]})
    assert [parse(p)[1:] for p in pieces] == [[["Ann"]], [["bob"], ["zed"], ["ann"]]]  # code point order: "A" < "a"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "t.csv").write_bytes(b'n,r\n1,"a\nb"\n70,x\n3,y\n')
    job = bn.Job(source=str(tmp_path / "bad" / "t.csv"), partitioner="key", app="identity", assembler="concat",
                 destination=str(tmp_path / "bad" / "out"), params={"partitioner": {"columns": ["n"],
                                                                                    "ranges": [[0, 10]]}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "t.csv: line 4 (byte 12): key 70.0 is in none of the ranges" in str(e.value)
    assert not (tmp_path / "bad" / "out").exists()
    job.params["partitioner"]["on_bad"] = "skip"
    job.params["assembler"] = {"header": True}
    job.run(scheduler="sync")
    assert (tmp_path / "bad" / "out" / "output.bin").read_bytes() == b'n,r\n1,"a\nb"\n3,y\n'
    skipped = json.loads((tmp_path / "bad" / "out" / "_SUCCESS").read_text())["skipped"]
    assert skipped["count"] == 1 and skipped["records"][0]["line"] == 4


def test_parameters_are_checked(tmp_path):
    (tmp_path / "t.csv").write_text("k\n1\n")
    for params, message in (({"columns": ["k"]}, "give exactly one of buckets, distinct or ranges"),
                            ({"columns": ["k"], "buckets": 2, "distinct": True}, "got buckets, distinct"),
                            ({"columns": ["k"], "ranges": [[0, 5], [3, 9]]}, "[0, 5] and [3, 9] overlap"),
                            ({"columns": ["nope"], "buckets": 2}, "t.csv: no column nope")):
        job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="key", app="identity",
                     destination=str(tmp_path / "o"), params={"partitioner": params})
        with pytest.raises(bn.JobFailed) as e:
            job.run(scheduler="sync", force=True)
        assert message in str(e.value)


def test_a_ragged_row_is_named_with_its_offset(tmp_path):
    (tmp_path / "t.csv").write_text("k,v\n1,2\n3\n")
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="key", app="identity", destination=str(tmp_path / "o"),
                 params={"partitioner": {"columns": ["k"], "buckets": 2}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "t.csv: byte 8: a row of 1 fields where the header has 2" in str(e.value)


def test_parquet_and_json_lines(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(300)), "city": [["oslo", "rome", None][i % 3] for i in range(300)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=50)
    job = bn.Job(source=str(tmp_path / "t.parquet"), partitioner="key", app="identity", assembler="passthrough",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": {"columns": ["city"], "distinct": True, "block_size": 1024}})
    refs = job.plan(scheduler="sync")
    assert [(r.meta["key"], r.meta["rows"]) for r in refs] == [({"city": ""}, 100), ({"city": "oslo"}, 100),
                                                              ({"city": "rome"}, 100)]
    job.run(scheduler="sync")
    chunks = [pq.read_table(tmp_path / "out" / d / "result.bin") for d in sorted(os.listdir(tmp_path / "out"))
              if d.startswith("chunk_")]
    assert [set(c.column("city").to_pylist()) for c in chunks] == [{None}, {"oslo"}, {"rome"}]
    assert sorted(pa.concat_tables(chunks).column("id").to_pylist()) == list(range(300))
    lines = "".join(json.dumps({"u": [1, 2.5, "1", None, True][i % 5], "i": i}) + "\n" for i in range(20))
    (tmp_path / "j").mkdir()
    output, pieces, refs = run_key(tmp_path / "j", "t.jsonl", lines.encode(), {"columns": ["u"], "distinct": True})
    assert [(r.meta["key"]["u"], r.meta["rows"]) for r in refs] == [("", 4), ("1", 8), ("2.5", 4), ("true", 4)]
    assert sorted(output.splitlines()) == sorted(lines.encode().splitlines())


def keep_info(chunk_path, results_dir, params, chunk_info):
    pieces = [p[len("file://"):] for p in chunk_info["pieces"]]
    assert pieces and all(os.path.exists(p) for p in pieces)  # spilled, and there while the chunk runs
    with open(os.path.join(results_dir, "info.json"), "w") as f:
        json.dump(chunk_info, f)
    with open(chunk_path, "rb") as src, open(os.path.join(results_dir, "rows.csv"), "wb") as out:
        out.write(src.read())


def test_a_real_job_spills_to_staging_in_parallel_and_cleans_up_with_it(tmp_path, client):
    rows = [[f"k{i % 17}", f'v "{i}"\n{i}'] for i in range(3000)]
    text = csv_text([["k", "v"], *rows]).encode()
    (tmp_path / "t.csv").write_bytes(text)
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="key", app=keep_info, assembler="passthrough",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": {"columns": ["k"], "buckets": 5, "block_size": 8192}})
    result = job.run(client=client)
    infos = [json.loads((tmp_path / "out" / d / "info.json").read_text())
             for d in sorted(os.listdir(tmp_path / "out")) if d.startswith("chunk_")]
    assert result.n_chunks == len(infos) == 5
    pieces = [p for i in infos for p in i["pieces"]]
    staging = config.staging_url()
    assert all(p.startswith(staging + "/") and "/regroup/" in p for p in pieces)
    blocks = {p.split("/regroup/")[1].split("/")[0] for p in pieces}
    assert len(blocks) > 5
    scattered = client.run_on_scheduler(lambda dask_scheduler: {
        str(t[0]) for t in dask_scheduler.transition_log if "regroup-scatter" in str(t[0])})
    assert len(scattered) >= len(blocks)  # each block its own task on the cluster
    assert not any(os.path.exists(p[len("file://"):]) for p in pieces)  # gone with the staging area
    back = [r for d in sorted(os.listdir(tmp_path / "out")) if d.startswith("chunk_")
            for r in parse((tmp_path / "out" / d / "rows.csv").read_bytes())[1:]]
    assert Counter(map(tuple, back)) == Counter(map(tuple, rows))


def fails_on_k3(chunk_path, results_dir, params):
    """Copy the chunk; fail for the bucket holding key k3 while the marker file exists."""
    data = open(chunk_path, "rb").read()
    if b"k3," in data and os.path.exists(params["marker"]):
        raise RuntimeError("cannot handle k3")
    open(os.path.join(results_dir, "rows.csv"), "wb").write(data)


def test_spill_pieces_go_once_their_chunk_commits_and_a_failed_chunk_keeps_its_own(tmp_path, client, monkeypatch):
    from bytenite_nb.engine.chunk import run_chunk
    from bytenite_nb.engine.staging import Staging

    monkeypatch.setenv("BYTENITE_NB_HOME", str(tmp_path / "home"))
    rows = [[f"k{i % 7}", str(i)] for i in range(2000)]
    (tmp_path / "t.csv").write_bytes(csv_text([["k", "v"], *rows]).encode())
    (tmp_path / "marker").write_text("")
    job = bn.Job(source=str(tmp_path / "t.csv"), partitioner="key", app=fails_on_k3, assembler="concat",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": {"columns": ["k"], "distinct": True, "block_size": 4096},
                         "app": {"marker": str(tmp_path / "marker")},
                         "assembler": {"header": True, "output_name": "t.csv"}},
                 config={"minSuccessRatio": 0.8, "maxTaskRetries": 0})
    result = job.run(client=client, id="spills-1")
    assert result.state == "COMPLETE" and len(result.warnings) == 1
    spec = job.resolve()
    staging = Staging.of(spec, "spills-1")
    refs = staging.load_plan()
    failed = [r for r in refs if r.meta["key"] == {"k": "k3"}]
    assert len(failed) == 1 and len(failed[0].meta["pieces"]) > 3

    def exists(url):
        return os.path.exists(url[len("file://"):])

    # Committed chunks' pieces are gone already; the failed chunk keeps its own for a rerun.
    assert all(exists(p) for p in failed[0].meta["pieces"])
    assert not any(exists(p) for r in refs if r is not failed[0] for p in r.meta["pieces"])
    os.remove(tmp_path / "marker")
    rerun = job.run(client=client, id="spills-1", rerun_failed=True)
    assert rerun.state == "COMPLETE" and rerun.resumed_chunks == len(refs) - 1
    back = parse((tmp_path / "out" / "t.csv").read_bytes())
    assert back[0] == ["k", "v"] and Counter(map(tuple, back[1:])) == Counter(map(tuple, rows))

    # A straggler of a committed chunk (its worker lost before it reported) finds the
    # pieces gone and reports the commit that stands, not a failure.
    from bytenite_nb.engine.planning import plan_and_stage

    Staging.of(spec, "spills-2").claim(spec.fingerprint)
    ref = plan_and_stage(spec, "spills-2")[0]
    first = run_chunk(ref, spec, "spills-2")
    assert first["state"] == "DONE" and not any(exists(p) for p in ref.meta["pieces"])
    again = run_chunk(ref, spec, "spills-2")
    assert again["state"] == "DONE" and again["files"] == first["files"]
    # one commit record, the first run's: the straggler committed nothing of its own
    commits = os.path.join(Staging.of(spec, "spills-2").path, "commits")
    records = [json.loads(line) for name in os.listdir(commits) for line in open(os.path.join(commits, name))]
    assert [r["token"] for r in records if r["index"] == ref.index] == [first_token(records, ref.index)]

    # Pieces gone and no commit (staging lost it): a clear error saying what to do, not a bare FileNotFoundError
    Staging.of(spec, "spills-3").claim(spec.fingerprint)
    lost = run_chunk(ref, spec, "spills-3")
    assert lost["state"] == "FAILED" and "regrouped rows" in lost["error"] and "force" in lost["error"], lost


def first_token(records, index):
    return next(r["token"] for r in records if r["index"] == index)


def test_on_object_staging_the_spills_are_objects_and_go_as_chunks_commit(s3, tmp_path, client):
    """Source, staging and destination on S3 (moto's server): the spill pieces are
    objects under the job's staging prefix, each chunk removes its own once
    committed, and the output holds every row once."""
    from bytenite_nb.engine.staging import Staging

    fs, bucket = s3
    rows = [[f"k{i % 11}", f'v "{i}"\n{i}'] for i in range(1500)]
    fs.pipe_file(f"{bucket}/in/t.csv", csv_text([["k", "v"], *rows]).encode())
    job = bn.Job(source=f"s3://{bucket}/in/t.csv", partitioner="key", app="identity",
                 assembler="concat", destination=f"s3://{bucket}/out/",
                 params={"partitioner": {"columns": ["k"], "buckets": 4, "block_size": 4096},
                         "assembler": {"header": True, "output_name": "t.csv"}},
                 config={"staging": f"s3://{bucket}/staging", "keepStaging": True})
    result = job.run(client=client, id="spills-s3")
    assert result.state == "COMPLETE"
    refs = Staging.of(job.resolve(), "spills-s3").load_plan()
    pieces = [p for r in refs for p in r.meta["pieces"]]
    assert len(pieces) > len(refs) and all(p.startswith(f"s3://{bucket}/staging/") for p in pieces)
    assert not any(fs.exists(p) for p in pieces)  # each chunk's went once it committed
    back = parse(fs.cat_file(f"{bucket}/out/t.csv"))
    assert back[0] == ["k", "v"] and Counter(map(tuple, back[1:])) == Counter(map(tuple, rows))

