"""ByteNite partitioner and assembler engine folders, named by a job wherever it
names a partitioner or an assembler: as processes, and in containers on a
real podman (images built locally, tests/container_images.py)."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

import bytenite_nb as bn
from bytenite_nb.engine_folders import EngineAssembler, EnginePartitioner
from bytenite_nb.exceptions import JobFailed, JobValidationError

from .container_images import leftover_containers, make_folder, test_images

# Splits every source file into chunks of N lines (N from PARTITIONER_PARAMS).
SPLITTER = textwrap.dedent("""\
    import json, os
    params = json.loads(os.environ["PARTITIONER_PARAMS"])
    n = params["lines"]
    count = 0
    for name in sorted(os.listdir(os.environ["SOURCE_DIR"])):
        lines = open(os.path.join(os.environ["SOURCE_DIR"], name), "rb").readlines()
        for i in range(0, len(lines), n):
            with open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{count}.bin"), "wb") as f:
                f.writelines(lines[i:i + n])
            count += 1
""")

# Lists what it was given, then joins it in name order.
JOINER = textwrap.dedent("""\
    import json, os
    params = json.loads(os.environ["ASSEMBLER_PARAMS"])
    results = os.environ["TASK_RESULTS_DIR"]
    names = sorted(os.listdir(results))
    out = os.environ["OUTPUT_DIR"]
    with open(os.path.join(out, params["name"]), "wb") as f:
        for name in names:
            f.write(open(os.path.join(results, name), "rb").read())
    with open(os.path.join(out, "names.json"), "w") as f:
        json.dump({"names": names, "uid": os.getuid()}, f)
""")


def engines(tmp_path, image: str | None):
    """A splitter (partitioner) and a joiner (assembler) engine folder, in ``image`` or as processes."""
    platform = {"platform": "docker", "platform_config": {"container": image}} if image else {"platform": "local"}
    make_folder(tmp_path / "engines", "splitter", {"type": "partitioner", "entrypoint": "split.py", **platform},
                {"split.py": SPLITTER},
                schema={"type": "object", "properties": {"lines": {"type": "integer", "minimum": 1}},
                        "required": ["lines"], "additionalProperties": False})
    make_folder(tmp_path / "engines", "joiner", {"type": "assembler", "entrypoint": "join.py", **platform},
                {"join.py": JOINER},
                schema={"type": "object", "properties": {"name": {"type": "string", "default": "joined.txt"}}})


def job_file(tmp_path, **fields) -> str:
    source = tmp_path / "data"
    source.mkdir(exist_ok=True)
    (source / "a.txt").write_text("".join(f"a{i}\n" for i in range(7)))
    (source / "b.txt").write_text("".join(f"b{i}\n" for i in range(3)))
    job = {"name": "engines", "partitioner": "engines/splitter", "assembler": "engines/joiner",
           "app": {"command": ["sh", "-c", 'tr a-z A-Z < "$TASK_DIR/data.bin" > "$TASK_RESULTS_DIR/out.txt"']},
           "dataSource": "data/", "dataDestination": "out/",
           "params": {"partitioner": {"lines": 3}, "assembler": {}},
           "config": {"maxTaskRetries": 0, "retryBackoff": 0}, **fields}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return str(path)


def check_output(tmp_path, uid_is_root: bool | None = None):
    out = tmp_path / "out"
    assert (out / "joined.txt").read_text() == "A0\nA1\nA2\nA3\nA4\nA5\nA6\nB0\nB1\nB2\n"
    listing = json.loads((out / "names.json").read_text())
    # every chunk's result, named after its chunk: never a collision
    assert listing["names"] == [f"chunk_{i:04d}_out.txt" for i in range(4)]
    if uid_is_root is not None:
        assert (listing["uid"] == 0) == uid_is_root
    assert (out / "_SUCCESS").exists()


def test_engine_folders_as_processes(client, tmp_path):
    engines(tmp_path, None)
    job = bn.Job.from_file(job_file(tmp_path))
    spec = job.resolve()
    assert isinstance(spec.partitioner, EnginePartitioner) and isinstance(spec.assembler, EngineAssembler)
    result = job.run(client=client)
    assert result.n_chunks == 4  # a.txt: 3+3+1 lines, b.txt: 3
    check_output(tmp_path)


def test_engine_folders_by_tag_and_object(client, tmp_path):
    engines(tmp_path, None)
    path = job_file(tmp_path, partitioner="splitter@1", assembler={"folder": "engines/joiner", "container": False})
    job = bn.Job.from_file(path)
    result = job.run(client=client)
    assert result.ok
    check_output(tmp_path)


def test_engine_params_are_checked_against_its_schema(tmp_path):
    engines(tmp_path, None)
    job = bn.Job.from_file(job_file(tmp_path, params={"partitioner": {"lines": "three", "extra": 1}}))
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert sorted(e.value.fields) == ["params.partitioner.extra", "params.partitioner.lines"]


@pytest.mark.parametrize("spec, messages", [
    ({"folder": "engines/splitter", "contaner": False},
     ['partitioner.contaner: unknown field (did you mean "container"?)']),
    ({"folder": "engines/splitter", "container": True},
     ["partitioner.container: expected false (run as a process) or an image name, got true"]),
    ({"foldr": "engines/splitter"}, ["partitioner.folder: is required",
                                     'partitioner.foldr: unknown field (did you mean "folder"?)']),
])
def test_an_engine_folder_spec_is_checked_by_its_schema(tmp_path, spec, messages):
    engines(tmp_path, None)
    job = bn.Job.from_file(job_file(tmp_path, partitioner=spec))
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert sorted(str(err) for err in e.value.errors) == messages


def test_an_app_folder_is_not_a_partitioner(tmp_path):
    engines(tmp_path, None)
    make_folder(tmp_path / "engines", "an-app", {"type": "app", "entrypoint": "main.py"}, {"main.py": ""})
    job = bn.Job.from_file(job_file(tmp_path, partitioner="engines/an-app"))
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert e.value.fields == ["partitioner"]
    assert "type is 'app', not a partitioner" in str(e.value)


@pytest.mark.parametrize("script, needle", [
    ('open(os.path.join(c, "chunk1.bin"), "w").write("x")', "CHUNKS_DIR holds 'chunk1.bin'"),
    ('[open(os.path.join(c, f"data_{i}.bin"), "w").write("x") for i in (0, 2)]', "no data_1.bin"),
    ('open(os.path.join(c, "data_0.bin"), "w").write("x"); os.symlink("/etc/passwd", os.path.join(c, "data_1.bin"))',
     "contains a symlink 'data_1.bin'"),
    ('import sys; sys.exit("cannot read the source")', "cannot read the source"),
], ids=["bad-name", "gap", "symlink", "crash"])
def test_a_partitioner_engine_that_breaks_its_contract_fails_the_job(client, tmp_path, script, needle):
    engines(tmp_path, None)
    make_folder(tmp_path / "engines", "bad", {"type": "partitioner", "platform": "local", "entrypoint": "p.py"},
                {"p.py": f"import os\nc = os.environ['CHUNKS_DIR']\n{script}\n"})
    job = bn.Job.from_file(job_file(tmp_path, partitioner="engines/bad", params={}))
    with pytest.raises(JobFailed) as e:
        job.run(client=client)
    assert needle in str(e.value) and "partitioner engine bad@1.0" in str(e.value)
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_an_assembler_engine_that_fails_leaves_nothing(client, tmp_path):
    engines(tmp_path, None)
    make_folder(tmp_path / "engines", "half", {"type": "assembler", "platform": "local", "entrypoint": "a.sh"},
                {"a.sh": 'echo partial > "$OUTPUT_DIR/partial.txt"; echo "disk full" >&2; exit 4\n'})
    job = bn.Job.from_file(job_file(tmp_path, assembler="engines/half"))
    with pytest.raises(JobFailed) as e:
        job.run(client=client)
    assert "assembler engine half@1.0 exited with status 4" in str(e.value) and "disk full" in str(e.value)
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


@pytest.mark.slow
def test_engine_folders_in_containers(client, tmp_path):
    _, python_image = test_images()
    engines(tmp_path, python_image)
    job = bn.Job.from_file(job_file(tmp_path))
    result = job.run(client=client)
    assert result.n_chunks == 4
    check_output(tmp_path, uid_is_root=False)  # the engine ran as an unprivileged user
    assert os.stat(tmp_path / "out" / "joined.txt").st_uid == os.geteuid()
    assert leftover_containers(result.job_id) == []


@pytest.mark.slow
def test_partitioner_engine_in_a_container_cannot_touch_the_source(client, tmp_path):
    _, python_image = test_images()
    engines(tmp_path, python_image)
    make_folder(tmp_path / "engines", "vandal", {"type": "partitioner", "platform": "docker", "entrypoint": "p.sh",
                                                 "platform_config": {"container": python_image}},
                {"p.sh": 'echo gone > "$SOURCE_DIR/a.txt"\n'})
    job = bn.Job.from_file(job_file(tmp_path, partitioner="engines/vandal", params={}))
    with pytest.raises(JobFailed) as e:
        job.run(client=client)
    assert "Read-only file system" in str(e.value)
    assert (tmp_path / "data" / "a.txt").read_text().startswith("a0\n")  # the source is untouched
    assert leftover_containers(e.value.result.job_id) == []


def test_cancelling_a_job_stops_its_hung_partitioner_engine(client, tmp_path):
    engines(tmp_path, None)
    pidfile = tmp_path / "engine.pid"
    make_folder(tmp_path / "engines", "hang", {"type": "partitioner", "platform": "local", "entrypoint": "p.py"},
                {"p.py": "import json, os, time\n"
                         "with open(json.loads(os.environ['PARTITIONER_PARAMS'])['pidfile'], 'w') as f:\n"
                         "    f.write(str(os.getpid()))\n"
                         "time.sleep(600)\n"})
    job = bn.Job.from_file(job_file(tmp_path, partitioner="engines/hang",
                                    params={"partitioner": {"pidfile": str(pidfile)}}))
    handle = job.submit(client=client)
    while not (pidfile.exists() and pidfile.read_text()) and not handle.done():
        handle.wait(0.2)
    pid = int(pidfile.read_text())
    handle.cancel()  # what jobTimeout does too
    with pytest.raises(bn.JobCancelled):
        handle.result()
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []
    # The engine ran under the job, so the cancel reached it: SIGTERM, then SIGKILL.
    import time

    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)


def test_a_process_partitioner_engine_cannot_change_the_source(tmp_path):
    """Run as a process, the engine gets copies: writing into SOURCE_DIR leaves the user's files alone."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "a.txt").write_text("original\n")
    make_folder(tmp_path / "engines", "scribbler", {"type": "partitioner", "platform": "local", "entrypoint": "p.sh"},
                {"p.sh": 'echo changed > "$SOURCE_DIR/a.txt"; cp "$SOURCE_DIR/a.txt" "$CHUNKS_DIR/data_0.bin"\n'})
    job = bn.Job(source=str(src), partitioner=str(tmp_path / "engines" / "scribbler"), app="identity",
                 assembler="concat", destination=str(tmp_path / "out"))
    job.run(scheduler="sync")
    assert (tmp_path / "out" / "output.bin").read_text() == "changed\n"
    assert (src / "a.txt").read_text() == "original\n"


def test_plan_of_an_engine_partitioner_leaves_no_copies(tmp_path, monkeypatch):
    import tempfile

    src = tmp_path / "data"
    src.mkdir()
    (src / "a.txt").write_text("x" * 100)
    make_folder(tmp_path / "engines", "halves", {"type": "partitioner", "platform": "local", "entrypoint": "p.sh"},
                {"p.sh": 'head -c 50 "$SOURCE_DIR/a.txt" > "$CHUNKS_DIR/data_0.bin"; '
                         'tail -c 50 "$SOURCE_DIR/a.txt" > "$CHUNKS_DIR/data_1.bin"\n'})
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    job = bn.Job(source=str(src), partitioner=str(tmp_path / "engines" / "halves"), app="identity",
                 destination=str(tmp_path / "out"))
    refs = job.plan(scheduler="sync")
    assert [r.size for r in refs] == [50, 50]
    assert list(temp.iterdir()) == []
