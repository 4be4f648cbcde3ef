"""The ByteNite runtime contract, end to end: process apps, app folders, Python apps."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

import bytenite_nb as bn
from bytenite_nb.apps.manifest import Manifest
from bytenite_nb.exceptions import JobValidationError, ManifestError

CONTRACT_APP = """\
import json, os
env = {k: os.environ.get(k) for k in ("TASK_DIR", "TASK_RESULTS_DIR", "APP_PARAMS", "CHUNK_NUMBER",
                                       "SHARED_CACHE_DIR", "USER_CACHE_DIR")}
task = os.environ["TASK_DIR"]
report = {
    "env": env,
    "task_dir_files": sorted(os.listdir(task)),
    "data": open(os.path.join(task, "data.bin"), "rb").read().decode(),
    "params": json.loads(os.environ["APP_PARAMS"]),
    "cwd": os.getcwd(),
    "user_cache_writable": os.access(os.environ["USER_CACHE_DIR"], os.W_OK),
}
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "report.json"), "w") as f:
    json.dump(report, f)
"""


def reports(out) -> list[dict]:
    found = []
    for root, _, files in sorted(os.walk(out)):
        for name in files:
            if name == "report.json":
                found.append(json.load(open(os.path.join(root, name))))
    return sorted(found, key=lambda r: int(r["env"]["CHUNK_NUMBER"]))


def three_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, text in enumerate(["alpha", "beta", "gamma"]):
        (src / f"f{i}.txt").write_text(text)
    return src


def make_folder(tmp_path, manifest: dict, entry_name: str, entry: str, schema: dict | None = None):
    folder = tmp_path / manifest.get("name", "app")
    (folder / "app").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "app" / entry_name).write_text(entry)
    if schema is not None:
        (folder / "schema.json").write_text(json.dumps(schema))
    return folder


def test_process_app_gets_the_contract(client, tmp_path):
    src = three_files(tmp_path)
    app = tmp_path / "report.py"
    app.write_text(CONTRACT_APP)
    job = bn.Job(source=str(src), partitioner="files", app={"command": [sys.executable, "report.py"]},
                 assembler="passthrough", destination=str(tmp_path / "out"), params={"app": {"greeting": "hi"}},
                 base_dir=str(tmp_path))
    result = job.run(client=client)
    got = reports(tmp_path / "out")
    assert [r["data"] for r in got] == ["alpha", "beta", "gamma"]
    assert [r["env"]["CHUNK_NUMBER"] for r in got] == ["0", "1", "2"]
    for r in got:
        assert r["task_dir_files"] == ["data.bin"]  # exactly one chunk in TASK_DIR
        assert r["params"] == {"greeting": "hi"}
        assert r["cwd"] == str(tmp_path)  # commands run from the job's folder
        assert r["user_cache_writable"]
        assert all(r["env"][k] for k in ("SHARED_CACHE_DIR", "USER_CACHE_DIR", "TASK_RESULTS_DIR"))
    # passthrough namespaces every chunk's results
    assert sorted(o["name"] for o in result.outputs) == [
        "chunk_0000/report.json", "chunk_0001/report.json", "chunk_0002/report.json"]


def test_folder_app_end_to_end(client, tmp_path):
    src = three_files(tmp_path)
    folder = make_folder(
        tmp_path,
        {"name": "reporter", "version": "1.0", "type": "app", "platform": "python", "entrypoint": "main.py",
         "device_requirements": {"min_cpu": 1, "min_memory": 1}},
        "main.py", CONTRACT_APP,
        schema={"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]})
    job = bn.Job(source=str(src), partitioner="files", app={"folder": str(folder)}, assembler="zip",
                 destination=str(tmp_path / "out"), params={"app": {"greeting": "hi"}})
    result = job.run(client=client)
    import zipfile

    with zipfile.ZipFile(tmp_path / "out" / "results_archive.zip") as zf:
        assert sorted(zf.namelist()) == ["chunk_0000/report.json", "chunk_0001/report.json", "chunk_0002/report.json"]
        got = [json.loads(zf.read(f"chunk_{i:04d}/report.json")) for i in range(3)]
    assert [r["data"] for r in got] == ["alpha", "beta", "gamma"]
    assert all(r["cwd"] == str(folder / "app") for r in got)  # the entrypoint runs from app/
    assert result.ok


def test_folder_app_schema_validates_params(tmp_path):
    folder = make_folder(tmp_path, {"name": "strict", "version": "1.0", "entrypoint": "main.py"}, "main.py", "",
                         schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    job = bn.Job(source=str(tmp_path), app={"folder": str(folder)}, destination=str(tmp_path / "o"),
                 params={"app": {"n": "three"}})
    with pytest.raises(JobValidationError) as e:
        job.validate(check_storage=False)
    assert [str(x) for x in e.value.errors] == ['params.app.n: expected integer, got "three"']


def test_folder_app_shell_entrypoint_and_camel_case(client, tmp_path):
    src = three_files(tmp_path)
    folder = make_folder(
        tmp_path,
        {"id": "shouter", "version": "0.2", "entrypoint": "run.sh", "platformConfig": {},
         "deviceRequirements": {"minCpu": 1, "minMemory": 0.5}},
        "run.sh", 'tr a-z A-Z < "$TASK_DIR/data.bin" > "$TASK_RESULTS_DIR/out.txt"\n')
    m = Manifest.load(str(folder))
    assert (m.name, m.version, m.min_cpu, m.min_memory) == ("shouter", "0.2", 1, 0.5)
    job = bn.Job(source=str(src), partitioner="files", app=str(folder), assembler="concat",
                 destination=str(tmp_path / "out"))
    job.run(client=client)
    assert (tmp_path / "out" / "output.txt").read_text() == "ALPHABETAGAMMA"


@pytest.mark.parametrize("manifest, message", [
    ({"version": "1.0", "entrypoint": "main.py"}, "name: is required"),
    ({"name": "x", "entrypoint": "main.py"}, "version: is required"),
    ({"name": "x", "version": "1", "entrypoint": "main.py"}, 'version: expected "major.minor"'),
    ({"name": "x", "version": "1.0"}, "entrypoint: is required"),
    ({"name": "x", "version": "1.0", "entrypoint": "missing.py"}, "entrypoint: app/missing.py does not exist"),
    ({"name": "x", "version": "1.0", "entrypoint": "../main.py"}, "entrypoint: must be a file inside app/"),
    ({"name": "x", "version": "1.0", "entrypoint": "main.py", "type": "engine"}, "type: expected one of"),
    ({"name": "x", "version": "1.0", "entrypoint": "main.py", "device_requirements": {"min_cpu": "two"}},
     'manifest.json: device_requirements.min_cpu: expected number, got "two"'),
    ({"name": "x", "version": "1.0", "entrypoint": "main.py", "platform": "docker"},
     "platform_config.container: is required"),
])
def test_bad_manifests_name_the_field(tmp_path, manifest, message):
    folder = make_folder(tmp_path, dict(manifest, name=manifest.get("name")) if "name" in manifest else manifest,
                         "main.py", "")
    with pytest.raises(ManifestError) as e:
        Manifest.load(str(folder))
    assert message in str(e.value)
    assert "manifest.json" in str(e.value)


def test_manifest_not_json(tmp_path):
    folder = tmp_path / "broken"
    (folder / "app").mkdir(parents=True)
    (folder / "manifest.json").write_text("{name: x}")
    with pytest.raises(ManifestError) as e:
        Manifest.load(str(folder))
    assert "not valid JSON" in str(e.value) and "line 1" in str(e.value)
    job = bn.Job(source=str(tmp_path), app={"folder": str(folder)}, destination=str(tmp_path / "o"))
    with pytest.raises(JobValidationError) as e:
        job.validate(check_storage=False)
    assert e.value.errors[0].field == "app.folder"


def test_python_app_may_return_text_or_bytes(client, tmp_path):
    src = three_files(tmp_path)
    job = bn.Job(source=str(src), partitioner="files", app={"python": "tests.apps_for_tests_contract:echo"},
                 assembler="passthrough", destination=str(tmp_path / "out"))
    job.run(client=client)
    out = tmp_path / "out"
    assert (out / "chunk_0000" / "result.txt").read_text() == "0:alpha"
    assert (out / "chunk_0001" / "result.bin").read_bytes() == b"1:beta"
    assert (out / "chunk_0002" / "written.txt").read_text() == "2:gamma"


def test_python_app_bad_return_and_exception(tmp_path):
    src = three_files(tmp_path)
    for fn, message in [("returns_int", "returned int; expected None, bytes or str"),
                        ("raises", "raised ValueError: row 7 has 3 columns, expected 4")]:
        job = bn.Job(source=str(src), partitioner="files", app={"python": f"tests.apps_for_tests_contract:{fn}"},
                     destination=str(tmp_path / f"out-{fn}"), config={"maxTaskRetries": 0})
        with pytest.raises(bn.JobFailed) as e:
            job.run(scheduler="sync")
        assert message in str(e.value)
        assert not (tmp_path / f"out-{fn}").exists()


@pytest.mark.parametrize("body, message", [
    ('os.symlink("/etc/passwd", os.path.join(results, "leak"))', "contains a symlink 'leak' -> '/etc/passwd'"),
    ('os.mkfifo(os.path.join(results, "pipe"))', "'pipe', which is not a regular file"),
])
def test_unsafe_results_fail_the_chunk(client, tmp_path, body, message):
    src = three_files(tmp_path)
    app = tmp_path / "bad.py"
    app.write_text(textwrap.dedent(f"""\
        import os
        results = os.environ["TASK_RESULTS_DIR"]
        {body}
        """))
    job = bn.Job(source=str(src), partitioner="files", app={"command": [sys.executable, str(app)]},
                 destination=str(tmp_path / "out"), config={"maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed) as e:
        job.run(client=client)
    assert message in str(e.value)
    assert "chunk 0" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_missing_program_is_a_clear_error(tmp_path):
    src = three_files(tmp_path)
    job = bn.Job(source=str(src), partitioner="files", app={"command": ["no-such-program-xyz"]},
                 destination=str(tmp_path / "out"), config={"maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "cannot run 'no-such-program-xyz'" in str(e.value)


def test_app_printing_megabytes_is_fine(client, tmp_path):
    src = three_files(tmp_path)
    app = tmp_path / "loud.py"
    app.write_text(textwrap.dedent("""\
        import os, sys
        sys.stdout.write("y" * (8 * 2**20))
        sys.stderr.write("z" * (2 * 2**20))
        open(os.path.join(os.environ["TASK_RESULTS_DIR"], "ok.txt"), "w").write("ok")
        """))
    job = bn.Job(source=str(src), partitioner="files", app={"command": [sys.executable, str(app)]},
                 assembler="concat", destination=str(tmp_path / "out"))
    job.run(client=client)
    assert (tmp_path / "out" / "output.txt").read_text() == "okokok"


def test_member_chunks_are_zip_archives(client, tmp_path):
    src = three_files(tmp_path)
    (src / "sub").mkdir()
    (src / "sub" / "f3.txt").write_text("delta")
    job = bn.Job(source=str(src), partitioner="files", app={"python": "tests.apps_for_tests_contract:list_zip"},
                 assembler="concat", destination=str(tmp_path / "out"), params={"partitioner": {"files_per_chunk": 3}})
    job.run(client=client)
    assert (tmp_path / "out" / "output.txt").read_text() == "f0.txt,f1.txt,f2.txt\nsub/f3.txt\n"


def test_same_module_name_in_two_job_folders(tmp_path):
    """Each job gets the app.py beside it, not the first one imported."""
    results = []
    for word in ("first", "second"):
        folder = tmp_path / word
        folder.mkdir()
        (folder / "app.py").write_text(f"def run(chunk_path, results_dir, params):\n    return {word!r}\n")
        (folder / "in.txt").write_text("x")
        job = bn.Job.from_dict({"app": {"python": "app:run"}, "dataSource": "in.txt", "dataDestination": "out/",
                                "assembler": "concat"}, base_dir=str(folder))
        job.run(scheduler="sync")
        results.append((folder / "out" / "output.txt").read_text())
    assert results == ["first", "second"]


def test_an_app_printing_without_end_is_stopped(client, tmp_path):
    """Output past config.maxAppOutput stops the attempt: a clear error, nothing at the destination."""
    src = three_files(tmp_path)
    app = tmp_path / "chatty.py"
    app.write_text(textwrap.dedent("""\
        import sys
        while True:
            sys.stdout.write("y" * 65536)
        """))
    job = bn.Job(source=str(src), partitioner="files", app={"command": [sys.executable, str(app)]},
                 assembler="concat", destination=str(tmp_path / "out"),
                 config={"maxAppOutput": 2, "maxTaskRetries": 0})
    with pytest.raises(bn.JobFailed) as e:
        job.run(client=client)
    assert "printed more than 2 MiB to stdout and stderr" in str(e.value)
    assert "config.maxAppOutput" in str(e.value)
    assert not (tmp_path / "out").exists()


# -- runtime specs are checked by their schemas ------------------------------------------------


@pytest.mark.parametrize("spec, message", [
    ({"command": ["true"], "cwdd": "x"}, 'app.cwdd: unknown field (did you mean "cwd"?)'),
    ({"python": "os.path:basename", "shema": {}}, 'app.shema: unknown field (did you mean "schema"?)'),
    ({"folder": "apps/x", "contaner": False}, 'app.contaner: unknown field (did you mean "container"?)'),
    ({"notebook": "a.ipynb", "kernal": "python3"}, 'app.kernal: unknown field (did you mean "kernel"?)'),
    ({"image": "localhost/x:1", "comand": ["run"]}, 'app.comand: unknown field (did you mean "command"?)'),
    ({"image": "localhost/x:1", "device_requirements": {"min_cpus": 1}},
     'app.device_requirements.min_cpus: unknown field (did you mean "min_cpu"?)'),
])
def test_an_unknown_key_in_a_runtime_spec_is_named(spec, message):
    from bytenite_nb.exceptions import FieldError
    from bytenite_nb.registry import resolve

    with pytest.raises(FieldError) as e:
        resolve("app", spec)
    assert str(e.value) == message
    with pytest.raises(JobValidationError) as e:
        bn.Job(source="in.txt", app=spec, destination="out/").validate(check_storage=False)
    assert message in [str(err) for err in e.value.errors]


@pytest.mark.parametrize("spec, messages", [
    ({"command": "   "}, ["app.command: expected a non-empty list of strings, got \"   \""]),
    ({"command": ["python3", 3]}, ['app.command: expected a non-empty list of strings, got ["python3", 3]']),
    ({"command": ["x"], "env": {"A": 1}, "cwd": ""}, ["app.cwd: must not be empty", "app.env.A: expected string, got 1"]),
    ({"python": "no_colon"}, ["app.python: expected 'module:function' or 'file.py:function', got \"no_colon\""]),
    ({"python": "os.path:basename", "schema": "x"}, ['app.schema: expected object, got "x"']),
    ({"folder": 3, "container": True}, ["app.container: expected false (run as a process) or an image name, got true",
                                        "app.folder: expected string, got 3"]),
    ({"notebook": "a.ipynb", "kernel": ""}, ["app.kernel: must not be empty"]),
    ({"image": "localhost/x:1", "network": "yes", "user": " "},
     ['app.network: expected true or false, got "yes"', 'app.user: expected a non-empty string, got " "']),
    ({"image": "localhost/x:1", "deviceRequirements": {"minMemory": "1G"}},
     ['app.deviceRequirements.minMemory: expected number, got "1G"']),
])
def test_wrong_types_in_a_runtime_spec_are_named(spec, messages):
    with pytest.raises(JobValidationError) as e:
        bn.Job(source="in.txt", app=spec, destination="out/").validate(check_storage=False)
    assert sorted(str(err) for err in e.value.errors) == sorted(messages)


@pytest.mark.parametrize("spec", [
    {"command": ["python3", "app.py"]},
    {"command": "python3 app.py --fast", "cwd": "apps", "env": {"MODE": "x"}, "schema": {"type": "object"}},
    {"python": "os.path:basename"},
    {"python": "myapp.py:shout", "schema": {"type": "object", "properties": {"suffix": {"type": "string"}}}},
    {"folder": "apps/wc"},
    {"folder": "apps/wc", "container": False},
    {"folder": "apps/wc", "container": "localhost/other:2"},
    {"notebook": "chunk.ipynb", "kernel": "python3", "cwd": ".", "schema": {"type": "object"}},
    {"notebook": "s3://bucket/chunk.ipynb"},
    {"image": "localhost/wc:1", "command": ["wc"]},
    {"image": "localhost/wc:1", "command": "wc -l", "env": {"A": "1"}, "network": True, "user": "root",
     "engine": "podman", "workdir": "/w", "schema": {"type": "object"},
     "device_requirements": {"min_cpu": 0.5, "min_memory": 0.3, "gpu": 1}},
    {"image": "localhost/wc:1", "deviceRequirements": {"minCpu": 2, "gpu": ["NVIDIA A100-SXM4-40GB"]}},
])
def test_the_specs_that_work_keep_working(spec):
    from bytenite_nb.apps import runtime_for

    # from_spec alone: the folders and files these specs name need not exist here
    app = runtime_for(spec).from_spec(spec, None)
    again = runtime_for(app.to_spec()).from_spec(app.to_spec(), None)
    assert again.to_spec() == app.to_spec()
    assert app.spec_errors() == []


def test_an_app_made_in_python_is_checked_by_the_same_schema():
    from bytenite_nb.apps.command import CommandApp
    from bytenite_nb.apps.container import ContainerApp

    assert [str(e) for e in CommandApp([]).check()] == ["app.command: expected a non-empty list of strings, got []"]
    assert [str(e) for e in ContainerApp("x:1", network="yes").check("app")] == [
        'app.network: expected true or false, got "yes"']
    assert ContainerApp("x:1", ["run"], device_requirements={"minCpu": 2}).check() == []


def test_every_runtime_schema_describes_every_field():
    from bytenite_nb.apps import runtimes

    def walk(schema, where):
        assert schema.get("additionalProperties") is False, where
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{where}.{name}"
            if prop.get("type") == "object" and prop.get("properties"):
                walk(prop, f"{where}.{name}")

    for key, cls in runtimes().items():
        if key in ("command", "python", "folder", "notebook", "image"):
            assert cls.SPEC_SCHEMA["description"] and cls.SPEC_SCHEMA["title"], key
            walk(cls.SPEC_SCHEMA, key)
            assert key in cls.SPEC_SCHEMA["required"]
