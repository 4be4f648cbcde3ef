"""The json-objects partitioner and assembler: the elements of a JSON document
at a pointer (or JSON Lines) in chunks, and the document back again."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn
from bytenite_nb.partitioners.json_scan import CHARS, StructureScanner

TEXT = hs.text(alphabet=hs.sampled_from(list('ab,[]{}:"\\\n\t é€\U0001f600/')), max_size=6)
SCALAR = hs.one_of(hs.none(), hs.booleans(), hs.integers(-10**6, 10**6), hs.floats(allow_nan=False,
                   allow_infinity=False), TEXT)
VALUE = hs.recursive(SCALAR, lambda inner: hs.one_of(hs.lists(inner, max_size=4),
                                                     hs.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
LAYOUT = hs.sampled_from([dict(), dict(indent=2), dict(separators=(",", ":")), dict(indent="\t"),
                          dict(separators=(" ,  ", " : "))])


def run(tmp_path, name: str, data: bytes, params: dict, assembler: str = "json-objects", client=None, **extra):
    """Run json-objects -> identity -> ``assembler``; return the output and each chunk's bytes."""
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / f"out-{name}"
    kwargs = {"client": client} if client is not None else {"scheduler": "sync"}
    job = bn.Job(source=str(src), partitioner="json-objects", app="identity", assembler=assembler,
                 destination=str(out), params={"partitioner": params, "assembler": {"output_name": name, **extra}})
    job.run(force=True, **kwargs)
    parts = tmp_path / f"parts-{name}"
    job.copy(assembler="passthrough", destination=str(parts), params={"partitioner": params}).run(force=True, **kwargs)
    pieces = [(parts / d / "result.bin").read_bytes() for d in sorted(os.listdir(parts)) if d.startswith("chunk_")]
    return (out / name).read_bytes(), pieces


def reference_tokens(data: bytes) -> list[tuple[int, str, int]]:
    """Structural characters outside strings, byte by byte (what the scanner finds with numpy)."""
    out, depth, in_string, escaped = [], 0, False, False
    for i, byte in enumerate(data):
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            out.append((i, char, depth))
        elif char in "]}":
            out.append((i, char, depth))
            depth -= 1
        elif char in ",:":
            out.append((i, char, depth))
    return out


@settings(max_examples=150, deadline=None)
@given(value=VALUE, layout=LAYOUT, ascii=hs.booleans(), block=hs.integers(1, 9))
def test_the_scanner_finds_the_structure_across_blocks(value, layout, ascii, block):
    data = json.dumps(value, ensure_ascii=ascii, **layout).encode()
    scanner, found = StructureScanner(), []
    for i in range(0, len(data), block):
        positions, codes, levels = scanner.feed(data[i:i + block])
        found += [(p, CHARS[c], lv) for p, c, lv in zip(positions.tolist(), codes.tolist(), levels.tolist())]
    scanner.finish()
    assert found == reference_tokens(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=hs.lists(VALUE, max_size=12), layout=LAYOUT, ascii=hs.booleans(), per=hs.integers(1, 5),
       wrap=hs.booleans())
def test_an_array_round_trips_byte_for_byte(tmp_path_factory, items, layout, ascii, per, wrap):
    tmp_path = tmp_path_factory.mktemp("json")
    document = {"before": "]\"[", "rows": items, "after": [1, {"x": "}"}]} if wrap else items
    data = (" \n" + json.dumps(document, ensure_ascii=ascii, **layout) + "\n").encode()
    output, pieces = run(tmp_path, "d.json", data, {"pointer": "/rows" if wrap else "", "per_chunk": per})
    assert output == data
    chunks = [json.loads(p) for p in pieces]
    assert [x for c in chunks for x in c] == items  # nothing lost, nothing duplicated, in order
    assert all(len(c) <= per for c in chunks)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=hs.dictionaries(TEXT, VALUE, max_size=10), layout=LAYOUT, per=hs.integers(1, 4))
def test_the_members_of_an_object_round_trip(tmp_path_factory, members, layout, per):
    tmp_path = tmp_path_factory.mktemp("json")
    data = json.dumps({"a": [{"m": members}]}, **layout).encode()
    output, pieces = run(tmp_path, "d.json", data, {"pointer": "/a/0/m", "per_chunk": per})
    assert output == data
    merged = {}
    for piece in pieces:
        merged.update(json.loads(piece))
    assert merged == members


def test_chunk_info_gives_the_pointer_elements_and_keys(tmp_path):
    data = json.dumps({"x~/y": {"k1": 1, "k:2": [2], "k3": {"3": 3}}, "z": [1, 2, 3, 4, 5]}).encode()
    (tmp_path / "d.json").write_bytes(data)
    job = bn.Job(source=str(tmp_path / "d.json"), partitioner="json-objects", app="identity",
                 assembler="json-objects", destination=str(tmp_path / "o"),
                 params={"partitioner": {"pointer": "/x~0~1y", "per_chunk": 2}})
    refs = job.plan(scheduler="sync")
    assert [(r.meta["pointer"], r.meta["kind"], r.meta["elements"], r.meta["keys"]) for r in refs] == [
        ("/x~0~1y", "object", [0, 2], ["k1", "k:2"]), ("/x~0~1y", "object", [2, 3], ["k3"])]
    refs = job.copy(params={"partitioner": {"pointer": "/z", "chunk_size": 4}}).plan(scheduler="sync")
    assert [r.meta["elements"] for r in refs] == [[0, 2], [2, 4], [4, 5]]
    assert [data[r.start:r.end] for r in refs] == [b"1, 2", b" 3, 4", b" 5"]


def test_output_jsonl_gives_one_element_a_line(tmp_path, client):
    rows = [{"i": i, "text": "line\nbreak, [x]" * (i % 3)} for i in range(40)]
    data = json.dumps({"rows": rows}, indent=2).encode()
    output, pieces = run(tmp_path, "d.json", data, {"pointer": "/rows", "per_chunk": 16, "output": "jsonl"},
                         assembler="concat", client=client)
    assert [json.loads(line) for line in output.decode().splitlines()] == rows
    assert [p.count(b"\n") for p in pieces] == [16, 16, 8]
    members, _ = run(tmp_path, "m.json", b'{"a": 1,\n "b": {"c":\n [2]}}', {"output": "jsonl"}, assembler="concat")
    assert members == b'{"a": 1}\n{"b": {"c": [2]}}\n'


def test_json_lines_round_trip_and_become_arrays(tmp_path):
    lines = "".join(json.dumps({"i": i, "s": "é,]" * (i % 4)}) + "\n" for i in range(50))
    output, pieces = run(tmp_path, "d.jsonl", lines.encode(), {"per_chunk": 20}, assembler="concat")
    assert output == lines.encode() and [p.count(b"\n") for p in pieces] == [20, 20, 10]
    src = tmp_path / "d.ndjson"
    src.write_text(lines)
    job = bn.Job(source=str(src), partitioner="json-objects", app="identity", assembler="passthrough",
                 destination=str(tmp_path / "arrays"), params={"partitioner": {"chunk_size": 300, "output": "json"}})
    job.run(scheduler="sync")
    chunks = [json.loads((tmp_path / "arrays" / d / "result.bin").read_bytes())
              for d in sorted(os.listdir(tmp_path / "arrays")) if d.startswith("chunk_")]
    assert len(chunks) > 3 and [x for c in chunks for x in c] == [json.loads(x) for x in lines.splitlines()]


@pytest.mark.parametrize("data", [b"[]", b"[ \n ]", b'{"a": []}', b"{}"])
def test_empty_arrays_and_objects_round_trip(tmp_path, data):
    pointer = "/a" if data.startswith(b'{"a"') else ""
    output, pieces = run(tmp_path, "e.json", data, {"pointer": pointer})
    assert output == data and len(pieces) == 1 and json.loads(pieces[0]) in ([], {})


def test_an_app_may_change_the_elements(tmp_path):
    @bn.app("json-double")
    def double(chunk_path, results_dir, params):
        values = json.load(open(chunk_path))
        with open(os.path.join(results_dir, "result.json"), "w") as out:
            json.dump([v * 2 for v in values if v % 3], out)

    try:
        data = json.dumps({"n": list(range(10)), "unit": "m"}).encode()
        (tmp_path / "n.json").write_bytes(data)
        bn.Job(source=str(tmp_path / "n.json"), partitioner="json-objects", app="json-double",
               assembler="json-objects", destination=str(tmp_path / "o"),
               params={"partitioner": {"pointer": "/n", "per_chunk": 3}}).run(scheduler="sync")
        assert json.loads((tmp_path / "o" / "n.json").read_bytes()) == {"n": [2, 4, 8, 10, 14, 16], "unit": "m"}
    finally:
        from bytenite_nb import registry
        registry.REGISTRIES["app"].unregister("json-double")


def failure(tmp_path, name: str, data: bytes, params: dict) -> str:
    (tmp_path / name).write_bytes(data)
    job = bn.Job(source=str(tmp_path / name), partitioner="json-objects", app="identity",
                 assembler="json-objects", destination=str(tmp_path / f"o-{name}"), params={"partitioner": params})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert not (tmp_path / f"o-{name}").exists()
    return str(e.value)


def test_invalid_json_names_the_file_and_byte_offset(tmp_path):
    data = b'{"rows": [{"a": 1}, {"a": tru}, {"a": 3}]}'
    assert "bad.json: byte 20: invalid JSON" in failure(tmp_path, "bad.json", data, {"pointer": "/rows"})
    assert data[20:21] == b"{"
    assert "s.json: byte 10: invalid JSON: a string is never closed" in failure(
        tmp_path, "s.json", b'{"rows": ["open, 1]}', {"pointer": "/rows"})
    assert "u.json: byte 14: invalid JSON: the document ends before its brackets close" in failure(
        tmp_path, "u.json", b'{"rows": [1, 2', {"pointer": "/rows"})
    assert "c.json: byte 6: invalid JSON: a closing bracket without an opening one" in failure(
        tmp_path, "c.json", b'[1, 2]]', {})
    assert "t.json: byte 7: invalid JSON: Extra data" in failure(tmp_path, "t.json", b'[1, 2] x', {})
    assert "e.json: byte 6: invalid JSON: no value between two commas" in failure(tmp_path, "e.json", b"[1, 2,]", {})


def test_a_pointer_that_does_not_exist_or_points_at_a_scalar_is_named(tmp_path):
    data = b'{"a": {"b": [1, {"c": 2}]}, "s": "x"}'
    assert "p.json: the JSON Pointer '/a/x' does not exist: no member 'x'" in failure(
        tmp_path, "p.json", data, {"pointer": "/a/x"})
    assert "the JSON Pointer '/a/b/5' does not exist: index 5 is past the end of an array of 2 elements" in failure(
        tmp_path, "p.json", data, {"pointer": "/a/b/5"})
    assert "the JSON Pointer '/a/b/1/c' points at a scalar value, not an array or an object" in failure(
        tmp_path, "p.json", data, {"pointer": "/a/b/1/c"})
    assert "the JSON Pointer '/s/0' does not exist: '/s' is a scalar value" in failure(
        tmp_path, "p.json", data, {"pointer": "/s/0"})
    assert "the JSON Pointer '' points at a scalar value" in failure(tmp_path, "n.json", b" 42 ", {})
    assert "pointer" in failure(tmp_path, "p.json", data, {"pointer": "a"})


def test_bad_elements_and_lines_are_skipped_and_counted(tmp_path, client):
    data = b'[1, {"a": }, 3, nul, 5]'
    output, _ = run(tmp_path, "d.json", data, {"on_bad": "skip", "per_chunk": 2}, client=client)
    assert json.loads(output) == [1, 3, 5]
    skipped = json.loads((tmp_path / "out-d.json" / "_SUCCESS").read_text())["skipped"]
    assert skipped["count"] == 2 and sorted(r["offset"] for r in skipped["records"]) == [4, 16]
    lines = b'{"i": 1}\n{"i": \n{"i": 3}\n'
    output, _ = run(tmp_path, "d.jsonl", lines, {"on_bad": "skip"}, assembler="concat", client=client)
    assert output == b'{"i": 1}\n{"i": 3}\n'
    skipped = json.loads((tmp_path / "out-d.jsonl" / "_SUCCESS").read_text())["skipped"]
    assert [(r["line"], r["offset"]) for r in skipped["records"]] == [(2, 9)]
    assert "l.jsonl: line 2 (byte 9): invalid JSON" in failure(tmp_path, "l.jsonl", lines, {})


def test_scan_blocks_do_not_change_the_plan(tmp_path, monkeypatch):
    from bytenite_nb.partitioners import json_objects

    data = json.dumps({"r": [{"s": "\\" * (i % 5) + '"]', "n": [i] * (i % 4)} for i in range(300)]}).encode()
    (tmp_path / "d.json").write_bytes(data)
    job = bn.Job(source=str(tmp_path / "d.json"), partitioner="json-objects", app="identity",
                 assembler="json-objects", destination=str(tmp_path / "o"),
                 params={"partitioner": {"pointer": "/r", "chunk_size": 1000}})
    whole = [(r.start, r.end, r.meta["elements"]) for r in job.plan(scheduler="sync")]
    monkeypatch.setattr(json_objects, "SCAN_BLOCK", 7)
    monkeypatch.setattr(json_objects, "READ_BLOCK", 5)
    assert [(r.start, r.end, r.meta["elements"]) for r in job.plan(scheduler="sync")] == whole
    job.run(scheduler="sync")
    assert (tmp_path / "o" / "d.json").read_bytes() == data


def test_a_real_job_on_a_cluster(tmp_path, client):
    items = [{"id": i, "tags": ["a", "b"][: i % 3], "note": "x" * (i % 50)} for i in range(3000)]
    data = json.dumps({"version": 2, "items": items}, indent=1).encode()
    output, pieces = run(tmp_path, "big.json", data, {"pointer": "/items", "chunk_size": 20000}, client=client)
    assert output == data and len(pieces) > 5
    assert sum(len(json.loads(p)) for p in pieces) == 3000


def test_large_text_around_the_array_is_streamed_and_kept_in_the_workspace(tmp_path, monkeypatch):
    from bytenite_nb.partitioners import json_objects

    monkeypatch.setattr(json_objects, "SMALL_SKELETON", 0)  # check it with ijson, streamed
    monkeypatch.setattr(json_objects, "TEXT_IN_INFO", 8)  # the text around goes to the workspace
    data = json.dumps({"head": "h" * 100, "rows": list(range(20)), "tail": ["t"] * 30}).encode()
    output, pieces = run(tmp_path, "w.json", data, {"pointer": "/rows", "per_chunk": 6})
    assert output == data and len(pieces) == 4
    bad = data.replace(b'"tail"', b'"tail" 1')
    assert "b.json: invalid JSON before or after the elements at the pointer" in failure(
        tmp_path, "b.json", bad, {"pointer": "/rows"})


def test_each_document_of_a_folder_comes_back_under_its_name(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    docs = {"a.json": b'{"r": [1, 2, 3]}', "sub/b.json": b'{"r": [{"x": "]"}, 4],\n "z": 0}\n'}
    for name, data in docs.items():
        (tmp_path / "src" / name).write_bytes(data)
    bn.Job(source=str(tmp_path / "src"), partitioner="json-objects", app="identity", assembler="json-objects",
           destination=str(tmp_path / "o"), params={"partitioner": {"pointer": "/r", "per_chunk": 2}}).run(
        scheduler="sync")
    assert {name: (tmp_path / "o" / name).read_bytes() for name in docs} == docs


CHECKERS = ["_simdjson_check", "_orjson_check", None]  # None: json alone


@pytest.mark.parametrize("checker", CHECKERS)
def test_elements_a_fast_parser_refuses_are_checked_with_json(tmp_path, monkeypatch, checker):
    from bytenite_nb.partitioners import json_objects

    monkeypatch.setattr(json_objects, "_fast_check", checker and getattr(json_objects, checker))
    data = b'{"r": [123456789012345678901234567890, NaN, "\\ud800", {"a": [1.5e400]}]}'
    output, pieces = run(tmp_path, "big.json", data, {"pointer": "/r", "per_chunk": 1})
    assert output == data and len(pieces) == 4
    assert "b.json: byte 13: invalid JSON" in failure(tmp_path, "b.json", b'{"r": [1, 2, tru]}', {"pointer": "/r"})
    lines, _ = run(tmp_path, "l.jsonl", b'[1e999]\n{"n": 18446744073709551616}\n', {}, assembler="concat")
    assert lines == b'[1e999]\n{"n": 18446744073709551616}\n'


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=hs.lists(VALUE, max_size=12), layout=LAYOUT, per=hs.integers(1, 6), step=hs.integers(1, 40),
       output=hs.sampled_from(["json", "jsonl"]), bad=hs.sets(hs.integers(0, 11), max_size=3))
def test_planned_cuts_give_the_chunks_a_scan_on_the_worker_gives(tmp_path_factory, monkeypatch, items, layout, per,
                                                                 step, output, bad):
    import dataclasses

    from bytenite_nb.bad_records import BadRecordError as Bad
    from bytenite_nb.partitioners import json_objects

    monkeypatch.setattr(json_objects, "READ_BLOCK", step)  # a cut every few bytes
    tmp_path = tmp_path_factory.mktemp("cuts")
    texts = [json.dumps(x, **layout) if i not in bad else ['{"a": tru}', "nul", "[1,,2]"][i % 3]
             for i, x in enumerate(items)]
    data = ("[" + ",\n ".join(texts) + "]").encode()
    (tmp_path / "d.json").write_bytes(data)
    job = bn.Job(source=str(tmp_path / "d.json"), partitioner="json-objects", app="identity", assembler="passthrough",
                 destination=str(tmp_path / "o"), params={"partitioner": {"per_chunk": per, "output": output,
                                                                           "on_bad": "skip"}})
    refs = job.plan(scheduler="sync")
    assert any(r.meta["cuts"] for r in refs) or step > 1 or len(items) < 2 or per == 1
    for ref in refs:
        got = []
        for r in (ref, dataclasses.replace(ref, meta={k: v for k, v in ref.meta.items() if k != "cuts"})):
            dest = str(tmp_path / "chunk.bin")
            try:
                json_objects.JsonObjects().materialise(r, dest)
                got.append(open(dest, "rb").read())
            except Bad as exc:  # on_bad: skip counts the record and goes on; never raised here
                got.append(str(exc))
        assert got[0] == got[1]


JSONISH = hs.lists(hs.sampled_from(['[', ']', '{', '}', ',', ':', '"', '\\', 'u', 'd800', '1', '0', '-', '.', 'e', '+',
                                     'E', 'tru', 'e', 'null', 'NaN', 'Infinity', ' ', '\n', 'a', 'é', '\x01', '\x7f',
                                     '123456789012345678901234567890', '1e400', '\ufeff']), max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=JSONISH, raw=hs.binary(max_size=4), checker=hs.sampled_from(CHECKERS[:2]))
def test_the_fast_checks_take_what_json_takes_and_nothing_else(text, raw, checker):
    from bytenite_nb.partitioners import json_objects

    fast = getattr(json_objects, checker)
    for data in (text.encode(), b"[" + text.encode() + b"]", b"[" + raw + b"]", b'["' + raw + b'"]'):
        try:
            json.loads(data)
            valid = True
        except ValueError:
            valid = False
        try:
            fast(data)
            taken = True
        except (ValueError, RuntimeError):
            taken = False
        assert not taken or valid, data  # a fast parser may refuse more (json then decides), never take more
