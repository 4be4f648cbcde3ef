"""``bytenite-nb app ...`` and ``bytenite-nb engine ...``: ByteNite folders from the command line.

    bytenite-nb app new NAME [--image IMAGE] [--dir PARENT]
    bytenite-nb app validate FOLDER [--params JSON]
    bytenite-nb app run FOLDER --chunk FILE [--params JSON] [--out DIR] [--no-container]
    bytenite-nb engine new NAME --type partitioner|assembler [--image IMAGE] [--dir PARENT]
    bytenite-nb engine validate FOLDER

``app run`` runs one chunk the way a job would (the same runtime, container
and checks on the results), for debugging an app without a cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import click

from .apps.manifest import Manifest
from .exceptions import AppError, FieldError, JobValidationError, ManifestError

DEFAULT_IMAGE = "python:3.11-slim"
NAME_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit"


# -- scaffolds ------------------------------------------------------------------------

APP_MAIN = '''"""{name}: runs on every chunk.

The runtime contract: the chunk is $TASK_DIR/data.bin, results go into
$TASK_RESULTS_DIR, the params are the JSON in $APP_PARAMS, and
$CHUNK_NUMBER says which chunk this is.
"""

import json
import os

params = json.loads(os.environ.get("APP_PARAMS") or "{{}}")
chunk = os.path.join(os.environ["TASK_DIR"], "data.bin")
results = os.environ["TASK_RESULTS_DIR"]

with open(chunk, "rb") as f:
    data = f.read()
text = data.decode(params.get("encoding", "utf-8"), errors="replace")
summary = {{
    "chunk": int(os.environ.get("CHUNK_NUMBER", "0")),
    "bytes": len(data),
    "lines": text.count("\\n"),
    "words": len(text.split()),
    "label": params.get("label", ""),
}}
with open(os.path.join(results, "summary.json"), "w") as f:
    f.write(json.dumps(summary) + "\\n")
'''

APP_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "default": "", "description": "Text copied into every summary."},
        "encoding": {"type": "string", "default": "utf-8", "description": "Encoding of the chunks."},
    },
    "additionalProperties": False,
}

PARTITIONER_MAIN = '''"""{name}: splits the source into chunks.

The partitioner contract: the source files are in $SOURCE_DIR, each chunk is
written to $CHUNKS_DIR as data_0.bin, data_1.bin, ..., and the params are
the JSON in $PARTITIONER_PARAMS.
"""

import json
import os

params = json.loads(os.environ.get("PARTITIONER_PARAMS") or "{{}}")
lines_per_chunk = int(params.get("lines_per_chunk", 100))
source = os.environ["SOURCE_DIR"]
chunks = os.environ["CHUNKS_DIR"]

count = 0


def write(lines):
    global count
    with open(os.path.join(chunks, f"data_{{count}}.bin"), "wb") as out:
        out.writelines(lines)
    count += 1


for folder, _, names in sorted(os.walk(source)):
    for name in sorted(names):
        with open(os.path.join(folder, name), "rb") as f:
            batch = []
            for line in f:
                batch.append(line)
                if len(batch) == lines_per_chunk:
                    write(batch)
                    batch = []
            if batch:
                write(batch)
'''

PARTITIONER_SCHEMA = {
    "type": "object",
    "properties": {
        "lines_per_chunk": {"type": "integer", "minimum": 1, "default": 100,
                            "description": "Lines in each chunk (chunks never span two files)."},
    },
    "additionalProperties": False,
}

ASSEMBLER_MAIN = '''"""{name}: joins the results of every chunk.

The assembler contract: every chunk's results are in $TASK_RESULTS_DIR,
named after their chunk (chunk_0000_..., chunk_0001_..., so name order is
chunk order); what is written to $OUTPUT_DIR goes to the destination; the
params are the JSON in $ASSEMBLER_PARAMS.
"""

import json
import os

params = json.loads(os.environ.get("ASSEMBLER_PARAMS") or "{{}}")
results = os.environ["TASK_RESULTS_DIR"]
output = os.path.join(os.environ["OUTPUT_DIR"], params.get("output_name", "output.bin"))

with open(output, "wb") as out:
    for folder, _, names in sorted(os.walk(results)):
        for name in sorted(names):
            with open(os.path.join(folder, name), "rb") as f:
                out.write(f.read())
'''

ASSEMBLER_SCHEMA = {
    "type": "object",
    "properties": {
        "output_name": {"type": "string", "minLength": 1, "default": "output.bin",
                        "description": "Name of the joined file."},
    },
    "additionalProperties": False,
}


def scaffold(parent: str, name: str, kind: str, image: str | None) -> str:
    """Write a working ByteNite folder ``parent/name`` of type ``kind``; return its path.

    ``image`` names the container image the entrypoint runs in (it needs
    ``python3``); None makes a folder that runs as a process on the worker.

    >>> import os, tempfile
    >>> path = scaffold(tempfile.mkdtemp(), "word-count", "app", None)
    >>> sorted(os.listdir(path))
    ['app', 'manifest.json', 'schema.json', 'template.json']
    """
    from .folders import TAG

    if not TAG.match(name) or "@" in name:
        raise click.BadParameter(f"{name!r}: a name is {NAME_RULE}", param_hint="NAME")
    folder = os.path.join(parent, name)
    if os.path.exists(folder) and os.listdir(folder):
        raise click.BadParameter(f"{folder} exists and is not empty", param_hint="NAME")
    main, schema, description = {
        "app": (APP_MAIN, APP_SCHEMA, "Counts the bytes, lines and words of every chunk."),
        "partitioner": (PARTITIONER_MAIN, PARTITIONER_SCHEMA, "Splits text files into chunks of whole lines."),
        "assembler": (ASSEMBLER_MAIN, ASSEMBLER_SCHEMA, "Joins every chunk's results in chunk order."),
    }[kind]
    manifest: dict = {"name": name, "version": "0.1", "type": kind, "description": description,
                      "platform": "docker" if image else "local", "entrypoint": "main.py"}
    if image:
        manifest["platform_config"] = {"container": image}
    manifest["device_requirements"] = {"min_cpu": 1, "min_memory": 0.5}
    os.makedirs(os.path.join(folder, "app"), exist_ok=True)
    _write(os.path.join(folder, "manifest.json"), json.dumps(manifest, indent=2) + "\n")
    _write(os.path.join(folder, "app", "main.py"), main.format(name=name))
    _write(os.path.join(folder, "schema.json"), json.dumps(schema, indent=2) + "\n")
    if kind == "app":
        template = {"id": f"{name}-template", "description": f"{description} One chunk per 1000 lines.",
                    "partitioner": "split-lines", "app": f"{name}@0", "assembler": "concat",
                    "params": {"partitioner": {"lines_per_chunk": 1000}, "app": {}, "assembler": {}}}
        _write(os.path.join(folder, "template.json"), json.dumps(template, indent=2) + "\n")
    return folder


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# -- checks ---------------------------------------------------------------------------


def validate_folder(folder: str, kind: str | None = None, params: dict | None = None) -> tuple[Manifest, list[str]]:
    """Check a ByteNite folder: its manifest, ``schema.json`` (a valid JSON Schema,
    and ``params`` against it), ``template.json`` (its tags resolve). Returns the
    manifest and the problems found, each naming its file and field; a manifest
    that cannot be read raises :class:`ManifestError`.

    >>> import tempfile
    >>> manifest, problems = validate_folder(scaffold(tempfile.mkdtemp(), "word-count", "app", None))
    >>> manifest.tag, problems
    ('word-count@0.1', [])
    """
    from .schema import check, check_schema

    manifest = Manifest.load(folder)
    problems: list[str] = []
    if kind and manifest.type != kind and not (kind == "engine" and manifest.type != "app"):
        want = "a partitioner or assembler" if kind == "engine" else f"an {kind}"
        problems.append(f"{manifest.path}: type: is {manifest.type!r}, expected {want}")
    schema = None
    try:
        schema = manifest.schema()
    except ManifestError as exc:
        problems.append(str(exc))
    if schema is not None:
        schema_path = os.path.join(manifest.folder, "schema.json")
        problems += [f"{schema_path}: {e}" for e in check_schema(schema, "schema")]
        if params is not None and not problems:
            problems += [str(e) for e in check(params, schema, "params")]
    template_path = os.path.join(manifest.folder, "template.json")
    if os.path.exists(template_path):
        problems += _check_template(template_path)
    return manifest, problems


def _check_template(path: str) -> list[str]:
    from . import registry

    try:
        with open(path, encoding="utf-8") as f:
            template = json.load(f)
    except json.JSONDecodeError as exc:
        return [f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]
    if not isinstance(template, dict):
        return [f"{path}: expected a JSON object"]
    problems = []
    if not isinstance(template.get("id"), str) or not template["id"]:
        problems.append(f"{path}: id: is required")
    base = os.path.dirname(path)
    for kind in ("partitioner", "app", "assembler"):
        spec = template.get(kind)
        if spec is None:
            continue
        try:
            registry.resolve(kind, spec, base_dir=base, near=[base, os.path.dirname(base)])
        except FieldError as exc:
            problems.append(f"{path}: {exc}")
        except JobValidationError as exc:
            problems += [f"{path}: {e}" for e in exc.errors]
    return problems


def _params(text: str | None) -> dict | None:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise JobValidationError(FieldError("params", f"cannot read {text[1:]}: {exc.strerror}")) from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobValidationError(FieldError("params", f"not valid JSON: {exc.msg}")) from exc
    if not isinstance(value, dict):
        raise JobValidationError(FieldError("params", "expected a JSON object"))
    return value


def _report(folder: str, kind: str | None, params_text: str | None) -> None:
    manifest, problems = validate_folder(folder, kind, _params(params_text))
    if problems:
        raise ManifestError(f"{manifest.folder}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    where = f"in image {manifest.container}" if manifest.in_container else "as a process"
    needs = manifest.requirements.to_dict()
    click.echo(f"{manifest.folder}: valid {manifest.type} {manifest.tag}, runs app/{manifest.entrypoint} {where}"
               + (f"; needs {json.dumps(needs)}" if needs else ""))
    if manifest.in_container:
        from .apps.container import find_container_tool

        try:
            tool = find_container_tool()
        except AppError:
            click.echo("  note: no container tool here (podman or docker) to run it", err=True)
            return
        if not tool.image_exists(manifest.container):
            click.echo(f"  note: image {manifest.container} is not on this machine yet ({tool.kind})", err=True)


# -- the commands -----------------------------------------------------------------------


@click.group("app")
def app_group() -> None:
    """Make, check and debug ByteNite app folders."""


@app_group.command("new")
@click.argument("name")
@click.option("--image", default=DEFAULT_IMAGE, show_default=True,
              help="Image the app runs in (it needs python3); 'none' runs it as a process.")
@click.option("--dir", "parent", default=".", type=click.Path(file_okay=False), help="Where to create it.")
def app_new(name, image, parent):
    """Create a working app folder NAME (manifest, app/main.py, schema, template)."""
    folder = scaffold(parent, name, "app", None if image == "none" else image)
    click.echo(f"created {folder}: try  bytenite-nb app run {folder} --chunk SOME_FILE")


@app_group.command("validate")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--params", "params_text", help="App params to check against schema.json (JSON, or @file).")
def app_validate(folder, params_text):
    """Check an app folder: manifest, schema.json, template.json."""
    _report(folder, "app", params_text)


@app_group.command("run")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--chunk", "chunk_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The file given to the app as its chunk (TASK_DIR/data.bin).")
@click.option("--params", "params_text", help="App params (JSON, or @file), checked against schema.json.")
@click.option("--chunk-number", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--out", type=click.Path(file_okay=False), help="Where the results go (default: ./<name>-results).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds before the app is stopped.")
@click.option("--no-container", is_flag=True, help="Run the entrypoint as a process, even if the manifest names an image.")
@click.option("--max-output", type=click.FloatRange(min=0, min_open=True), metavar="MIB",
              help="MiB the app may print before it is stopped (default: a job's config.maxAppOutput default).")
def app_run(folder, chunk_file, params_text, chunk_number, out, timeout, no_container, max_output):
    """Run the app in FOLDER on one chunk, the way a job runs it."""
    from . import config
    from .apps.base import TaskContext
    from .apps.folder import FolderApp
    from .apps.process import tail
    from .job import CONFIG_SCHEMA
    from .schema import check, with_defaults
    from .transfer import list_tree

    if max_output is None:  # the same limit a job applies
        max_output = CONFIG_SCHEMA["properties"]["maxAppOutput"]["default"]
    app = FolderApp(os.path.abspath(folder), container=False if no_container else None)
    errors = app.check("app")
    if errors:
        raise JobValidationError(errors)
    params = _params(params_text) or {}
    schema = app.schema
    problems = check(params, schema, "params")
    if problems:
        raise JobValidationError(problems)
    params = with_defaults(params, schema)
    out = os.path.abspath(out or f"{app.manifest.name}-results")
    if os.path.exists(out) and os.listdir(out):
        raise click.BadParameter(f"{out} is not empty", param_hint="--out")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bytenite-nb-app-run-")
    try:
        task_dir, log_dir = os.path.join(work, "task"), os.path.join(work, "logs")
        os.mkdir(task_dir)
        os.mkdir(log_dir)
        chunk_path = os.path.join(task_dir, "data.bin")
        shutil.copyfile(chunk_file, chunk_path)
        user_cache = os.path.join(config.user_cache_dir(), app.manifest.name)
        for d in (config.shared_cache_dir(), user_cache):
            os.makedirs(d, exist_ok=True)
        ctx = TaskContext(job_id=f"app-run-{os.getpid()}", chunk_number=chunk_number, task_dir=task_dir,
                          chunk_path=chunk_path, results_dir=out, params=params, timeout=timeout,
                          shared_cache_dir=config.shared_cache_dir(), user_cache_dir=user_cache, log_dir=log_dir,
                          max_output=int(max_output * 2**20))
        where = f"in {app.image}" if app.image else "as a process"
        click.echo(f"running {app.manifest.tag} {where} on {chunk_file} (chunk {chunk_number})", err=True)
        try:
            app.run(ctx)
        finally:
            for stream in ("stdout", "stderr"):
                text = tail(os.path.join(log_dir, f"{stream}.log"), 2000)
                if text.strip():
                    click.echo(f"--- {stream} (tail) ---\n{text.rstrip()}", err=True)
        # The same check a job makes before it commits a chunk's results.
        files = list_tree(out, what=f"the results of {app.manifest.tag}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    click.echo(f"{len(files)} result file(s) in {out}")
    for name, size in files:
        click.echo(f"  {name}  {size} B")


@click.group("engine")
def engine_group() -> None:
    """Make and check ByteNite partitioner and assembler engine folders."""


@engine_group.command("new")
@click.argument("name")
@click.option("--type", "kind", required=True, type=click.Choice(["partitioner", "assembler"]))
@click.option("--image", default=DEFAULT_IMAGE, show_default=True,
              help="Image the engine runs in (it needs python3); 'none' runs it as a process.")
@click.option("--dir", "parent", default=".", type=click.Path(file_okay=False), help="Where to create it.")
def engine_new(name, kind, image, parent):
    """Create a working partitioner or assembler engine folder NAME."""
    folder = scaffold(parent, name, kind, None if image == "none" else image)
    click.echo(f"created {folder}: name it in a job as  \"{kind}\": \"{folder}\"")


@engine_group.command("validate")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--params", "params_text", help="Engine params to check against schema.json (JSON, or @file).")
def engine_validate(folder, params_text):
    """Check an engine folder: manifest, schema.json."""
    _report(folder, "engine", params_text)
