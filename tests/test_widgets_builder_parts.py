"""The builder's parts on their own: each tab keeps the job's value until edited,
claims the errors that name it and shows them in the right place; the actions
answer on the status line; the code and summary of a job; and a job from a
template goes through the builder unchanged."""

from __future__ import annotations

import json

import pytest

import bytenite_nb as bn
from bytenite_nb.exceptions import FieldError, JobValidationError
from bytenite_nb.widgets import JobBuilder
from bytenite_nb.widgets.builder.actions import Actions
from bytenite_nb.widgets.builder.app import AppSection
from bytenite_nb.widgets.builder.codegen import job_arguments, job_code, job_summary
from bytenite_nb.widgets.builder.components import ComponentSection
from bytenite_nb.widgets.builder.locations import LISTED_FILES, LocationSection, SourceSection
from bytenite_nb.widgets.builder.sections import NameLine
from bytenite_nb.widgets.builder.settings import ClusterSection, ConfigSection


def shout(chunk_path, results_dir, params):
    """Upper-case the chunk."""
    return open(chunk_path, "rb").read().upper()


S3_DESCRIPTOR = {"dataSourceDescriptor": "aws", "params": {"bucketName": "b", "name": "out/"}}


def test_a_location_keeps_its_descriptor_until_the_url_is_edited():
    section = LocationSection("Destination", "dataDestination", S3_DESCRIPTOR)
    assert section.url.value == "s3://b/out/"
    assert "bucketName" in section.note.value and not section.touched
    assert section.value == S3_DESCRIPTOR
    section.url.value = " s3://b/elsewhere/ "
    assert section.touched and section.value == "s3://b/elsewhere/"
    assert section.note.value == ""  # the descriptor it described is replaced
    section.url.value = ""
    assert section.value is None


def test_a_descriptor_without_a_url_is_kept_as_given():
    wrong = {"dataSourceDescriptor": "nosuch", "params": {}}
    section = LocationSection("Source", "dataSource", wrong)
    assert section.url.value == "" and "nosuch" in section.note.value
    assert section.value == wrong  # validation names what is wrong with it, not the builder


def test_the_source_lists_what_it_matches_and_says_what_it_cannot(tmp_path):
    for i in range(LISTED_FILES + 2):
        (tmp_path / f"part-{i:02d}.txt").write_text("x" * i)
    source = SourceSection(None, base_dir=str(tmp_path))
    assert source.list_files() == []  # nothing to list yet, and nothing said
    assert source.error.value == "" and source.listing.value == ""
    source.url.value = "part-*.txt"  # relative to the job's folder
    assert f"<b>{LISTED_FILES + 2}</b> file(s)" in source.listing.value
    assert "part-00.txt" in source.listing.value and "... 2 more" in source.listing.value
    assert "part-00.txt" in source.preview.children[0].value
    source.url.value = "missing/*.csv"
    assert "nothing matches" in source.error.value
    assert source.listing.value == "" and source.preview.children == ()
    source.url.value = "part-01.txt"  # listing again clears the error
    assert source.error.value == "" and "<b>1</b> file(s)" in source.listing.value


def test_a_component_tab_claims_its_errors_and_shows_them_in_place():
    section = ComponentSection("partitioner", bn.Job(partitioner="split-lines",
                                                     params={"partitioner": {"chunk_size": 0}}))
    assert section.claims("partitioner") and section.claims("params.partitioner.chunk_size")
    assert not section.claims("params.partitioner_x") and not section.claims("params.app.chunk_size")
    section.show_errors([FieldError("params.partitioner.chunk_size", "must be >= 1, got 0"),
                         FieldError("partitioner", "unknown partitioner")])
    assert "must be &gt;= 1" in section.form.fields["chunk_size"].error.value
    assert "partitioner: unknown partitioner" in section.error.value
    assert "chunk_size" not in section.error.value  # not said twice
    section.show_errors([])
    assert section.error.value == "" and section.form.fields["chunk_size"].error.value == ""


def test_a_component_that_cannot_be_loaded_keeps_the_tab_usable():
    section = ComponentSection("assembler", bn.Job(assembler="no.such.module:Thing",
                                                   params={"assembler": {"level": 9}}))
    assert section.choice.value == "no.such.module:Thing"
    assert "cannot load it here" in section.doc.value
    assert section.form.free_form is not None and section.params == {"level": 9}
    assert section.value == "no.such.module:Thing"
    section.choice.value = "concat"
    assert section.value == "concat" and section.params == {} and "output_name" in section.form.fields


def test_the_app_tab_reads_its_inputs_only_once_edited():
    section = AppSection(bn.Job(app={"command": ["wc"], "cwd": "x"}), namespace={"shout": shout, "n": 3})
    assert section.kind_buttons.value == "command" and not section.touched
    assert [label for label, _ in section.function.options] == ["shout"]
    assert set(section.forms()) == {"app", "params.app"}
    section.kind_buttons.value = "json"
    assert section.value is None and set(section.forms()) == {"params.app"}
    section.json.value = '{"command": ['
    with pytest.raises(JobValidationError) as caught:
        section.value
    assert [e.field for e in caught.value.errors] == ["app"]
    assert "not valid JSON" in str(caught.value)
    section.json.value = '{"python": "tests.test_widgets_builder_parts:shout"}'
    assert section.value == {"python": "tests.test_widgets_builder_parts:shout"}
    assert "not resolved yet" not in section.doc.value
    section.kind_buttons.value = "function"
    assert section.value is None  # none picked yet
    section.function.value = shout
    assert section.value is shout and "Upper-case the chunk." in section.doc.value


def test_an_app_function_outside_the_namespace_is_still_offered():
    section = AppSection(bn.Job(app=shout), namespace={})
    assert section.kind_buttons.value == "function"
    assert section.function.options == (("shout", shout),)
    assert section.value is shout


def test_the_config_and_cluster_tabs():
    config = ConfigSection(bn.Job(config={"taskTimeout": 30}))
    assert config.value == {"taskTimeout": 30}
    assert config.claims("config.taskTimeout") and not config.claims("configuration")
    cluster = ClusterSection(client="the client")
    assert cluster.mode.options[0][1] == "client" and cluster.run_kwargs == {"client": "the client"}
    cluster.mode.value = "local"
    cluster.workers.value = 0
    assert cluster.run_kwargs == {"workers": 1}
    assert "client" not in [mode for _, mode in ClusterSection().mode.options]
    assert ClusterSection().run_kwargs == {}
    cluster.mode.value = "gateway"
    assert cluster.run_kwargs == {"cluster": "gateway"}
    cluster.mode.value, cluster.address.value = "address", " gateway:team "
    assert cluster.run_kwargs == {"scheduler": "gateway:team"}


def test_the_name_line():
    line = NameLine(None)
    assert line.value is None
    line.text.value = "named"
    line.text.value = "   "
    assert line.touched and line.value is None


class FormOfOneJob:
    """The least a form above the actions has: a job, where to run it, and where errors go."""

    def __init__(self, job: bn.Job):
        self.job = job
        self.run_kwargs = {"scheduler": "sync"}
        self.shown: list[FieldError] | None = None

    def show_errors(self, errors):
        self.shown = errors

    def code(self, *, run=True):
        return job_code(self.job, {}, self.run_kwargs if run else None)


def test_the_actions_answer_on_the_status_line(tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    form = FormOfOneJob(bn.Job(source=str(tmp_path / "in.txt"), partitioner="split-lines", app="identity",
                               params={"partitioner": {"lines_per_chunk": 1}}))
    actions = Actions(form)
    assert actions.save_path.value == "job.json"
    assert actions.plan() is None and actions.plan_result is None  # no destination: not planned
    assert [str(e) for e in form.shown] == ["dataDestination: is required"]
    assert "1 problem(s)" in actions.status.value and "#b00020" in actions.status.value
    form.job = form.job.copy(destination=str(tmp_path / "out"))
    refs = actions.plan()
    assert [r.index for r in refs] == [0, 1, 2] and actions.plan_result is refs
    assert "<b>3</b> chunk(s)" in actions.plan_view.value and form.shown == []
    actions.run_button.click()
    handle = actions.handle
    assert handle.result().state == "COMPLETE"
    actions.progress.join(60)
    assert actions.progress.bar.value == 3 and actions.run_box.children == (actions.progress,)
    actions.code_button.click()
    assert "handle = job.submit(scheduler=&#x27;sync&#x27;)" in actions.code_view.value
    actions.save_path.value = " "
    assert actions.save() is None and "give a file name" in actions.status.value
    assert actions.save(str(tmp_path / "job.yaml")) == str(tmp_path / "job.yaml")
    assert bn.Job.from_file(tmp_path / "job.yaml").to_dict() == form.job.to_dict()


def test_the_code_of_a_job_leaves_out_secrets_and_defaults():
    job = bn.Job(source="s3://b/in/", app=shout, destination="out/",
                 storage_options={"anon": False, "secret": "hunter2", "client_kwargs": {"api_key": "k"}})
    args = dict(job_arguments(job))
    assert args["storage_options"] == {"anon": False, "client_kwargs": {}}
    assert "params" not in args and "config" not in args and "base_dir" not in args
    text = job_code(job, {"shout": shout})
    assert "app=shout," in text and "hunter2" not in text and "submit" not in text
    assert job_code(job).count("'tests.test_widgets_builder_parts:shout'") == 1  # not in the namespace
    assert job_summary(job.copy(name="loud", app="identity")) == \
        "loud: s3://b/in/ -> passthrough -> identity -> passthrough -> out/"


@pytest.fixture
def template_folder(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "upper.json").write_text(json.dumps(
        {"id": "upper-t", "partitioner": "split-lines", "app": "identity", "assembler": "concat",
         "params": {"partitioner": {"lines_per_chunk": 5}}}))
    return tmp_path


def test_a_job_from_a_template_goes_through_the_builder_unchanged(template_folder):
    job = bn.Job(template_id="upper-t", source="in.txt", destination="out/", base_dir=str(template_folder))
    builder = JobBuilder(job, namespace={})
    # the tabs show what the template names...
    assert builder.partitioner.value == "split-lines" and builder.assembler.value == "concat"
    assert builder.app_kind.value == "registered" and builder.app_registered.value == "identity"
    assert "output_name" in builder.app_form.fields
    # ...and the job still leaves them to the template
    assert builder.job.to_dict() == job.to_dict()
    assert builder.job.app is None and builder.job.partitioner is None
    builder.app_registered.value = "noop"  # chosen here: the job now names it
    assert builder.job.app == "noop" and builder.job.partitioner is None


def test_errors_no_tab_claims_show_beside_the_name(template_folder):
    builder = JobBuilder(bn.Job(template_id="nope", source="in.txt", destination="out/",
                                base_dir=str(template_folder)), namespace={})
    errors = builder.validate(check_storage=False)
    assert sorted(e.field for e in errors) == ["app", "templateId"]
    assert "templateId: no template" in builder.name_line.error.value
    assert "app: is required" in builder.sections["App"].error.value
    assert "templateId" not in builder.sections["App"].error.value
    assert [builder.tabs.get_title(i) for i in range(3)] == ["Source", "Partitioner", "App (!)"]
