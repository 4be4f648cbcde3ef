"""Hostile and broken job files: every one is refused with exit status 2 and
an error naming what is wrong; never a traceback, never a hang. YAML job
files load with a safe loader only."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bytenite_nb.cli import main

VALID = {"name": "j", "partitioner": "split-lines", "app": "identity", "assembler": "concat",
         "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "in.txt"}}, "dataDestination": "out/",
         "params": {"partitioner": {"chunk_size": 1024}, "app": {}, "assembler": {"output_name": "o.txt"}},
         "config": {"taskTimeout": 10}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)


def check_refused(tmp_path, content: bytes, name: str = "job.json") -> str:
    (tmp_path / "in.txt").write_text("a\n")
    path = tmp_path / name
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["validate", "--offline", str(path)])
    assert result.exit_code == 2, (content[:300], result.exit_code, result.output[-2000:], result.exc_info)
    assert "Traceback" not in result.output
    assert result.output.startswith("error: invalid job"), result.output[:500]
    return result.output


def field_paths(job: dict):
    for key, value in job.items():
        yield (key,)
        if isinstance(value, dict):
            for sub in field_paths(value):
                yield (key, *sub)


FIELDS = [p for p in field_paths(VALID) if p not in (("name",), ("params", "app"))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(FIELDS), value=json_values)
def test_a_wrong_value_in_any_field_is_named(tmp_path, where, value):
    job = json.loads(json.dumps(VALID))
    target = job
    for key in where[:-1]:
        target = target[key]
    if target[where[-1]] == value:
        return
    target[where[-1]] = value
    from bytenite_nb.job import Job

    try:  # only the jobs that are now invalid: some random values are valid ones
        Job.from_dict(job, base_dir=str(tmp_path)).resolve(check_storage=False)
        return
    except Exception:
        pass
    output = check_refused(tmp_path, json.dumps(job).encode())
    assert any(part in output for part in where), (where, output)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_random_documents_are_refused(tmp_path, value):
    if isinstance(value, dict):
        value = {"x" + k: v for k, v in value.items()}  # unknown fields only
    check_refused(tmp_path, json.dumps(value).encode())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_are_refused(tmp_path, data):
    check_refused(tmp_path, data)
    check_refused(tmp_path, data, "job.yaml")


@pytest.mark.parametrize("content", [
    b'{"name": "j", "app": "identity", "dataSource": "in.txt", "dataDestination": "out/", "x": "\xff\xfe"}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    json.dumps({**VALID, "config": {"taskTimeout": 10**400}}).encode(),
    json.dumps({**VALID, "params": {**VALID["params"], "partitioner": {"chunk_size": 10**100}}}).encode(),
    json.dumps({**VALID, "unknownField": 1, "config": {"taskTimeout": 1, "noSuchOption": True}}).encode(),
    json.dumps({**VALID, "name": "x" * 1_000_000}).encode(),
])
def test_broken_and_huge_documents_are_refused(tmp_path, content):
    output = check_refused(tmp_path, content)
    assert len(output) < 20_000  # a message, not an echo of the document


YAML_ATTACKS = {
    "python object": "name: !!python/object/apply:os.system ['touch {marker}']\napp: identity\n",
    "python name": "app: !!python/name:os.system\n",
    "python module": "app: !!python/module:os\n",
    "billion laughs": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                      "app: identity\ndataSource: in.txt\ndataDestination: out/\nparams: {app: *h}\n",
}


@pytest.mark.parametrize("attack", sorted(YAML_ATTACKS))
def test_yaml_job_files_construct_no_objects(tmp_path, attack):
    marker = tmp_path / "marker"
    output = check_refused(tmp_path, YAML_ATTACKS[attack].replace("{marker}", str(marker)).encode(), "job.yaml")
    assert not marker.exists()
    assert "YAML" in output or "alias" in output or "app" in output
