"""ByteNite folders: manifests in both spellings, errors that name the field,
schema.json and template.json, tags resolved from local folders, and the
``app``/``engine`` commands that make and check folders (no container needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import bytenite_nb as bn
from bytenite_nb.registry import resolve
from bytenite_nb.folders import find_folder, parse_tag
from bytenite_nb.folder_cli import validate_folder
from bytenite_nb.apps.folder import FolderApp
from bytenite_nb.apps.manifest import DeviceRequirements, Manifest
from bytenite_nb.exceptions import FieldError, JobValidationError, ManifestError

from .container_images import make_folder


def test_snake_and_camel_case_read_the_same(tmp_path):
    snake = make_folder(tmp_path, "snake", {
        "type": "app", "platform": "docker", "entrypoint": "main.py", "description": "d",
        "platform_config": {"container": "localhost/x:1", "network": True},
        "device_requirements": {"min_cpu": 2, "min_memory": 1.5, "gpu": 1}}, {"main.py": ""})
    camel = make_folder(tmp_path, "camel", {
        "type": "app", "platform": "docker", "entrypoint": "main.py", "description": "d",
        "platformConfig": {"container": "localhost/x:1", "network": True},
        "deviceRequirements": {"minCpu": 2, "minMemory": 1.5, "gpu": 1}}, {"main.py": ""})
    a, b = Manifest.load(str(snake)), Manifest.load(str(camel))
    for m in (a, b):
        assert (m.container, m.network, m.in_container) == ("localhost/x:1", True, True)
        assert m.requirements == DeviceRequirements(2.0, 1.5, 1)
        assert m.requirements.resources() == {"cpu": 2.0, "memory": 1.5e9, "gpu": 1.0}
        assert m.requirements.limit_options() == ["--cpus", "2", "--memory", "1500000000b"]
    assert FolderApp(str(snake)).resources() == {"cpu": 2.0, "memory": 1.5e9, "gpu": 1.0}


@pytest.mark.parametrize("manifest, message", [
    ({"platform": "kubernetes"}, "platform: expected one of docker"),
    ({"platform": "docker"}, "platform_config.container: is required for platform 'docker'"),
    ({"platform": "docker", "platform_config": {"container": "has space:1"}}, "platform_config.container: expected an image name"),
    ({"platform_config": {"container": 7}}, "platform_config.container: expected an image name"),
    ({"platform_config": {"network": "yes"}}, "platform_config.network: expected true or false"),
    ({"device_requirements": {"min_memory": -1}}, "device_requirements.min_memory: must be >= 0, got -1"),
    ({"device_requirements": {"gpu": "many"}}, "device_requirements.gpu: expected a number of GPUs"),
    ({"device_requirements": {"min_cpus": 1}}, "device_requirements.min_cpus: unknown field"),
    ({"version": "1.2.3"}, 'version: expected "major.minor"'),
    ({"type": "engine"}, "type: expected one of app, partitioner, assembler"),
])
def test_a_bad_manifest_names_its_file_and_field(tmp_path, manifest, message):
    folder = make_folder(tmp_path, "bad", {"entrypoint": "main.py", **manifest}, {"main.py": ""})
    with pytest.raises(ManifestError) as e:
        Manifest.load(str(folder))
    assert message in str(e.value)
    assert str(folder / "manifest.json") in str(e.value)


def test_manifests_as_bytenite_writes_them_load(tmp_path):
    # the full example of ByteNite's app docs: a private image's login and a list of GPU models
    docs = make_folder(tmp_path, "docs", {
        "description": "A stable diffusion app", "platform": "docker", "entrypoint": "main.py",
        "platform_config": {"container": "localhost/x:1", "private_image": True, "username": "someone",
                            "token": "dckr_pat_x", "secrets": ["MY_SECRET_ID"]},
        "device_requirements": {"min_cpu": 2, "min_memory": 2, "gpu": ["NVIDIA A100-SXM4-40GB", "NVIDIA RTX 4090"]}},
        {"main.py": ""})
    m = Manifest.load(str(docs))
    assert m.requirements.resources() == {"cpu": 2.0, "memory": 2e9, "gpu": 1.0}
    assert m.requirements.gpu_models == ("NVIDIA A100-SXM4-40GB", "NVIDIA RTX 4090")
    assert m.requirements.to_dict()["gpu"] == ["NVIDIA A100-SXM4-40GB", "NVIDIA RTX 4090"]
    # capitalised keys, as in some of ByteNite's own app repositories
    capitals = tmp_path / "capitals"
    (capitals / "app").mkdir(parents=True)
    (capitals / "app" / "main.py").write_text("")
    (capitals / "manifest.json").write_text(json.dumps({
        "Name": "flux", "Version": "1.0", "Platform": "docker", "platform_config": {"container": "localhost/x:1"},
        "Entrypoint": "main.py", "device_requirements": {"min_cpu": 2, "min_memory": 2, "gpu": True},
        "Description": "An image generation app"}))
    m = Manifest.load(str(capitals))
    assert (m.name, m.version, m.container, m.description, m.gpu) == ("flux", "1.0", "localhost/x:1",
                                                                       "An image generation app", 1)


@pytest.mark.parametrize("manifest, message", [
    ({"entrypiont": "x.py"}, 'entrypiont: unknown field (did you mean "entrypoint"?)'),
    ({"platform_config": {"contaner": "localhost/x:1"}},
     'platform_config.contaner: unknown field (did you mean "container"?)'),
    ({"platformConfig": {"contaner": "localhost/x:1"}},
     'platformConfig.contaner: unknown field (did you mean "container"?)'),
    ({"deviceRequirements": {"minCpu": "two"}}, 'deviceRequirements.minCpu: expected number, got "two"'),
    ({"device_requirements": {"min_cpu": 1, "minCpu": 2}}, "device_requirements.minCpu: the same field as min_cpu"),
    ({"device_requirements": {"gpu": 1.5}}, "device_requirements.gpu: expected a number of GPUs, true/false or a list"),
    ({"device_requirements": "lots"}, 'device_requirements: expected object, got "lots"'),
    ({"version": ["1.0"]}, 'version: expected string or number, got ["1.0"]'),
    ({"description": 3}, "description: expected string or null, got 3"),
    ({"platform_config": {"secrets": "MY_SECRET"}}, 'platform_config.secrets: expected array, got "MY_SECRET"'),
])
def test_a_manifest_is_checked_by_its_schema(tmp_path, manifest, message):
    folder = make_folder(tmp_path, "bad", {"entrypoint": "main.py", **manifest}, {"main.py": ""})
    with pytest.raises(ManifestError) as e:
        Manifest.load(str(folder))
    assert f"{folder / 'manifest.json'}: " in str(e.value)
    assert message in str(e.value)


def test_every_manifest_problem_is_named_at_once(tmp_path):
    folder = make_folder(tmp_path, "bad", {"entrypoint": "main.py", "platfrom": "docker",
                                          "device_requirements": {"min_cpu": -1, "min_mem": 2}}, {"main.py": ""})
    with pytest.raises(ManifestError) as e:
        Manifest.load(str(folder))
    for part in ("device_requirements.min_cpu: must be >= 0, got -1",
                 'device_requirements.min_mem: unknown field (did you mean "min_memory"?)',
                 'platfrom: unknown field (did you mean "platform"?)'):
        assert part in str(e.value)


@pytest.mark.parametrize("raw, message", [
    ({"min_cpu": "two"}, 'app.device_requirements.min_cpu: expected number, got "two"'),
    ({"maxCpu": 2}, 'app.device_requirements.maxCpu: unknown field (did you mean "min_cpu"?)'),
    ({"gpu": "A100"}, "app.device_requirements.gpu: expected a number of GPUs"),
    ([2], "app.device_requirements: expected object, got [2]"),
])
def test_device_requirements_errors_name_the_field(raw, message):
    with pytest.raises(ManifestError) as e:
        DeviceRequirements.parse(raw, "app.device_requirements")
    assert str(e.value).startswith(message)
    assert DeviceRequirements.parse({"minCpu": 1, "MinMemory": 0.5, "gpu": None}) == DeviceRequirements(1.0, 0.5, 0)


def test_an_entrypoint_may_not_link_out_of_app(tmp_path):
    folder = make_folder(tmp_path, "sneaky", {"entrypoint": "main.py"}, {})
    os.symlink("/etc/passwd", folder / "app" / "main.py")
    with pytest.raises(ManifestError) as e:
        Manifest.load(str(folder))
    assert "entrypoint: app/main.py is a symlink out of app/" in str(e.value)


def test_local_platform_runs_as_a_process_even_with_an_image(tmp_path):
    folder = make_folder(tmp_path, "local", {"entrypoint": "main.py", "platform": "local",
                                             "platform_config": {"container": "localhost/x:1"}}, {"main.py": ""})
    assert FolderApp(str(folder)).image is None
    assert FolderApp(str(folder), container="localhost/y:2").image == "localhost/y:2"
    docker = make_folder(tmp_path, "d", {"entrypoint": "main.py", "platform": "docker",
                                         "platform_config": {"container": "localhost/x:1"}}, {"main.py": ""})
    assert FolderApp(str(docker)).image == "localhost/x:1"
    assert FolderApp(str(docker), container=False).image is None


# -- tags -----------------------------------------------------------------------------


def versions(tmp_path, name="resize", kind="app", found=("0.9", "1.2", "1.10", "2.0")):
    for v in found:
        make_folder(tmp_path / "apps", f"{name}-{v}", {"name": name, "version": v, "type": kind,
                                                       "entrypoint": "main.py"}, {"main.py": f"# {v}\n"})


@pytest.mark.parametrize("tag, version", [
    ("resize", "2.0"), ("resize@1", "1.10"), ("resize@1.2", "1.2"), ("resize@0", "0.9"),
])
def test_the_highest_matching_version_wins(tmp_path, tag, version):
    versions(tmp_path)
    assert find_folder(tag, "app", str(tmp_path)).version == version
    assert resolve("app", tag, base_dir=str(tmp_path)).manifest.version == version


def test_a_tag_with_no_matching_version_lists_the_versions(tmp_path):
    versions(tmp_path)
    with pytest.raises(FieldError) as e:
        find_folder("resize@3", "app", str(tmp_path))
    assert "found 0.9, 1.2, 1.10, 2.0" in str(e.value)
    assert find_folder("other", "app", str(tmp_path)) is None
    assert find_folder("resize", "partitioner", str(tmp_path)) is None  # kinds do not mix


def test_nearer_folders_win_and_environment_folders_are_searched(tmp_path, monkeypatch):
    versions(tmp_path / "far", found=("1.0",))
    monkeypatch.setenv("BYTENITE_NB_APPS", str(tmp_path / "far" / "apps"))
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    assert find_folder("resize", "app", str(job_dir)).folder == str(tmp_path / "far" / "apps" / "resize-1.0")
    versions(job_dir, found=("1.0",))
    assert find_folder("resize@1.0", "app", str(job_dir)).folder == str(job_dir / "apps" / "resize-1.0")


def test_parse_tag_rejects_what_is_not_a_tag():
    assert parse_tag("a.b-c_d@12.3") == ("a.b-c_d", 12, 3)
    for bad in ("", "x@", "x@1.2.3", "x@one", "../x", "x y"):
        with pytest.raises(ValueError):
            parse_tag(bad)


def test_a_template_names_apps_and_engines_by_tag(tmp_path, client, monkeypatch):
    versions(tmp_path / "catalog", name="shout", found=("1.0",))
    shout = tmp_path / "catalog" / "apps" / "shout-1.0"
    (shout / "app" / "main.py").write_text(
        "import os\nd = open(os.path.join(os.environ['TASK_DIR'], 'data.bin')).read()\n"
        "open(os.path.join(os.environ['TASK_RESULTS_DIR'], 'out.txt'), 'w').write(d.upper())\n")
    make_folder(tmp_path / "catalog" / "engines", "glue", {"type": "assembler", "version": "2.1",
                                                           "entrypoint": "a.sh"},
                {"a.sh": 'cat "$TASK_RESULTS_DIR"/* > "$OUTPUT_DIR/all.txt"\n'})
    (tmp_path / "catalog" / "template.json").write_text(json.dumps({
        "id": "shouting", "partitioner": "split-lines", "app": "shout@1", "assembler": "glue@2",
        "params": {"partitioner": {"lines_per_chunk": 2}}}))
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    (tmp_path / "job.json").write_text(json.dumps({"templateId": "shouting", "dataSource": "in.txt",
                                                    "dataDestination": "out/"}))
    monkeypatch.setenv("BYTENITE_NB_TEMPLATES", str(tmp_path / "catalog"))
    result = bn.Job.from_file(tmp_path / "job.json").run(client=client)
    assert result.n_chunks == 2
    assert (tmp_path / "out" / "all.txt").read_text() == "A\nB\nC\n"


def test_schema_json_checks_params_and_is_itself_checked(tmp_path):
    folder = make_folder(tmp_path, "strict", {"entrypoint": "main.py"}, {"main.py": ""},
                         schema={"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}})
    job = bn.Job(source=str(tmp_path), app=str(folder), destination=str(tmp_path / "o"), params={"app": {"n": 0}})
    with pytest.raises(JobValidationError) as e:
        job.validate(check_storage=False)
    assert [str(x) for x in e.value.errors] == ["params.app.n: must be >= 1, got 0"]
    (folder / "schema.json").write_text(json.dumps({"type": "objekt"}))
    _, problems = validate_folder(str(folder))
    assert problems and "schema.json" in problems[0] and "not a valid JSON Schema" in problems[0]


def test_validate_folder_checks_template_tags(tmp_path):
    folder = make_folder(tmp_path, "t", {"entrypoint": "main.py"}, {"main.py": ""})
    (folder / "template.json").write_text(json.dumps({"id": "x", "app": "t@1", "partitioner": "nope@3",
                                                      "assembler": "concat"}))
    _, problems = validate_folder(str(folder))
    assert len(problems) == 1 and "partitioner" in problems[0] and "nope@3" in problems[0]


# -- the commands -----------------------------------------------------------------------


def cli(tmp_path, *args, ok=True):
    proc = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", *args], cwd=tmp_path,
                          capture_output=True, text=True)
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc


def test_app_new_makes_a_working_folder(tmp_path, client):
    cli(tmp_path, "app", "new", "counter", "--image", "none")
    assert "valid app counter@0.1" in cli(tmp_path, "app", "validate", "counter").stdout
    (tmp_path / "chunk.txt").write_text("a b\nc\n")
    cli(tmp_path, "app", "run", "counter", "--chunk", "chunk.txt", "--params", '{"label": "L"}')
    assert json.loads((tmp_path / "counter-results" / "summary.json").read_text()) == {
        "chunk": 0, "bytes": 6, "lines": 2, "words": 3, "label": "L"}
    # its template runs it as a job, found by id and tag
    (tmp_path / "job.json").write_text(json.dumps({"templateId": "counter-template", "dataSource": "chunk.txt",
                                                   "dataDestination": "out/"}))
    bn.Job.from_file(tmp_path / "job.json").run(client=client)
    assert json.loads((tmp_path / "out" / "output.json").read_text())["words"] == 3


def test_engine_new_makes_working_engines(tmp_path, client):
    cli(tmp_path, "engine", "new", "lines", "--type", "partitioner", "--image", "none")
    cli(tmp_path, "engine", "new", "join", "--type", "assembler", "--image", "none")
    assert "valid partitioner lines@0.1" in cli(tmp_path, "engine", "validate", "lines").stdout
    (tmp_path / "in.txt").write_text("".join(f"{i}\n" for i in range(25)))
    job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="lines@0", app="identity", assembler="join",
                 destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 10}},
                 base_dir=str(tmp_path))
    result = job.run(client=client)
    assert result.n_chunks == 3
    assert (tmp_path / "out" / "output.bin").read_text() == (tmp_path / "in.txt").read_text()


@pytest.mark.parametrize("args, needle", [
    (["app", "new", "../escape"], "a name is letters"),
    (["app", "validate", "missing"], "no such folder"),
    (["engine", "validate", "anapp"], "type: is 'app', expected a partitioner or assembler"),
    (["app", "validate", "anapp", "--params", "[1]"], "params: expected a JSON object"),
])
def test_commands_say_what_is_wrong(tmp_path, args, needle):
    make_folder(tmp_path, "anapp", {"entrypoint": "main.py"}, {"main.py": ""})
    proc = cli(tmp_path, *args, ok=False)
    assert needle in proc.stderr


def test_app_run_stops_an_app_that_prints_too_much(tmp_path):
    make_folder(tmp_path, "loud", {"entrypoint": "main.py"},
                {"main.py": "import sys\nsys.stdout.write('x' * (3 * 2**20))\n"})
    (tmp_path / "chunk.txt").write_text("a\n")
    proc = cli(tmp_path, "app", "run", "loud", "--chunk", "chunk.txt", "--max-output", "1", ok=False)
    assert "more than 1 MiB" in proc.stderr or "maxAppOutput" in proc.stderr, proc.stderr
    # without the option, a job's default limit (256 MiB) applies and 3 MiB is fine
    cli(tmp_path, "app", "run", "loud", "--chunk", "chunk.txt", "--out", "ok")
