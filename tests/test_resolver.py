"""One resolver for partitioners, apps and assemblers: the same order and the
same rules for every kind and every caller (job, CLI, widgets, server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import bytenite_nb as bn
from bytenite_nb import registry
from bytenite_nb.apps.folder import FolderApp
from bytenite_nb.apps.python import PythonApp
from bytenite_nb.engine_folders import EngineAssembler, EnginePartitioner
from bytenite_nb.exceptions import FieldError, JobValidationError
from bytenite_nb.folders import search_dirs

from .container_images import make_folder


def folder(parent, name, kind="app", version="1.0", files=None):
    files = files or {"main.py": "print('hi')\n"}
    return make_folder(parent, name, {"type": kind, "version": version, "entrypoint": "main.py"}, files)


def test_every_kind_accepts_a_tag_and_a_folder_object_by_tag(tmp_path):
    folder(tmp_path / "apps", "shout", "app", "1.2")
    folder(tmp_path / "engines", "cut", "partitioner", "2.0")
    folder(tmp_path / "engines", "glue", "assembler", "1.0")
    base = str(tmp_path)
    for kind, tag, cls in (("app", "shout@1", FolderApp), ("partitioner", "cut@2", EnginePartitioner),
                           ("assembler", "glue", EngineAssembler)):
        by_tag = registry.resolve(kind, tag, base_dir=base)
        by_object = registry.resolve(kind, {"folder": tag}, base_dir=base)
        assert isinstance(by_tag, cls) and isinstance(by_object, cls)
        assert by_tag.manifest.folder == by_object.manifest.folder
    # an app folder by tag as {"folder": ...} with its own options
    app = registry.resolve("app", {"folder": "shout@1.2", "container": False}, base_dir=base)
    assert app.manifest.version == "1.2" and app.image is None


def test_module_attr_works_for_every_kind(tmp_path):
    (tmp_path / "mine.py").write_text(
        "from bytenite_nb.partitioners import ChunkRef\n"
        "def app(chunk_path, results_dir, params):\n    return b'x'\n"
        "def part(source, params):\n    return [ChunkRef(url=f.url, size=f.size) for f in source.files]\n"
        "def asm(results, output_dir, params):\n    open(output_dir + '/n.txt', 'w').write(str(len(results)))\n")
    base = str(tmp_path)
    app = registry.resolve("app", "mine:app", base_dir=base)
    assert isinstance(app, PythonApp) and app.to_spec() == {"python": "mine:app"}
    assert type(registry.resolve("partitioner", "mine:part", base_dir=base)).__name__ == "FunctionPartitioner"
    assert type(registry.resolve("assembler", "mine:asm", base_dir=base)).__name__ == "FunctionAssembler"
    with pytest.raises(FieldError) as e:
        registry.resolve("app", "mine:nothing", base_dir=base)
    assert e.value.field == "app" and "cannot load 'mine:nothing'" in e.value.message


def test_a_job_runs_a_module_function_app_named_as_a_string(tmp_path, client):
    (tmp_path / "upper.py").write_text(
        "def upper(chunk_path, results_dir, params):\n    return open(chunk_path, 'rb').read().upper()\n")
    (tmp_path / "in.txt").write_text("a\nb\n")
    (tmp_path / "job.json").write_text(json.dumps({"app": "upper:upper", "assembler": "concat",
                                                   "dataSource": "in.txt", "dataDestination": "out/"}))
    job = bn.Job.from_file(tmp_path / "job.json")
    job.run(client=client)
    assert (tmp_path / "out" / "output.bin").read_text() == "A\nB\n"
    assert job.to_dict()["app"] == "upper:upper"


def test_the_order_registered_name_then_folder_then_tag(tmp_path):
    # A folder called like a registered component does not shadow it.
    folder(tmp_path, "identity", "app")
    assert registry.resolve("app", "identity", base_dir=str(tmp_path)) is registry.apps.get("identity").obj
    # A folder path wins over a tag of the same text found elsewhere.
    folder(tmp_path / "apps", "near", "app", "1.0")
    folder(tmp_path, "near", "app", "2.0")
    assert registry.resolve("app", "near", base_dir=str(tmp_path)).manifest.version == "2.0"


def test_nearest_folder_wins_between_equal_versions(tmp_path):
    repo = tmp_path / "repo"
    folder(repo, "tool", "app", "1.0", {"main.py": "# repo\n"})
    folder(repo / "templates", "tool", "app", "1.0", {"main.py": "# templates\n"})
    near = [str(repo / "templates"), str(repo)]
    found = registry.resolve("app", "tool", base_dir=str(repo / "templates"), near=near)
    assert found.manifest.folder == str(repo / "templates" / "tool")
    assert search_dirs(near)[:2] == near


@pytest.mark.parametrize("kind, spec, field, needle", [
    ("app", "shuot", "app", 'unknown app \'shuot\''),
    ("partitioner", "split-line", "partitioner", 'did you mean "split-lines"'),
    ("assembler", "./missing/folder", "assembler", "no manifest.json"),
    ("partitioner", {"folder": "cut", "contaner": False}, "partitioner.contaner", 'did you mean "container"'),
    ("assembler", {"folder": "nothing@3"}, "assembler.folder", "no assembler folder 'nothing@3'"),
    ("partitioner", {"command": ["x"], "folder": "cut"}, "partitioner.command", "unknown field"),
    ("app", {"comand": ["true"]}, "app", 'did you mean "command"'),
    ("app", None, "app", "is required"),
    ("app", 42, "app", "not an app"),
])
def test_what_cannot_be_resolved_names_its_field(tmp_path, kind, spec, field, needle):
    folder(tmp_path, "cut", "partitioner")
    with pytest.raises(FieldError) as e:
        registry.resolve(kind, spec, base_dir=str(tmp_path))
    assert e.value.field == field and needle in e.value.message, str(e.value)


def test_a_folder_of_another_kind_is_refused(tmp_path):
    folder(tmp_path, "cut", "partitioner")
    with pytest.raises(FieldError) as e:
        registry.resolve("assembler", "cut", base_dir=str(tmp_path))
    assert "type is 'partitioner', not an assembler" in str(e.value)
    with pytest.raises(FieldError) as e:
        registry.resolve("app", {"folder": "cut"}, base_dir=str(tmp_path))
    assert e.value.field == "app.folder" and "not an app" in e.value.message


def test_versions_that_do_not_match_are_listed(tmp_path):
    folder(tmp_path / "apps", "shout", "app", "1.0")
    folder(tmp_path / "apps", "shout2", "app", "1.0")
    (tmp_path / "apps" / "shout2" / "manifest.json").write_text(json.dumps(
        {"name": "shout", "version": "2.3", "type": "app", "entrypoint": "main.py"}))
    with pytest.raises(FieldError) as e:
        registry.resolve("app", "shout@3", base_dir=str(tmp_path))
    assert "no version of app 'shout' matches 'shout@3'; found 1.0, 2.3" in str(e.value)


def test_job_reports_every_component_problem_at_once(tmp_path):
    job = bn.Job(source="in.txt", partitioner="nope@1", app={"folder": "gone@2"}, assembler="concta",
                 destination="out/", base_dir=str(tmp_path))
    with pytest.raises(JobValidationError) as e:
        job.validate(check_storage=False)
    fields = sorted(err.field for err in e.value.errors)
    assert fields == ["app.folder", "assembler", "partitioner"]


def test_no_other_resolver_is_left():
    import bytenite_nb.apps as apps_pkg
    import bytenite_nb.engine_folders as engines_pkg
    import bytenite_nb.job as job_mod

    assert not hasattr(apps_pkg, "resolve_app")
    assert not hasattr(engines_pkg, "resolve_engine")
    assert not hasattr(job_mod, "_resolve_named")
    root = os.path.dirname(bn.__file__)
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py"):
                text = open(os.path.join(dirpath, name), encoding="utf-8").read()
                for old in ("resolve_app(", "resolve_engine(", "_resolve_named("):
                    assert old not in text, f"{name} still calls {old}"


def test_the_builder_and_the_cli_resolve_a_tag_the_same_way(tmp_path):
    from bytenite_nb.widgets import JobBuilder

    folder(tmp_path / "engines", "cut", "partitioner", "1.0")
    (tmp_path / "engines" / "cut" / "schema.json").write_text(json.dumps(
        {"type": "object", "properties": {"pieces": {"type": "integer", "description": "how many"}}}))
    job = bn.Job(source="in.txt", partitioner="cut@1", app="identity", destination="out/", base_dir=str(tmp_path))
    builder = JobBuilder(job)
    assert "pieces" in builder.partitioner_form.fields
    (tmp_path / "job.json").write_text(json.dumps({**job.to_dict(), "params": {"partitioner": {"pieces": "x"}}}))
    proc = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "validate", "job.json"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "params.partitioner.pieces: expected integer" in proc.stderr, proc.stderr


def test_a_tag_whose_folder_has_a_broken_manifest_says_what_is_wrong(tmp_path):
    folder(tmp_path / "apps", "shout", "app", "1.0")
    (tmp_path / "apps" / "shout" / "manifest.json").write_text(json.dumps(
        {"name": "shout", "version": "1.0", "type": "app", "entrypoint": "main.py", "device_requirements": {
            "min_cpu": "two"}}))
    with pytest.raises(FieldError) as e:
        registry.resolve("app", "shout@1", base_dir=str(tmp_path))
    assert "manifest.json" in str(e.value) and "min_cpu" in str(e.value) and "unknown app" not in str(e.value)


def test_a_module_function_app_brings_its_params_schema(tmp_path):
    (tmp_path / "tagged.py").write_text(
        "def run(chunk_path, results_dir, params):\n    return b''\n"
        "run.schema = {'type': 'object', 'properties': {'n': {'type': 'integer'}}, 'additionalProperties': False}\n")
    for spec in ("tagged:run", {"python": "tagged:run"}):
        job = bn.Job(source="in.txt", app=spec, destination="out/", params={"app": {"n": "x", "m": 1}},
                     base_dir=str(tmp_path))
        with pytest.raises(JobValidationError) as e:
            job.validate(check_storage=False)
        assert sorted(str(err) for err in e.value.errors) == [
            "params.app.m: unknown field", 'params.app.n: expected integer, got "x"']
