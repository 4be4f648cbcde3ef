"""The job builder: round trips, edits, inline validation, listing and preview of the
source, Plan and Run on a real cluster, the equivalent code, and saved job files."""

from __future__ import annotations

import json
import re

import ipywidgets as widgets
import pytest

import bytenite_nb as bn
from bytenite_nb import store as st
from bytenite_nb.apps.python import PythonApp
from bytenite_nb.partitioners import ChunkRef, Partitioner
from bytenite_nb.widgets import JobBuilder, JobProgress, job_code


def shout(chunk_path, results_dir, params):
    """Upper-case the chunk."""
    return open(chunk_path, "rb").read().upper()


shout.schema = {"type": "object", "properties": {"times": {"type": "integer", "minimum": 1}},
                "additionalProperties": False}


def not_an_app(x):
    return x


class Halves(Partitioner):
    """Two chunks per file."""

    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "additionalProperties": False}

    def plan(self, source, params):
        for f in source.files:
            yield ChunkRef(url=f.url, start=0, end=f.size // 2)
            yield ChunkRef(url=f.url, start=f.size // 2, end=f.size)


NAMESPACE = {"shout": shout, "not_an_app": not_an_app, "print": print}

ROUND_TRIPS = {
    "plain names": lambda tmp: bn.Job(source="in.txt", partitioner="split-lines", app="identity",
                                      assembler="concat", destination="out/"),
    "defaults left out": lambda tmp: bn.Job(source="in.txt", app="noop", destination="out/"),
    "bytenite job file": lambda tmp: bn.Job.from_dict({
        "name": "upper", "id": "upper-1", "description": "Upper-case lines",
        "partitioner": "split-lines",
        "app": {"command": ["python3", "app.py", "--fast"], "cwd": "apps", "env": {"MODE": "x"}},
        "assembler": "zip",
        "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "in.txt"}},
        "dataDestination": {"dataSourceDescriptor": "aws", "params": {"bucketName": "b", "name": "out/"}},
        "params": {"partitioner": {"lines_per_chunk": 10}, "app": {"level": 3}, "assembler": {"compression": "stored"}},
        "config": {"taskTimeout": 30, "maxTaskRetries": 0, "isTestJob": True},
        "storageOptions": {"anon": False},
        "priority": "high",
    }, base_dir=str(tmp)),
    "function app": lambda tmp: bn.Job(source="s3://bucket/in/", partitioner="files", app=shout,
                                       assembler="passthrough", destination="out/",
                                       params={"app": {"times": 2}, "partitioner": {"files_per_chunk": 3}}),
    "module function": lambda tmp: bn.Job(source="in.txt", app={"python": "os.path:basename"}, destination="o/"),
    "app object": lambda tmp: bn.Job(source="in.txt", app=PythonApp("os.path:basename"), destination="o/"),
    "folder app": lambda tmp: bn.Job(source="in.txt", app={"folder": "apps/wc"}, destination="o/"),
    "notebook app": lambda tmp: bn.Job(source="in.txt", app={"notebook": "chunk.ipynb"}, destination="o/",
                                       params={"app": {"threshold": 2}}),
    "container image app": lambda tmp: bn.Job(source="in.txt", app={"image": "localhost/wc:1", "command": ["wc"]},
                                              destination="o/"),
    "custom partitioner class": lambda tmp: bn.Job(source="in.txt", partitioner=Halves, app="identity",
                                                   destination="o/", params={"partitioner": {"label": "h"}}),
    "invalid params kept": lambda tmp: bn.Job(source="in.txt", partitioner="split-lines", app="identity",
                                              destination="o/", params={"partitioner": {"chunk_size": "64k",
                                                                                        "bogus": 1}}),
}


@pytest.mark.parametrize("case", sorted(ROUND_TRIPS))
def test_round_trip(case, tmp_path):
    job = ROUND_TRIPS[case](tmp_path)
    builder = JobBuilder(job=job, namespace=NAMESPACE)
    assert builder.job.to_dict() == job.to_dict()
    # and once more through the builder's own job
    assert JobBuilder(job=builder.job, namespace=NAMESPACE).job.to_dict() == job.to_dict()


def test_builder_shows_what_the_job_says(tmp_path):
    job = ROUND_TRIPS["bytenite job file"](tmp_path)
    builder = JobBuilder(job=job, namespace=NAMESPACE)
    assert builder.name_text.value == "upper"
    assert builder.source_url.value == "file://" + str(tmp_path / "in.txt")
    assert "dataSourceDescriptor" in builder.source_note.value
    assert builder.destination_url.value == "s3://b/out/"
    assert builder.partitioner.value == "split-lines"
    assert builder.partitioner_form.fields["lines_per_chunk"].widget.value == 10
    assert builder.assembler_form.fields["compression"].widget.value == "stored"
    assert builder.app_kind.value == "command"
    assert builder.app_spec_form.fields["command"].widget.value == "python3 app.py --fast"
    assert builder.app_spec_form.fields["cwd"].widget.value == "apps"
    assert builder.config_form.fields["taskTimeout"].widget.value == 30.0
    assert builder.config_form.fields["isTestJob"].widget.value is True
    assert [builder.tabs.get_title(i) for i in range(7)] == ["Source", "Partitioner", "App", "Assembler",
                                                           "Destination", "Config", "Cluster"]
    fn_builder = JobBuilder(job=ROUND_TRIPS["function app"](tmp_path), namespace=NAMESPACE)
    assert fn_builder.app_kind.value == "function"
    # only functions that take (chunk_path, results_dir, params) are offered
    assert [label for label, _ in fn_builder.app_function.options] == ["shout"]
    assert set(fn_builder.app_form.fields) == {"times"}  # the function's own schema
    image = JobBuilder(job=ROUND_TRIPS["container image app"](tmp_path))
    assert image.app_kind.value == "image" and image.app_spec_form.fields["image"].widget.value == "localhost/wc:1"
    image.app_spec_form.fields["image"].widget.value = "localhost/wc:2"  # the command run in the image stays
    assert image.job.app == {"image": "localhost/wc:2", "command": ["wc"]}
    custom = JobBuilder(job=ROUND_TRIPS["custom partitioner class"](tmp_path))
    assert custom.partitioner.label == "tests.test_widgets_builder:Halves"
    assert set(custom.partitioner_form.fields) == {"label"}


def test_editing_every_section(tmp_path):
    builder = JobBuilder(namespace=NAMESPACE)
    builder.name_text.value = "edited"
    builder.source_url.value = str(tmp_path / "missing" / "*.csv")  # nothing there yet: said inline
    assert "nothing matches" in builder.sections["Source"].error.value
    builder.partitioner.value = "files"
    assert set(builder.partitioner_form.fields) == {"files_per_chunk", "pattern"}
    builder.partitioner_form.fields["files_per_chunk"].widget.value = 2
    builder.app_kind.value = "command"
    builder.app_spec_form.fields["command"].widget.value = "python3 app.py --level 'two words'"
    builder.assembler.value = "concat"
    builder.assembler_form.fields["output_name"].widget.value = "all.csv"
    builder.destination_url.value = "s3://results/run/"
    builder.config_form.fields["maxTaskRetries"].widget.value = 0
    assert builder.job.to_dict() == {
        "name": "edited",
        "partitioner": "files",
        "app": {"command": ["python3", "app.py", "--level", "two words"]},
        "assembler": "concat",
        "dataSource": str(tmp_path / "missing" / "*.csv"),
        "dataDestination": "s3://results/run/",
        "params": {"partitioner": {"files_per_chunk": 2}, "app": {}, "assembler": {"output_name": "all.csv"}},
        "config": {"maxTaskRetries": 0},
    }
    # picking another component starts its params afresh
    builder.partitioner.value = "split-lines"
    assert builder.job.params["partitioner"] == {}
    builder.app_kind.value = "function"
    builder.app_function.value = shout
    builder.app_form.fields["times"].widget.value = 3
    assert builder.job.app is shout and builder.job.params["app"] == {"times": 3}
    builder.app_kind.value = "registered"
    builder.app_registered.value = "identity"
    assert set(builder.app_form.fields) == {"output_name"}
    assert builder.job.app == "identity" and builder.job.params["app"] == {}


@pytest.mark.parametrize("kind", ["command", "python", "folder", "notebook", "image"])
def test_each_runtime_gets_its_form_from_its_spec_schema(kind):
    import html

    from bytenite_nb.apps import runtime_schemas

    builder = JobBuilder(job=bn.Job(source="in.txt", app="identity", destination="o/"), namespace=NAMESPACE)
    assert kind in [key for _, key in builder.app_kind.options]
    builder.app_kind.value = kind
    schema = runtime_schemas()[kind]
    assert builder.app_spec_form.schema == schema and builder.app_spec_form.prefix == "app"
    assert list(builder.app_spec_form.fields) == list(schema["properties"])
    assert html.escape(schema["description"]) in builder.app_spec_doc.value
    assert builder.app_input.children == (builder.app_spec_doc, builder.app_spec_form)
    # nothing typed yet: no app, which validation says
    assert builder.job.app is None


def test_a_container_app_and_a_notebook_app_are_set_in_their_forms():
    builder = JobBuilder(job=bn.Job(source="in.txt", app="identity", destination="o/"), namespace=NAMESPACE)
    builder.app_kind.value = "image"
    fields = builder.app_spec_form.fields
    fields["image"].widget.value = "localhost/wc:1"
    fields["command"].widget.value = "wc -l 'a file'"
    fields["network"].widget.value = True
    fields["device_requirements"].form.fields["min_cpu"].widget.value = 2.0
    fields["env"].widget.value = '{"MODE": "fast"}'
    assert builder.job.app == {"image": "localhost/wc:1", "command": ["wc", "-l", "a file"], "network": True,
                               "env": {"MODE": "fast"}, "device_requirements": {"min_cpu": 2.0}}
    assert builder.validate(check_storage=False) == []
    builder.app_kind.value = "notebook"
    builder.app_spec_form.fields["notebook"].widget.value = "s3://bucket/chunk.ipynb"
    builder.app_spec_form.fields["kernel"].widget.value = "python3"
    assert builder.job.app == {"notebook": "s3://bucket/chunk.ipynb", "kernel": "python3"}


def test_a_runtime_form_says_what_is_wrong_inline():
    job = bn.Job(source="in.txt", app={"command": ["true"], "cwdd": "x"}, destination="o/")
    builder = JobBuilder(job=job, namespace=NAMESPACE)
    assert builder.app_kind.value == "command"
    assert "app.cwdd: unknown field (did you mean &quot;cwd&quot;?)" in builder.app_spec_form.form_error.value
    assert builder.job.to_dict() == job.to_dict()  # kept as given until edited
    errors = builder.validate(check_storage=False)
    assert [str(e) for e in errors] == ['app.cwdd: unknown field (did you mean "cwd"?)']
    assert builder.tabs.get_title(2) == "App (!)"
    assert "unknown field" in builder.app_spec_form.form_error.value  # shown in the form, not twice
    assert builder.sections["App"].error.value == ""
    # a command line that cannot be split
    builder.app_spec_form.fields["command"].widget.value = "python3 'app.py"
    assert "not a valid command line" in builder.app_spec_form.fields["command"].error.value
    errors = builder.validate(check_storage=False)
    assert [str(e) for e in errors] == ["app.command: not a valid command line: No closing quotation"]
    builder.app_spec_form.fields["command"].widget.value = "python3 app.py"
    assert builder.job.app == {"command": ["python3", "app.py"], "cwdd": "x"}


def test_the_params_form_follows_the_runtime_form():
    builder = JobBuilder(job=bn.Job(source="in.txt", app="identity", destination="o/"), namespace=NAMESPACE)
    builder.app_kind.value = "python"
    builder.app_spec_form.fields["python"].widget.value = "tests.test_widgets_builder:shout"
    assert set(builder.app_form.fields) == {"times"}  # the function's own params schema
    builder.app_spec_form.fields["schema"].widget.value = '{"type": "object", "properties": {"level": {"type": "integer"}}}'
    assert set(builder.app_form.fields) == {"level"}
    builder.app_kind.value = "command"  # another runtime: its params start afresh
    assert builder.job.params["app"] == {}
    builder.app_spec_form.fields["command"].widget.value = "python3 app.py"
    builder.app_spec_form.fields["schema"].widget.value = '{"type": "object", "properties": {"level": {"type": "integer"}}}'
    builder.app_form.fields["level"].widget.value = 3
    builder.app_spec_form.fields["cwd"].widget.value = "apps"  # the same params schema: the params stay
    assert builder.job.params["app"] == {"level": 3}


def test_validation_errors_show_inline_in_their_sections(tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\n")
    job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app="identity",
                 params={"partitioner": {"chunk_size": 0}}, config={"taskTimeout": -5})
    builder = JobBuilder(job=job)
    errors = builder.validate()
    assert sorted(str(e) for e in errors) == [
        "config.taskTimeout: must be > 0, got -5",
        "dataDestination: is required",
        "params.partitioner.chunk_size: must be >= 1, got 0",
    ]
    assert "must be &gt;= 1, got 0" in builder.partitioner_form.fields["chunk_size"].error.value
    assert "must be &gt; 0, got -5" in builder.config_form.fields["taskTimeout"].error.value
    assert "dataDestination: is required" in builder.sections["Destination"].error.value
    titles = [builder.tabs.get_title(i) for i in range(7)]
    assert titles == ["Source", "Partitioner (!)", "App", "Assembler", "Destination (!)", "Config (!)", "Cluster"]
    assert "3 problem(s)" in builder.status.value
    builder.partitioner_form.fields["chunk_size"].widget.value = 4
    builder.config_form.fields["taskTimeout"].unset()
    builder.destination_url.value = str(tmp_path / "out")
    assert builder.validate() == []
    assert [builder.tabs.get_title(i) for i in range(7)][1] == "Partitioner"
    assert "valid" in builder.status.value and builder.sections["Destination"].error.value == ""
    # a run that does not validate does not start
    builder.destination_url.value = ""
    assert builder.run() is None and builder.handle is None


def test_source_listing_and_preview(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for month in range(1, 4):
        (data / f"2024-{month:02d}.csv").write_text("day,temp\n" + "".join(f"{d},{d % 7}\n" for d in range(28)))
    builder = JobBuilder()
    builder.source_url.value = str(data / "*.csv")
    assert "<b>3</b> file(s)" in builder.source_listing.value
    assert "2024-02.csv" in builder.source_listing.value
    title, shown = builder.source_preview.children
    assert "2024-01.csv" in title.value
    cells = re.sub(r"<(t[hd])[^>]*>", r"<\1>", shown.value)
    assert "<th>day</th><th>temp</th>" in cells and "<td>3</td><td>3</td>" in cells


def test_source_listing_over_s3(s3):
    fs, bucket = s3
    fs.pipe(f"{bucket}/in/a.txt", b"hello from s3\n")
    fs.pipe(f"{bucket}/in/b.txt", b"second\n")
    builder = JobBuilder()
    builder.source_url.value = f"s3://{bucket}/in/"
    assert "<b>2</b> file(s)" in builder.source_listing.value
    assert "hello from s3" in builder.source_preview.children[1].value


def test_plan_and_run_on_a_real_cluster(client, tmp_path):
    (tmp_path / "in.txt").write_text("".join(f"line {i}\n" for i in range(40)))
    job = bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 10},
                                                            "assembler": {"output_name": "all.txt"}})
    builder = JobBuilder(job=job, client=client)
    assert builder.run_kwargs == {"client": client}
    refs = builder.plan()
    assert [r.index for r in refs] == [0, 1, 2, 3]
    assert "<b>4</b> chunk(s)" in builder.plan_view.value and "in.txt[0:" in builder.plan_view.value
    assert "first lines of chunk 0:</div><pre>line 0\nline 1\n" in builder.plan_view.value
    handle = builder.run()
    assert builder.handle is handle
    assert isinstance(builder.run_box.children[0], JobProgress)
    result = handle.result()
    builder.progress.join(60)
    assert result.state == st.COMPLETE
    assert (tmp_path / "out" / "all.txt").read_text() == (tmp_path / "in.txt").read_text()
    assert builder.progress.bar.value == 4
    assert "all.txt" in builder.progress.result_box.children[0].children[0].value


def test_cluster_choices():
    builder = JobBuilder()
    builder.cluster_mode.value = "sync"
    assert builder.run_kwargs == {"scheduler": "sync"}
    builder.cluster_mode.value = "local"
    builder.cluster_workers.value = 3
    assert builder.run_kwargs == {"workers": 3}
    builder.cluster_mode.value = "address"
    builder.cluster_address.value = " tcp://10.0.0.5:8786 "
    assert builder.run_kwargs == {"scheduler": "tcp://10.0.0.5:8786"}


def test_show_code_builds_the_same_job(tmp_path):
    job = ROUND_TRIPS["function app"](tmp_path).copy(config={"maxTaskRetries": 1}, name="shouting")
    builder = JobBuilder(job=job, namespace=NAMESPACE)
    builder.cluster_mode.value = "sync"
    text = builder.show_code()
    assert "app=shout," in text and text.endswith("handle = job.submit(scheduler='sync')\nhandle")
    assert "shout" in builder.code_view.value
    namespace = dict(NAMESPACE)
    exec(builder.code(run=False), namespace)
    assert namespace["job"].to_dict() == builder.job.to_dict()
    full = ROUND_TRIPS["bytenite job file"](tmp_path)
    namespace = {}
    exec(job_code(full), namespace)
    assert namespace["job"].to_dict() == full.to_dict()


def test_save_writes_a_job_file_that_loads_back(tmp_path):
    job = ROUND_TRIPS["bytenite job file"](tmp_path)
    builder = JobBuilder(job=job)
    path = builder.save(str(tmp_path / "job.json"))
    assert bn.Job.from_file(path).to_dict() == job.to_dict()
    assert json.loads((tmp_path / "job.json").read_text())["priority"] == "high"
    builder.save_path.value = str(tmp_path / "job.yaml")
    builder.save_button.click()
    assert bn.Job.from_file(tmp_path / "job.yaml").to_dict() == job.to_dict()
    assert "saved" in builder.status.value
    fn_builder = JobBuilder(job=ROUND_TRIPS["function app"](tmp_path), namespace=NAMESPACE)
    fn_builder.save(str(tmp_path / "fn.json"))
    assert "only this kernel can load" in fn_builder.status.value
    assert fn_builder.save(str(tmp_path / "no-such-dir" / "x.json")) is None
    assert "cannot save" in fn_builder.status.value


def test_builder_is_a_stock_widget_tree():
    builder = JobBuilder()
    assert isinstance(builder, widgets.VBox) and isinstance(builder.tabs, widgets.Tab)
    assert "bytenite-nb-builder" in builder._dom_classes
    buttons = [b.description for b in (builder.validate_button, builder.plan_button, builder.run_button,
                                       builder.code_button, builder.save_button)]
    assert buttons == ["Validate", "Plan", "Run", "Show code", "Save"]


def test_a_plan_of_100k_chunks_is_shown_a_page_at_a_time(tmp_path):
    """The plan view's model holds one page of rows, whatever the plan's size;
    Previous, Next and From chunk move through it, kept within the plan."""
    from bytenite_nb.widgets.builder import PLANNED_CHUNKS_SHOWN

    job = bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="replicate", app="noop",
                 assembler="passthrough", destination=str(tmp_path / "out"),
                 params={"partitioner": {"num_replicas": 100_000}})
    builder = JobBuilder(job=job)
    builder.cluster_mode.value = "sync"
    assert len(builder.plan()) == 100_000

    def rows() -> list[int]:
        return [int(i) for i in re.findall(r"<tr><td>(\d+)</td>", builder.plan_view.value)]

    assert rows() == list(range(PLANNED_CHUNKS_SHOWN))
    assert "<b>100000</b> chunk(s)" in builder.plan_view.value
    assert f"chunks 1 to {PLANNED_CHUNKS_SHOWN} of 100000" in builder.plan_view.value
    assert len(builder.plan_view.value) < 5000  # a page, never the plan
    assert builder.plan_pager.layout.display == "flex" and builder.plan_previous.disabled
    builder.plan_next.click()
    assert rows() == list(range(PLANNED_CHUNKS_SHOWN, 2 * PLANNED_CHUNKS_SHOWN))
    assert builder.plan_from_chunk.value == PLANNED_CHUNKS_SHOWN and not builder.plan_previous.disabled
    builder.plan_from_chunk.value = 99_995
    assert rows() == list(range(99_995, 100_000)) and builder.plan_next.disabled
    assert "chunks 99996 to 100000 of 100000" in builder.plan_view.value
    builder.plan_from_chunk.value = 250_000  # past the end: the box keeps it within the plan
    assert builder.plan_from_chunk.value == 99_999 and rows() == [99_999]
    builder.show_plan_page(-40)
    assert rows() == list(range(PLANNED_CHUNKS_SHOWN)) and builder.plan_from_chunk.value == 0
    builder.plan_previous.click()
    assert rows() == list(range(PLANNED_CHUNKS_SHOWN))


def test_a_small_plan_has_no_pager(tmp_path):
    job = bn.Job(source={"dataSourceDescriptor": "bypass"}, partitioner="replicate", app="noop",
                 assembler="passthrough", destination=str(tmp_path / "out"), params={"partitioner": {"num_replicas": 3}})
    builder = JobBuilder(job=job)
    builder.cluster_mode.value = "sync"
    builder.plan()
    assert re.findall(r"<tr><td>(\d+)</td>", builder.plan_view.value) == ["0", "1", "2"]
    assert builder.plan_pager.layout.display == "none" and "chunks 1 to" not in builder.plan_view.value
