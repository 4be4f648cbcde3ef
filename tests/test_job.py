"""The job model: job files in and out, descriptors, templates, validation errors."""

from __future__ import annotations

import json

import pytest
import yaml

import bytenite_nb as bn
from bytenite_nb.exceptions import JobValidationError
from bytenite_nb.storage import parse_location

JOB = {
    "name": "uppercase",
    "id": "uppercase-1",
    "partitioner": "split-lines",
    "app": {"command": ["python3", "app.py"]},
    "assembler": "concat",
    "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "in.txt"}},
    "dataDestination": "out/",
    "params": {"partitioner": {"chunk_size": 1024}, "app": {"x": 1}, "assembler": {"output_name": "o.txt"}},
    "config": {"taskTimeout": 60, "jobTimeout": 3600, "maxTaskRetries": 2},
}


def write_job(folder, data, name="job.json"):
    path = folder / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return path


def errors_of(excinfo) -> list[str]:
    return [str(e) for e in excinfo.value.errors]


# -- loading and writing back ----------------------------------------------------------


def test_json_round_trip_is_stable(tmp_path, text_file):
    path = write_job(tmp_path, JOB)
    job = bn.Job.from_file(path)
    first = job.to_dict()
    assert first["partitioner"] == "split-lines"
    assert first["params"]["partitioner"] == {"chunk_size": 1024}
    again = bn.Job.from_dict(first, base_dir=str(tmp_path)).to_dict()
    assert again == first
    # what a file says comes back as it said it
    for key in ("name", "id", "app", "dataSource", "dataDestination", "config"):
        assert first[key] == JOB[key]


def test_yaml_job_file_equals_json(tmp_path):
    from_json = bn.Job.from_file(write_job(tmp_path, JOB)).to_dict()
    from_yaml = bn.Job.from_file(write_job(tmp_path, JOB, "job.yaml")).to_dict()
    assert from_json == from_yaml


def test_save_and_load(tmp_path, text_file):
    job = bn.Job(source=str(text_file), partitioner="split-lines", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 10}},
                 config={"maxTaskRetries": 0}, name="copy")
    for name in ("job.json", "job.yml"):
        loaded = bn.Job.from_file(job.save(tmp_path / name))
        assert loaded.to_dict() == job.to_dict()


def test_python_constructor_equals_job_file(tmp_path):
    built = bn.Job(
        source={"dataSourceDescriptor": "file", "params": {"path": "in.txt"}}, partitioner="split-lines",
        app={"command": ["python3", "app.py"]}, assembler="concat", destination="out/",
        params={"partitioner": {"chunk_size": 1024}, "app": {"x": 1}, "assembler": {"output_name": "o.txt"}},
        config=JOB["config"], name="uppercase", id="uppercase-1")
    assert built.to_dict() == bn.Job.from_dict(JOB).to_dict()


def test_callable_app_is_written_as_module_function():
    from bytenite_nb.apps.builtin import identity

    job = bn.Job(source="x", app=identity, destination="y")
    assert job.to_dict()["app"] == {"python": "bytenite_nb.apps.builtin:identity"}


def test_secrets_never_written_back(tmp_path):
    job = bn.Job(source="s3://b/k", app="identity", destination="s3://b/out",
                 storage_options={"key": "AKIAXXXX", "secret": "shh", "client_kwargs": {"region_name": "eu"}})
    text = json.dumps(job.to_dict())
    assert "AKIAXXXX" not in text and "shh" not in text
    assert job.to_dict()["storageOptions"] == {"client_kwargs": {"region_name": "eu"}}


def test_bytenite_only_fields_are_kept(tmp_path):
    data = dict(JOB, priority="EXECUTION_PRIORITY_HIGH", description="nightly")
    out = bn.Job.from_dict(data).to_dict()
    assert out["priority"] == "EXECUTION_PRIORITY_HIGH"
    assert out["description"] == "nightly"


def test_relative_paths_resolve_against_job_folder(tmp_path, text_file):
    sub = tmp_path / "jobs"
    sub.mkdir()
    (sub / "in.txt").write_text("a\n")
    spec = bn.Job.from_file(write_job(sub, dict(JOB, app="identity", params={}))).resolve()
    assert spec.source.url == f"file://{sub}/in.txt"
    assert spec.destination.url == f"file://{sub}/out/"


def test_config_defaults():
    job = bn.Job(source="x", app="identity", destination="y")
    assert job.config["maxTaskRetries"] == 2
    assert job.config["isTestJob"] is False
    assert job.config["taskTimeout"] is None


# -- descriptors -----------------------------------------------------------------------


@pytest.mark.parametrize("descriptor, url", [
    ({"dataSourceDescriptor": "aws", "params": {"bucketName": "b", "name": "in/x.txt"}}, "s3://b/in/x.txt"),
    ({"dataSourceDescriptor": "s3", "params": {"bucketName": "b", "name": ""}}, "s3://b"),
    ({"dataSourceDescriptor": "gcp", "params": {"bucketName": "g", "name": "p/"}}, "gs://g/p/"),
    ({"dataSourceDescriptor": "azure", "params": {"bucketName": "c", "name": "blob"}}, "az://c/blob"),
    ({"dataSourceDescriptor": "url", "params": {"url": "https://example.org/a.mp4"}}, "https://example.org/a.mp4"),
    ({"dataSourceDescriptor": "file", "params": {"path": "/data/in.txt"}}, "file:///data/in.txt"),
    ({"dataSourceDescriptor": "bypass"}, None),
    ("s3://bucket/key", "s3://bucket/key"),
    ("memory://x/y", "memory://x/y"),
    ("abfs://c/p", "abfs://c/p"),
    ("/abs/path/*.txt", "file:///abs/path/*.txt"),
])
def test_descriptors(descriptor, url):
    assert parse_location(descriptor, field="dataSource").url == url


def test_region_goes_to_storage_options():
    loc = parse_location({"dataSourceDescriptor": "aws",
                          "params": {"bucketName": "b", "name": "k", "cloudRegion": "eu-west-3"}}, field="dataSource")
    assert loc.storage_options["client_kwargs"]["region_name"] == "eu-west-3"


def test_descriptor_errors_name_the_field():
    with pytest.raises(bn.exceptions.FieldError) as e:
        parse_location({"dataSourceDescriptor": "aws", "params": {"name": "k"}}, field="dataSource")
    assert str(e.value) == "dataSource.params.bucketName: is required"
    with pytest.raises(bn.exceptions.FieldError) as e:
        parse_location({"dataSourceDescriptor": "s4", "params": {}}, field="dataSource")
    assert 'dataSource.dataSourceDescriptor: unknown descriptor "s4" (did you mean "s3"?)' in str(e.value)
    with pytest.raises(bn.exceptions.FieldError) as e:
        parse_location({"dataSourceDescriptor": "url", "params": {"url": "https://x/y"}}, field="dataDestination",
                       destination=True)
    assert "can only be a data source" in str(e.value)


@pytest.mark.parametrize("descriptor, message", [
    ({"dataSourceDescriptor": "file", "params": {"path": "in.txt", "pth": "x"}},
     'dataSource.params.pth: unknown field (did you mean "path"?)'),
    ({"dataSourceDescriptor": "url", "params": {"url": "https://x/y", "ulr": 1}},
     'dataSource.params.ulr: unknown field (did you mean "url"?)'),
    ({"dataSourceDescriptor": "aws", "params": {"bucketName": "b", "bucketNme": "c"}},
     'dataSource.params.bucketNme: unknown field (did you mean "bucketName"?)'),
    ({"dataSourceDescriptor": "s3", "params": {"bucketName": "b", "cloudRegon": "eu-west-3"}},
     'dataSource.params.cloudRegon: unknown field (did you mean "cloudRegion"?)'),
    ({"dataSourceDescriptor": "gcp", "params": {"bucketName": "b", "nmae": "p/"}},
     'dataSource.params.nmae: unknown field (did you mean "name"?)'),
    ({"dataSourceDescriptor": "azure", "params": {"bucketName": "c", "acountName": "a"}},
     'dataSource.params.acountName: unknown field (did you mean "accountName"?)'),
    ({"dataSourceDescriptor": "bypass", "params": {"pth": "x"}}, "dataSource.params.pth: unknown field"),
    ({"dataSourceDescriptor": "file", "params": {"path": "in.txt"}, "storageOptoins": {}},
     'dataSource.storageOptoins: unknown field (did you mean "storageOptions"?)'),
    ({"dataSourceDescriptor": "file", "parms": {"path": "in.txt"}},
     'dataSource.parms: unknown field (did you mean "params"?)'),
])
def test_an_unknown_key_in_a_descriptor_is_named(descriptor, message):
    with pytest.raises(bn.exceptions.ByteniteNBError) as e:
        parse_location(descriptor, field="dataSource")
    found = e.value.errors if isinstance(e.value, JobValidationError) else [e.value]
    assert message in [str(err) for err in found]


@pytest.mark.parametrize("descriptor, message", [
    ({"dataSourceDescriptor": "file", "params": {"path": 3}}, "dataSource.params.path: expected string, got 3"),
    ({"dataSourceDescriptor": "url", "params": {"url": "ftp://x/y"}},
     'dataSource.params.url: expected an http(s) URL, got "ftp://x/y"'),
    ({"dataSourceDescriptor": "s3", "params": {"bucketName": "b", "name": 7}},
     "dataSource.params.name: expected string, got 7"),
    ({"dataSourceDescriptor": "s3", "params": ["b"]}, 'dataSource.params: expected object, got ["b"]'),
    ({"dataSourceDescriptor": "s3", "params": {"bucketName": "b"}, "storageOptions": "anon"},
     'dataSource.storageOptions: expected object, got "anon"'),
    ({"dataSourceDescriptor": "s3", "params": {"bucket": "b", "bucketName": "c"}},
     "dataSource.params.bucket: the same as bucketName; give one of them"),
    ({"dataDestinationDescriptor": "s3", "params": {"bucketName": "b"}},
     'dataSource.dataDestinationDescriptor: unknown field (ByteNite names the kind "dataSourceDescriptor"'),
])
def test_wrong_types_in_a_descriptor_are_named(descriptor, message):
    with pytest.raises(bn.exceptions.FieldError) as e:
        parse_location(descriptor, field="dataSource")
    assert str(e.value).startswith(message)


def test_descriptors_as_bytenite_writes_them_still_work():
    # ByteNite's params carry "@type" and "secret_id"; earlier names of params still read
    loc = parse_location({"dataSourceDescriptor": "aws", "params": {
        "@type": "type.googleapis.com/bytenite.data_source.S3DataSource", "name": "/vids/big_buck_bunny.mp4",
        "bucketName": "my-bucket", "cloudRegion": "us-east-2", "secret_id": "my_aws_secret"}}, field="dataSource")
    assert loc.url == "s3://my-bucket/vids/big_buck_bunny.mp4"
    assert parse_location({"dataSourceDescriptor": "url", "params": {
        "@type": "type.googleapis.com/bytenite.data_source.HttpDataSource", "url": "https://x/bbb.mp4"}},
        field="dataSource").url == "https://x/bbb.mp4"
    assert parse_location({"dataSourceDescriptor": "gcs", "params": {"bucket": "g", "path": "p/"}},
                          field="dataSource").url == "gs://g/p/"
    assert parse_location({"dataSourceDescriptor": "bypass", "params": None}, field="dataSource").bypass
    spec = {"dataSourceDescriptor": "s3", "params": {"bucketName": "b", "name": "out/"},
            "storageOptions": {"anon": True}}
    loc = parse_location(spec, field="dataDestination", destination=True)
    assert loc.storage_options == {"anon": True} and loc.to_spec() == spec


def test_every_descriptor_schema_describes_every_field():
    from bytenite_nb.storage import DESCRIPTORS, descriptor_schemas

    schemas = descriptor_schemas()
    assert sorted(schemas) == sorted(DESCRIPTORS)
    for name, schema in schemas.items():
        assert schema["additionalProperties"] is False and schema["title"] and schema["description"]
        assert schema["properties"]["dataSourceDescriptor"]["const"] == name
        params = schema["properties"]["params"]
        assert params["additionalProperties"] is False
        for key, prop in {**schema["properties"], **params["properties"]}.items():
            assert prop.get("description"), f"{name}: {key}"


# -- validation ------------------------------------------------------------------------


def test_wrong_param_type_names_the_field(text_file, tmp_path):
    job = bn.Job(source=str(text_file), partitioner="split-lines", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"chunk_size": "64k"}})
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert errors_of(e) == ['params.partitioner.chunk_size: expected integer, got "64k"']


def test_every_error_is_reported_at_once(tmp_path):
    data = {
        "partitioner": "split-line",
        "app": {"comand": ["x"]},
        "assembler": "concat",
        "dataSource": {"dataSourceDescriptor": "file", "params": {}},
        "params": {"assembler": {"output_name": 3}},
        "config": {"taskTimeout": -1, "maxTaskRetrys": 1},
    }
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_dict(data).validate()
    text = "\n".join(errors_of(e))
    assert "dataSource.params.path: is required" in text
    assert "dataDestination: is required" in text
    assert 'partitioner: unknown partitioner \'split-line\' (did you mean "split-lines"?)' in text
    assert "app: expected one of the keys" in text and '(did you mean "command"?)' in text
    assert 'params.assembler.output_name: expected string, got 3' in text
    assert "config.taskTimeout: must be > 0, got -1" in text
    assert 'config.maxTaskRetrys: unknown field (did you mean "maxTaskRetries"?)' in text


def test_unknown_top_level_field_is_refused():
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_dict(dict(JOB, dataSorce="x")).validate(check_storage=False)
    assert errors_of(e) == ['dataSorce: unknown field (did you mean "dataSource"?)']


def test_load_errors_come_with_every_other_error(tmp_path):
    data = dict(JOB, name=3, app={"command": []}, params={"partitioner": {"chunk_size": "big"}})
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_file(write_job(tmp_path, data)).validate(check_storage=False)
    assert errors_of(e) == [
        "name: expected string, got 3",
        "app.command: expected a non-empty list of strings, got []",
        'params.partitioner.chunk_size: expected integer, got "big"',
    ]


def test_missing_source_file(tmp_path):
    job = bn.Job(source=str(tmp_path / "nope.txt"), app="identity", destination=str(tmp_path / "out"))
    with pytest.raises(JobValidationError) as e:
        job.validate()
    (err,) = e.value.errors
    assert err.field == "dataSource"
    assert "nope.txt" in err.message


def test_glob_matching_nothing(tmp_path):
    job = bn.Job(source=str(tmp_path / "*.csv"), app="identity", destination=str(tmp_path / "out"))
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert e.value.errors[0].field == "dataSource"
    assert "nothing matches" in e.value.errors[0].message


def test_unreachable_storage_names_the_field(tmp_path, monkeypatch):
    # A port where nothing listens: the S3 client cannot connect.
    from tests.conftest import free_port

    job = bn.Job(source="s3://bucket/key.txt", app="identity", destination=str(tmp_path / "out"),
                 storage_options={"client_kwargs": {"endpoint_url": f"http://127.0.0.1:{free_port()}"},
                                  "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}})
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert e.value.errors[0].field == "dataSource"
    assert "s3://bucket/key.txt" in e.value.errors[0].message


def test_destination_that_is_a_file(tmp_path, text_file):
    job = bn.Job(source=str(text_file), app="identity", destination=str(text_file))
    with pytest.raises(JobValidationError) as e:
        job.validate()
    assert e.value.errors[0].field == "dataDestination"
    assert "not a folder" in e.value.errors[0].message


def test_bad_job_id():
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_dict(dict(JOB, id="../escape")).validate(check_storage=False)
    assert e.value.errors[0].field == "id"


def test_app_python_reference_errors():
    job = bn.Job(source="x", app={"python": "no_such_module_xyz:fn"}, destination="y")
    with pytest.raises(JobValidationError) as e:
        job.validate(check_storage=False)
    assert e.value.errors[0].field == "app.python"
    assert "no_such_module_xyz" in e.value.errors[0].message

    job = bn.Job(source="x", app={"python": "os.path:join"}, destination="y")
    job.validate(check_storage=False)  # join(a, b, c) accepts three arguments

    job = bn.Job(source="x", app={"python": "os.path:basename"}, destination="y")
    with pytest.raises(JobValidationError) as e:
        job.validate(check_storage=False)
    assert "must accept (chunk_path, results_dir, params[, chunk_info])" in str(e.value)


def test_python_file_reference_relative_to_job(tmp_path, text_file):
    (tmp_path / "myapp.py").write_text("def shout(chunk_path, results_dir, params):\n"
                                       "    return open(chunk_path).read().upper()\n")
    job = bn.Job.from_dict({"app": {"python": "myapp.py:shout"}, "dataSource": str(text_file),
                            "dataDestination": "out/"}, base_dir=str(tmp_path))
    spec = job.resolve()
    assert spec.app.load()(str(text_file), str(tmp_path), {}).startswith("LINE 0")


def test_bad_json_file_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "name": "x",\n  "app": \n}\n')
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_file(path)
    assert str(path) in str(e.value)
    assert "line 4, column 1" in str(e.value)


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\napp: [unclosed\n")
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_file(path)
    assert "not valid YAML" in str(e.value) and "line" in str(e.value)


def test_job_file_not_an_object(tmp_path):
    path = write_job(tmp_path, JOB)
    path.write_text("[1, 2]")
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_file(path)
    assert "must hold an object" in str(e.value)


def test_missing_job_file(tmp_path):
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_file(tmp_path / "nope.json")
    assert "cannot read job file" in str(e.value)


def test_params_must_be_objects():
    with pytest.raises(JobValidationError) as e:
        bn.Job.from_dict(dict(JOB, params={"partitioner": 5, "apps": {}})).validate(check_storage=False)
    assert errors_of(e) == ["params.partitioner: expected object, got 5",
                            'params.apps: unknown field (did you mean "app"?)']


# -- templates -------------------------------------------------------------------------


def test_template_supplies_components_params_and_config(tmp_path, text_file):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "copy-lines.json").write_text(json.dumps({
        "id": "copy-lines", "description": "split, copy, concat",
        "partitioner": "split-lines", "app": "identity", "assembler": "concat",
        "params": {"partitioner": {"lines_per_chunk": 50}, "assembler": {"output_name": "all.txt"}},
        "config": {"maxTaskRetries": 0},
    }))
    job = bn.Job.from_dict({"templateId": "copy-lines", "dataSource": str(text_file), "dataDestination": "out/",
                            "params": {"assembler": {"output_name": "mine.txt"}}}, base_dir=str(tmp_path))
    spec = job.resolve()
    assert (spec.partitioner_name, spec.app.name, spec.assembler_name) == ("split-lines", "identity", "concat")
    assert spec.partitioner_params["lines_per_chunk"] == 50
    assert spec.assembler_params["output_name"] == "mine.txt"  # the job wins over the template
    assert spec.config["maxTaskRetries"] == 0
    assert job.to_dict()["templateId"] == "copy-lines" and "app" not in job.to_dict()


def test_template_in_subfolder_and_env(tmp_path, monkeypatch, text_file):
    folder = tmp_path / "shared" / "anything"
    folder.mkdir(parents=True)
    (folder / "template.json").write_text(json.dumps({"id": "t1", "app": "identity", "assembler": "zip"}))
    monkeypatch.setenv("BYTENITE_NB_TEMPLATES", str(tmp_path / "shared"))
    spec = bn.Job(template_id="t1", source=str(text_file), destination=str(tmp_path / "o")).resolve()
    assert spec.assembler_name == "zip"


def test_unknown_template():
    with pytest.raises(JobValidationError) as e:
        bn.Job(template_id="nope", source="x", destination="y").validate(check_storage=False)
    assert e.value.errors[0].field == "templateId"
    assert "no template 'nope'" in e.value.errors[0].message
