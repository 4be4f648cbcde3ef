"""A repository laid out as ByteNite's public app repositories are: app and
engine folders at the top, templates in ``templates/`` naming every component
by tag, and a job file at the root giving only ``templateId``, ``dataSource``,
``dataDestination`` and ``params``. The job runs unchanged, every stage in the
image its manifest names (or as a process when the manifest says so)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import bytenite_nb as bn

from .container_images import leftover_containers, test_images

PARTITIONER_MAIN = '''\
# === PARTITIONER: one chunk per group of lines ===
import json
import os

source_dir = os.getenv("SOURCE_DIR")
if source_dir is None:
    raise ValueError("Environment variable 'SOURCE_DIR' is not set.")
chunks_dir = os.getenv("CHUNKS_DIR")
if not chunks_dir or not os.path.isdir(chunks_dir):
    raise ValueError("Environment variable 'CHUNKS_DIR' is not set or not a folder.")
try:
    params = json.loads(os.getenv("PARTITIONER_PARAMS") or "{}")
except json.JSONDecodeError:
    raise ValueError("Environment variable 'PARTITIONER_PARAMS' contains invalid JSON.")

chunk_file_naming = "data_{chunk_index}.bin"


def write_chunk(index, data):
    with open(os.path.join(chunks_dir, chunk_file_naming.format(chunk_index=index)), "wb") as out:
        out.write(data)


if __name__ == "__main__":
    lines = []
    for name in sorted(os.listdir(source_dir)):
        with open(os.path.join(source_dir, name), "rb") as f:
            lines += f.read().splitlines(keepends=True)
    per_chunk = int(params["lines_per_chunk"])
    for index, start in enumerate(range(0, len(lines), per_chunk)):
        write_chunk(index, b"".join(lines[start:start + per_chunk]))
    print(f"wrote {index + 1} chunks")
'''

APP_MAIN = '''\
# === APP: shout every line of the chunk ===
import json
import os

task_dir = os.getenv("TASK_DIR")
task_results_dir = os.getenv("TASK_RESULTS_DIR")
if task_dir is None or task_results_dir is None:
    raise ValueError("TASK_DIR and TASK_RESULTS_DIR must be set.")
app_params = json.loads(os.getenv("APP_PARAMS") or "{}")

if __name__ == "__main__":
    with open(os.path.join(task_dir, "data.bin"), "rb") as f:
        data = f.read().decode("utf-8")
    suffix = app_params.get("suffix", "")
    shouted = "".join(line.upper() + suffix + "\\n" for line in data.splitlines())
    with open(os.path.join(task_results_dir, "shouted.txt"), "w", encoding="utf-8") as out:
        out.write(shouted)
'''

ASSEMBLER_MAIN = '''\
# === ASSEMBLER: every result, in chunk order, into one file ===
import json
import os

task_results_dir = os.getenv("TASK_RESULTS_DIR")
if task_results_dir is None or not os.path.isdir(task_results_dir):
    raise ValueError("Environment variable 'TASK_RESULTS_DIR' is not set or not a folder.")
output_dir = os.getenv("OUTPUT_DIR")
if not output_dir or not os.access(output_dir, os.W_OK):
    raise ValueError("Environment variable 'OUTPUT_DIR' is not set or not writable.")
params = json.loads(os.getenv("ASSEMBLER_PARAMS") or "{}")

if __name__ == "__main__":
    names = sorted(n for n in os.listdir(task_results_dir) if os.path.isfile(os.path.join(task_results_dir, n)))
    with open(os.path.join(output_dir, params.get("output_name", "all.txt")), "wb") as out:
        for name in names:
            with open(os.path.join(task_results_dir, name), "rb") as f:
                out.write(f.read())
'''


def make_repository(root, image: str | None):
    """The repository: three folders at the top, a template, a job file at the root."""
    platform = {"platform": "docker", "platform_config": {"container": image}} if image else {"platform": "local"}
    for name, kind, version, main in (("fanout-lines", "partitioner", "0.2", PARTITIONER_MAIN),
                                      ("shout-app", "app", "1.3", APP_MAIN),
                                      ("merge-text", "assembler", "0.1", ASSEMBLER_MAIN)):
        (root / name / "app").mkdir(parents=True)
        (root / name / "manifest.json").write_text(json.dumps({
            "name": name, "version": version, "type": kind, "description": f"the {kind} of the test repository",
            "entrypoint": "main.py", **platform, "device_requirements": {"min_cpu": 1, "min_memory": 1}}, indent=2))
        (root / name / "app" / "main.py").write_text(main)
    (root / "templates").mkdir()
    (root / "templates" / "shout-lines-template.json").write_text(json.dumps({
        "id": "shout-lines-template", "description": "Shout every line of a text, in parallel",
        "partitioner": "fanout-lines", "app": "shout-app@1", "assembler": "merge-text@0.1",
        "default_params": {
            "partitioner": {"app_id": "fanout-lines", "version": "0.2", "parameters": {"lines_per_chunk": 2}},
            "app": {"app_id": "shout-app", "version": "1.3", "parameters": {"suffix": "?"}},
            "assembler": {"app_id": "merge-text", "version": "0.1", "parameters": {}},
        }}, indent=2))
    (root / "data").mkdir()
    (root / "data" / "poem.txt").write_text("roses are red\nviolets are blue\nsugar is sweet\nand so are you\nend\n")
    (root / "job.json").write_text(json.dumps({
        "templateId": "shout-lines-template",
        "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "data/poem.txt"}},
        "dataDestination": {"dataSourceDescriptor": "file", "params": {"path": "output/"}},
        "params": {"app": {"suffix": "!"}, "assembler": {"output_name": "poem.txt"}},
    }, indent=2))
    return root / "job.json"


EXPECTED = "ROSES ARE RED!\nVIOLETS ARE BLUE!\nSUGAR IS SWEET!\nAND SO ARE YOU!\nEND!\n"


def test_a_bytenite_repository_runs_as_processes_from_the_cli(tmp_path):
    job_file = make_repository(tmp_path, image=None)
    proc = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "run", str(job_file), "--workers", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "output" / "poem.txt").read_text() == EXPECTED
    success = json.loads((tmp_path / "output" / "_SUCCESS").read_text())
    assert success["chunkCount"] == 3 and [f["name"] for f in success["files"]] == ["poem.txt"]
    # the same repository, named from a job file elsewhere, by the same tags
    job = bn.Job.from_file(job_file)
    spec = job.resolve()
    assert (spec.partitioner.manifest.tag, spec.app.manifest.tag, spec.assembler.manifest.tag) == (
        "fanout-lines@0.2", "shout-app@1.3", "merge-text@0.1")
    assert spec.partitioner_params == {"lines_per_chunk": 2}
    assert spec.app_params == {"suffix": "!"}  # the job's params win over the template's


def test_a_bytenite_repository_runs_every_stage_in_its_image(tmp_path, client):
    _, python_image = test_images()
    job_file = make_repository(tmp_path, image=python_image)
    job = bn.Job.from_file(job_file)
    spec = job.resolve()
    assert spec.partitioner.image == spec.app.image == spec.assembler.image == python_image
    result = job.run(client=client, id="bytenite-repo-containers")
    assert result.n_chunks == 3
    assert (tmp_path / "output" / "poem.txt").read_text() == EXPECTED
    assert leftover_containers("bytenite-repo-containers") == []


def test_a_template_tag_that_matches_nothing_says_where_it_looked(tmp_path):
    job_file = make_repository(tmp_path, image=None)
    template = tmp_path / "templates" / "shout-lines-template.json"
    data = json.loads(template.read_text())
    data["app"] = "shout-app@2"
    template.write_text(json.dumps(data))
    with pytest.raises(bn.JobValidationError) as e:
        bn.Job.from_file(job_file).validate()
    assert [str(err) for err in e.value.errors] == [
        "app: no version of app 'shout-app' matches 'shout-app@2'; found 1.3"]
    data["app"] = "shout-ap"
    template.write_text(json.dumps(data))
    with pytest.raises(bn.JobValidationError) as e:
        bn.Job.from_file(job_file).validate()
    message = str(e.value.errors[0])
    assert "unknown app 'shout-ap'" in message and str(tmp_path / "templates") in message and str(tmp_path) in message
    assert not (tmp_path / "output").exists()


def test_app_validate_checks_a_repository_template(tmp_path):
    make_repository(tmp_path, image=None)
    proc = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "app", "validate", "shout-app"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and "valid app shout-app@1.3" in proc.stdout, proc.stdout + proc.stderr



def test_the_builder_finds_a_repository_template_s_components(tmp_path):
    from bytenite_nb.widgets import JobBuilder

    job_file = make_repository(tmp_path, image=None)
    (tmp_path / "fanout-lines" / "schema.json").write_text(json.dumps(
        {"type": "object", "properties": {"lines_per_chunk": {"type": "integer", "minimum": 1}}}))
    builder = JobBuilder(bn.Job.from_file(job_file))
    assert "lines_per_chunk" in builder.partitioner_form.fields
    assert not builder.partitioner_doc.value.startswith("cannot load") and "cannot load" not in builder.partitioner_doc.value
    assert builder.job.to_dict() == bn.Job.from_file(job_file).to_dict()
