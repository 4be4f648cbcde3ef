"""Components by name: built-ins, decorators, entry points, errors, and the
``components`` command.

Components registered with a decorator here are defined inside the tests, as
in a notebook: the workers of the real cluster cannot import them, so a job
that uses them by name proves that the objects travel with the job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest
from click.testing import CliRunner

import bytenite_nb as bn
from bytenite_nb import registry
from bytenite_nb.cli import main as cli
from bytenite_nb.exceptions import ComponentNotFound, JobValidationError
from bytenite_nb.partitioners import ChunkRef, Partitioner

BUILTIN = {
    "partitioner": {"passthrough": set(), "replicate": {"num_replicas"}, "files": {"files_per_chunk", "pattern"},
                    "split-lines": {"chunk_size", "lines_per_chunk", "read_ahead"},
                    "rows": {"rows_per_chunk", "chunk_size", "format", "header", "check_fields", "check_json",
                             "on_bad"},
                    "text-size": {"max_chars", "max_words", "overlap"},
                    "sections": {"level", "separator", "pages", "max_size"},
                    "log-time": {"preset", "pattern", "format", "timezone", "year", "every", "on_bad"},
                    "codebase": {"by", "target_size", "include", "exclude", "gitignore", "max_expanded", "max_ratio"},
                    "json-objects": {"pointer", "per_chunk", "chunk_size", "output", "format", "on_bad"},
                    "key": {"columns", "buckets", "distinct", "ranges", "format", "block_size", "on_bad"},
                    "date-range": {"column", "every", "format", "table_format", "timezone", "block_size", "on_bad"},
                    "image-tiles": {"tile_width", "tile_height", "overlap"},
                    "image-batches": {"images_per_chunk", "max_bytes", "pattern", "max_expanded", "max_ratio"},
                    "audio-time": {"seconds"},
                    "audio-silence": {"threshold_db", "min_silence", "min_chunk", "max_chunk"},
                    "audio-language": {"detector", "languages", "min_segment"},
                    "video-frames": {"frames_per_chunk", "seconds_per_chunk", "exact", "exact_crf"},
                    "video-ladder": {"renditions", "segment_seconds"},
                    "video-scenes": {"threshold", "ratio", "min_scene_length", "min_scene_unit", "exact", "crf",
                                     "analysis_width"}},
    "assembler": {"passthrough": set(), "concat": {"output_name", "pattern", "separator", "header"},
                  "zip": {"archive_name", "compression"},
                  "merge-key": {"on", "aggregations", "format", "input_format", "output_name", "pattern"},
                  "sorted-concat": {"by", "descending", "sort_chunks", "output_name", "format", "pattern", "types",
                                    "sort_buffer"},
                  "stitch": {"output_name", "separator"},
                  "log-merge": {"preset", "pattern", "format", "timezone", "year", "dedupe", "output_name",
                                "files", "on_bad"},
                  "schema-merge": {"schema", "on_invalid", "format", "input_format", "output_name", "pattern"},
                  "codebase": {"archive", "output_name", "unpack"},
                  "json-objects": {"output_name", "pattern"},
                  "image-mosaic": {"mode", "output_name", "format"},
                  "image-package": {"archive", "output_name", "pattern"},
                  "audio-concat": {"output_name"},
                  "audio-index": {"output_name", "format"},
                  "video-stitch": {"output_name", "pattern"},
                  "video-ladder": {"output_name", "hls_time", "segment_type", "pattern"},
                  "video-scenes": {"select", "pattern", "output_name", "index_name"}},
    "app": {"identity": {"output_name"}, "noop": set()},
}


@pytest.fixture
def cleanup():
    """Names registered by a test are removed afterwards, from every registry."""
    names: list[tuple[str, str]] = []
    yield lambda kind, name: names.append((kind, name))
    for kind, name in names:
        registry.REGISTRIES[kind].unregister(name)


# -- built-ins ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BUILTIN))
def test_builtins_are_registered_with_schema_and_docstring(kind):
    reg = registry.REGISTRIES[kind]
    for name, params in BUILTIN[kind].items():
        comp = reg.get(name)
        assert (comp.kind, comp.name, comp.origin) == (kind, name, "builtin")
        assert comp.doc and "\n\n" not in comp.summary and comp.summary in comp.doc.replace("\n", " ")
        schema = comp.schema
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object"
        assert set(schema.get("properties", {})) == params
        for prop in schema.get("properties", {}).values():
            assert prop.get("description"), f"{kind} {name}: a param without a description"
        info = comp.to_dict()
        assert json.loads(json.dumps(info)) == info
        assert info["schema"] == schema and info["doc"] == comp.doc


def test_builtin_schemas_hold_their_defaults():
    assert registry.partitioners.get("replicate").schema["properties"]["num_replicas"]["default"] == 2
    assert registry.assemblers.get("zip").schema["properties"]["archive_name"]["default"] == "results_archive.zip"
    assert registry.partitioners.get("split-lines").schema["additionalProperties"] is False


def test_names_are_sorted_and_iteration_matches():
    for reg in registry.REGISTRIES.values():
        assert reg.names() == sorted(reg.names())
        assert [c.name for c in reg] == reg.names()


# -- decorators ---------------------------------------------------------------------------


def test_decorated_components_run_by_name_on_the_cluster(tmp_path, client, cleanup):
    @bn.partitioner("test-reg-pairs", schema={
        "type": "object", "properties": {"per_chunk": {"type": "integer", "minimum": 1}},
        "required": ["per_chunk"], "additionalProperties": False})
    def pairs(source, params):
        """Whole lines, ``per_chunk`` at a time (reads the file: it is small)."""
        (f,) = source.files
        with source.open(f.url) as fh:
            lines = fh.read().splitlines(True)
        pos, n = 0, params["per_chunk"]
        for i in range(0, len(lines), n):
            size = sum(map(len, lines[i:i + n]))
            yield ChunkRef(url=f.url, start=pos, end=pos + size, size=size, label=f.name)
            pos += size

    @bn.app("test-reg-shout", schema={"type": "object", "properties": {"mark": {"type": "string"}},
                                      "additionalProperties": False})
    def shout(chunk_path, results_dir, params):
        """Upper-case the chunk and note which process did it."""
        with open(os.path.join(results_dir, "pid"), "w") as f:
            f.write(str(os.getpid()))
        with open(chunk_path, "rb") as f:
            return f.read().upper() + params.get("mark", "").encode()

    @bn.assembler("test-reg-backwards")
    def backwards(results, output_dir, params):
        """The chunks' results, last chunk first, and every process that took part."""
        with open(os.path.join(output_dir, "out.txt"), "wb") as out:
            for chunk in reversed(results):
                with chunk.file("result.bin").open() as f:
                    out.write(f.read())
        pids = {chunk.file("pid").open().read().decode() for chunk in results} | {str(os.getpid())}
        with open(os.path.join(output_dir, "pids.json"), "w") as f:
            json.dump(sorted(pids), f)

    for kind, name in (("partitioner", "test-reg-pairs"), ("app", "test-reg-shout"),
                       ("assembler", "test-reg-backwards")):
        cleanup(kind, name)
        assert registry.REGISTRIES[kind].get(name).origin == "python"
    assert registry.partitioners.get("test-reg-pairs").doc.startswith("Whole lines")

    # The workers never ran the decorators: they know none of these names.
    def known_on_worker():
        from bytenite_nb import registry as r
        return ["test-reg-pairs" in r.partitioners, "test-reg-shout" in r.apps, "test-reg-backwards" in r.assemblers]
    assert set(map(tuple, client.run(known_on_worker).values())) == {(False, False, False)}

    src = tmp_path / "in.txt"
    src.write_text("a\nb\nc\nd\ne\n")
    job = bn.Job(source=str(src), partitioner="test-reg-pairs", app="test-reg-shout", assembler="test-reg-backwards",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": {"per_chunk": 2}, "app": {"mark": "!"}})
    result = job.run(client=client)
    assert result.n_chunks == 3
    assert (tmp_path / "out" / "out.txt").read_text() == "E\n!C\nD\n!A\nB\n!"
    worker_pids = {str(p) for p in client.run(os.getpid).values()}
    pids = set(json.loads((tmp_path / "out" / "pids.json").read_text()))
    assert pids and pids <= worker_pids and str(os.getpid()) not in pids
    assert job.to_dict()["partitioner"] == "test-reg-pairs" and job.to_dict()["app"] == "test-reg-shout"


def test_decorated_component_schema_is_enforced(tmp_path, cleanup):
    @bn.app("test-reg-strict", schema={"type": "object", "properties": {"level": {"type": "integer"}},
                                       "required": ["level"], "additionalProperties": False})
    def strict(chunk_path, results_dir, params):
        return b""
    cleanup("app", "test-reg-strict")
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    job = bn.Job(source=str(src), app="test-reg-strict", destination=str(tmp_path / "out"),
                 params={"app": {"level": "high", "levle": 1}})
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert sorted(info.value.fields) == ["params.app.level", "params.app.levle"]
    assert 'params.app.level: expected integer, got "high"' in str(info.value)
    with pytest.raises(JobValidationError, match="params.app.level: is required"):
        job.copy(params={"app": {}}).validate()


def test_bare_decorator_and_class_registration(tmp_path, cleanup):
    @bn.app
    def test_reg_bare(chunk_path, results_dir, params):
        """Registered under its own name."""
        return "bare"
    cleanup("app", "test_reg_bare")

    @bn.assembler()
    def test_reg_empty_call(results, output_dir, params):
        """Also registered under its own name."""
    cleanup("assembler", "test_reg_empty_call")

    @bn.partitioner("test-reg-class")
    class OneEmpty(Partitioner):
        """A single empty chunk, whatever the source."""

        schema = {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}}

        def plan(self, source, params):
            return [ChunkRef(size=0)] * params["n"]
    cleanup("partitioner", "test-reg-class")

    assert test_reg_bare("x", "y", {}) == "bare"  # the decorator gives the function back
    assert registry.apps.get("test_reg_bare").summary == "Registered under its own name."
    assert registry.assemblers.get("test_reg_empty_call").doc == "Also registered under its own name."
    comp = registry.partitioners.get("test-reg-class")
    assert isinstance(comp.obj, OneEmpty) and comp.schema["properties"]["n"]["default"] == 1
    job = bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="test-reg-class", app="test_reg_bare",
                 assembler="concat", destination=str(tmp_path / "out"), params={"partitioner": {"n": 3}})
    assert len(job.plan(scheduler="sync")) == 3
    job.run(scheduler="sync")
    assert (tmp_path / "out" / "output.txt").read_text() == "barebarebare"


def test_docs_are_plain_text(cleanup):
    def marked_up(chunk_path, results_dir, params):
        """Reads ``CHUNK_NUMBER``, see :func:`~bytenite_nb.storage.parse_location`.

        Example::

            bytenite-nb run job.json
        """

    bn.app("test-reg-doc")(marked_up)
    cleanup("app", "test-reg-doc")
    component = registry.apps.get("test-reg-doc")
    assert component.summary == "Reads CHUNK_NUMBER, see parse_location()."
    assert component.doc == ("Reads CHUNK_NUMBER, see parse_location().\n\nExample:\n\n"
                             "    bytenite-nb run job.json")
    assert component.to_dict()["doc"] == component.doc
    for registry_ in registry.REGISTRIES.values():
        for built_in in registry_:
            assert "``" not in built_in.doc and ":class:`" not in built_in.doc, built_in.name


def test_registering_again_replaces(cleanup):
    bn.app("test-reg-twice")(lambda c, r, p: "one")
    cleanup("app", "test-reg-twice")
    bn.app("test-reg-twice")(lambda c, r, p: "two")
    assert registry.apps.names().count("test-reg-twice") == 1
    assert registry.apps.get("test-reg-twice").obj.fn(None, None, None) == "two"


def test_unregistered_name_is_gone(cleanup):
    bn.assembler("test-reg-gone")(lambda results, out, params: None)
    registry.assemblers.unregister("test-reg-gone")
    assert "test-reg-gone" not in registry.assemblers
    with pytest.raises(ComponentNotFound):
        registry.assemblers.get("test-reg-gone")


def test_something_that_is_not_a_component_is_refused():
    with pytest.raises(TypeError, match="not a partitioner"):
        bn.partitioner("test-reg-bad")(42)
    assert "test-reg-bad" not in registry.partitioners


def test_a_component_without_a_name_is_refused_and_the_registry_stays_usable():
    class Nameless(Partitioner):
        """An instance has no __name__ to be registered under."""

        def plan(self, source, params):
            return []

    with pytest.raises(TypeError, match="a partitioner needs a name"):
        bn.partitioner()(Nameless())
    with pytest.raises(TypeError, match="a partitioner needs a name"):
        registry.partitioners.register("", Nameless())
    assert registry.partitioners.names() == sorted(registry.partitioners.names())
    assert "split-lines" in registry.partitioners.names()


# -- unknown names --------------------------------------------------------------------------


def test_unknown_names_are_reported_with_a_suggestion(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    job = bn.Job(source=str(src), partitioner="split-line", app="identiy", assembler="conact",
                 destination=str(tmp_path / "out"))
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert sorted(info.value.fields) == ["app", "assembler", "partitioner"]
    text = str(info.value)
    assert "partitioner: unknown partitioner 'split-line' (did you mean \"split-lines\"?)" in text
    assert "assembler: unknown assembler 'conact' (did you mean \"concat\"?)" in text
    assert "app: unknown app 'identiy' (did you mean \"identity\"?)" in text
    assert "known: audio-language, audio-silence, audio-time, codebase, date-range, files, image-batches, image-tiles, json-objects, key, log-time, passthrough, replicate, rows, sections, split-lines, text-size, video-frames, video-ladder" in text


def test_unknown_name_without_a_close_match_lists_what_is_known():
    with pytest.raises(ComponentNotFound) as info:
        registry.assemblers.get("parquet-writer")
    assert "did you mean" not in str(info.value)
    known = registry.assemblers.names()
    assert {"concat", "merge-key", "passthrough", "sorted-concat", "zip"} <= set(known)
    assert str(info.value) == f"unknown assembler 'parquet-writer'; known: {', '.join(known)}"


def test_unloadable_module_reference_names_the_field(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    job = bn.Job(source=str(src), partitioner="no_such_module_here:Thing", app="identity",
                 destination=str(tmp_path / "out"))
    with pytest.raises(JobValidationError) as info:
        job.validate()
    assert info.value.fields == ["partitioner"]
    assert "cannot load 'no_such_module_here:Thing': ModuleNotFoundError" in str(info.value)


# -- entry points --------------------------------------------------------------------------

PLUGIN = '''
"""A third-party package adding components through entry points."""
import os
from bytenite_nb import Assembler, ChunkRef, Partitioner


class LargestFirst(Partitioner):
    """One chunk per file, the largest file first."""

    schema = {"type": "object", "properties": {"limit": {"type": "integer", "minimum": 1,
              "description": "At most this many files."}}, "additionalProperties": False}

    def plan(self, source, params):
        files = sorted(source.files, key=lambda f: -f.size)[:params.get("limit")]
        return [ChunkRef(url=f.url, size=f.size, label=f.name) for f in files]


def reverse_lines(chunk_path, results_dir, params):
    """Reverse the order of the lines of the chunk."""
    with open(chunk_path, "rb") as f:
        return b"".join(reversed(f.read().splitlines(True)))


class Joined(Assembler):
    """Every result, joined by a line of ``rule`` characters."""

    schema = {"type": "object", "properties": {"rule": {"type": "string", "default": "=",
              "description": "Character of the line between results."}}, "additionalProperties": False}

    def assemble(self, results, output_dir, params):
        parts = [f.open().read() for chunk in results for f in chunk.files]
        with open(os.path.join(output_dir, "joined.txt"), "wb") as out:
            out.write((params["rule"] * 3 + "\\n").encode().join(parts))
'''

ENTRY_POINTS = """
[bytenite_nb.partitioners]
largest-first = bnb_plugin_demo:LargestFirst
split-lines = bnb_plugin_demo:LargestFirst

[bytenite_nb.apps]
reverse-lines = bnb_plugin_demo:reverse_lines

[bytenite_nb.assemblers]
joined = bnb_plugin_demo:Joined
broken = bnb_plugin_demo:NotThere
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed distribution ``bnb-plugin-demo`` (a folder on sys.path) and fresh registries that see it."""
    site = tmp_path / "site"
    (site / "bnb_plugin_demo").mkdir(parents=True)
    (site / "bnb_plugin_demo" / "__init__.py").write_text(PLUGIN)
    info = site / "bnb_plugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bnb-plugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    fresh = {
        "partitioner": registry.Registry("partitioner", "bytenite_nb.partitioners",
                                         registry._builtins("bytenite_nb.partitioners"), registry._adapt_partitioner),
        "app": registry.Registry("app", "bytenite_nb.apps", registry._builtins("bytenite_nb.apps"),
                                 registry._adapt_app),
        "assembler": registry.Registry("assembler", "bytenite_nb.assemblers",
                                       registry._builtins("bytenite_nb.assemblers"), registry._adapt_assembler),
    }
    for kind, reg in fresh.items():
        monkeypatch.setattr(registry, kind + "s", reg)
        monkeypatch.setitem(registry.REGISTRIES, kind, reg)
    yield fresh
    sys.modules.pop("bnb_plugin_demo", None)


def test_entry_points_add_components(plugin, caplog):
    with caplog.at_level(logging.WARNING, logger="bytenite_nb.registry"):
        names = {kind: reg.names() for kind, reg in plugin.items()}
    assert "largest-first" in names["partitioner"]
    assert "reverse-lines" in names["app"]
    assert "joined" in names["assembler"]
    comp = plugin["partitioner"].get("largest-first")
    assert comp.origin == "entry point bnb-plugin-demo"
    assert comp.summary == "One chunk per file, the largest file first."
    assert comp.schema["properties"]["limit"]["minimum"] == 1
    assert plugin["app"].get("reverse-lines").doc == "Reverse the order of the lines of the chunk."
    # A plugin never shadows a built-in ...
    assert plugin["partitioner"].get("split-lines").origin == "builtin"
    # ... and a broken one is skipped with a warning, leaving the rest usable.
    assert "broken" not in names["assembler"]
    assert any("broken" in r.getMessage() and "bnb_plugin_demo:NotThere" in r.getMessage() for r in caplog.records)


def test_entry_point_components_run_by_name(plugin, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "small.txt").write_text("1\n2\n")
    (data / "big.txt").write_text("a\nb\nc\n")
    out = tmp_path / "out"
    job = bn.Job(source=str(data) + "/", partitioner="largest-first", app="reverse-lines", assembler="joined",
                 destination=str(out), params={"assembler": {"rule": "-"}})
    job.run(scheduler="sync")
    assert (out / "joined.txt").read_text() == "c\nb\na\n---\n2\n1\n"
    with pytest.raises(JobValidationError, match=r"params.partitioner.limit: must be >= 1, got 0"):
        job.copy(params={"partitioner": {"limit": 0}}).validate()


def test_cli_lists_entry_point_components_with_their_origin(plugin):
    result = CliRunner().invoke(cli, ["components", "assembler"])
    assert result.exit_code == 0, result.output
    assert "  joined  [entry point bnb-plugin-demo]" in result.output
    assert '      - rule (string = "="): Character of the line between results.' in result.output
    assert "\n  broken" not in result.stdout


# -- the components command -----------------------------------------------------------------


def test_cli_components_lists_every_kind_with_params():
    result = CliRunner().invoke(cli, ["components"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("partitioners:") < out.index("apps:") < out.index("assemblers:")
    for kind, comps in BUILTIN.items():
        for name in comps:
            assert f"\n  {name}\n" in out, name
    assert "      - num_replicas (integer = 2): How many copies of the source to make." in out
    assert "      - chunk_size (integer): Target chunk size in bytes" in out
    assert '      - compression (enum = "deflated"): deflated (smaller) or stored (faster).' in out
    assert "      The whole source as a single chunk." in out


def test_cli_components_json_matches_the_registry():
    result = CliRunner().invoke(cli, ["components", "partitioner", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == ["partitioner"]
    by_name = {c["name"]: c for c in data["partitioner"]}
    assert sorted(by_name) == registry.partitioners.names()
    assert by_name["split-lines"]["schema"] == registry.partitioners.get("split-lines").schema
    assert by_name["files"]["origin"] == "builtin" and by_name["files"]["doc"]


def test_cli_components_shows_decorated_ones(cleanup):
    @bn.app("test-reg-listed", schema={"type": "object", "properties": {
        "depth": {"type": "integer", "default": 3, "description": "How deep."}}})
    def listed(chunk_path, results_dir, params):
        """Listed by the components command."""
    cleanup("app", "test-reg-listed")
    result = CliRunner().invoke(cli, ["components", "app"])
    assert "  test-reg-listed  [python]\n      Listed by the components command.\n" \
           "      - depth (integer = 3): How deep.\n" in result.output


def test_cli_components_rejects_an_unknown_kind():
    result = CliRunner().invoke(cli, ["components", "partitioners"])
    assert result.exit_code == 2
    assert "'partitioners' is not one of 'partitioner', 'app', 'assembler'" in result.output


def test_components_command_as_installed():
    exe = shutil.which("bytenite-nb")
    argv = [exe] if exe else [sys.executable, "-m", "bytenite_nb.cli"]
    done = subprocess.run(argv + ["components", "app"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("apps:\n")
    # docs as plain text: the docstring's ``result.bin`` reads (result.bin)
    assert ("  identity\n"
            "      The chunk, unchanged, as the result (result.bin): the identity map.\n"
            '      - output_name (string = "result.bin"): Name of the result file.\n'
            "  noop\n"
            "      Do nothing and produce no result (measures the engine's own overhead).\n") in done.stdout
