"""Params forms generated from JSON Schemas: the widgets made, values, inline errors."""

from __future__ import annotations

import ipywidgets as widgets

from bytenite_nb.job import CONFIG_SCHEMA
from bytenite_nb.registry import partitioners
from bytenite_nb.widgets.forms import ObjectField, SchemaForm

SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 1, "default": 4, "description": "How many."},
        "ratio": {"type": "number", "maximum": 1},
        "label": {"type": "string", "default": "x"},
        "mode": {"enum": ["fast", "exact"], "default": "fast"},
        "verbose": {"type": "boolean"},
        "limits": {"type": "object", "properties": {"low": {"type": "integer"}, "high": {"type": "integer"}},
                   "required": ["low"], "additionalProperties": False},
        "tags": {"type": "array", "items": {"type": "string"}},
        "timeout": {"type": ["number", "null"]},
    },
    "required": ["label"],
    "additionalProperties": False,
}


def test_each_schema_type_gets_its_widget():
    form = SchemaForm(SCHEMA, prefix="params.app")
    kinds = {name: type(f.widget) for name, f in form.fields.items()}
    assert kinds["count"] is widgets.IntText
    assert kinds["ratio"] is widgets.FloatText
    assert kinds["label"] is widgets.Text
    assert kinds["mode"] is widgets.Dropdown
    assert kinds["verbose"] is widgets.Checkbox
    assert kinds["tags"] is widgets.Textarea  # anything else is a JSON box
    assert kinds["timeout"] is widgets.FloatText  # a nullable number is a number
    assert isinstance(form.fields["limits"], ObjectField)
    assert set(form.fields["limits"].form.fields) == {"low", "high"}
    assert [value for _, value in form.fields["mode"].widget.options] == ["fast", "exact"]
    # defaults are shown, but an untouched form sets nothing
    assert form.fields["count"].widget.value == 4
    assert form.fields["label"].widget.placeholder == "x"
    assert "How many." in form.fields["count"].help.value
    assert "not set (the default applies)" in form.fields["count"].help.value
    assert form.fields["ratio"].help.value.endswith("not set</span>")
    assert form.fields["label"].label.value == "label *"
    assert form.value == {}


def test_value_round_trip_keeps_exactly_what_was_given():
    given = {"count": 3, "label": "run", "mode": "exact", "verbose": False, "limits": {"low": 1},
             "tags": ["a", "b"], "timeout": None}
    form = SchemaForm(SCHEMA, given, prefix="params.app")
    assert form.value == given
    assert form.errors == []


def test_user_edits_set_fields_and_reset_unsets_them():
    form = SchemaForm(SCHEMA, {"label": "a"})
    form.fields["count"].widget.value = 7
    form.fields["verbose"].widget.value = True
    form.fields["limits"].form.fields["high"].widget.value = 9
    form.fields["tags"].widget.value = '["x"]'
    form.fields["mode"].widget.value = "exact"
    assert form.value == {"label": "a", "count": 7, "verbose": True, "limits": {"high": 9}, "tags": ["x"],
                          "mode": "exact"}
    assert form.fields["count"].reset_button.disabled is False
    assert "not set" not in form.fields["count"].help.value
    form.fields["count"].reset_button.click()
    assert "count" not in form.value
    assert form.fields["count"].widget.value == 4  # back to showing the default
    assert form.fields["count"].reset_button.disabled is True


def test_errors_show_inline_next_to_their_field():
    form = SchemaForm(SCHEMA, {"label": "a"}, prefix="params.partitioner")
    changes = []
    form.on_change(lambda: changes.append(form.value))
    form.fields["count"].widget.value = 0
    assert [str(e) for e in form.errors] == ["params.partitioner.count: must be >= 1, got 0"]
    assert "must be &gt;= 1, got 0" in form.fields["count"].error.value
    assert changes[-1]["count"] == 0
    form.fields["count"].widget.value = 2
    assert form.fields["count"].error.value == ""
    # a nested object names the nested field, and the nested field shows it
    form.fields["limits"].form.fields["high"].widget.value = 3
    assert "params.partitioner.limits.low: is required" in [str(e) for e in form.errors]
    assert "is required" in form.fields["limits"].form.fields["low"].error.value
    # a JSON box that does not parse says so
    form.fields["tags"].widget.value = "[1,"
    assert any(e.field == "params.partitioner.tags" and "not valid JSON" in e.message for e in form.errors)
    assert "not valid JSON" in form.fields["tags"].error.value
    # a missing required field, once the user unsets it
    form.fields["label"].unset()
    assert "params.partitioner.label: is required" in [str(e) for e in form.errors]


def test_wrong_types_and_unknown_keys_given_are_kept_and_named():
    form = SchemaForm(SCHEMA, {"label": "a", "count": "many", "colour": "red"}, prefix="params.app")
    assert form.value == {"label": "a", "count": "many", "colour": "red"}
    messages = sorted(str(e) for e in form.errors)
    assert messages[0].startswith("params.app.colour: unknown field")
    assert messages[1] == 'params.app.count: expected integer, got "many"'
    assert "unknown field" in form.form_error.value
    assert "expected integer" in form.fields["count"].error.value


def test_schema_without_properties_is_one_json_box():
    form = SchemaForm({"type": "object"}, {"anything": [1, 2]}, prefix="params.app")
    assert form.fields == {}
    assert isinstance(form.free_form.widget, widgets.Textarea)
    assert form.value == {"anything": [1, 2]}
    form.free_form.widget.value = '{"n": 1}'
    assert form.value == {"n": 1}
    form.free_form.widget.value = '{"n": '
    assert [e.field for e in form.errors] == ["params.app"]


def test_forms_for_builtin_schemas():
    config = SchemaForm(CONFIG_SCHEMA, {"taskTimeout": 30, "isTestJob": True}, prefix="config")
    assert type(config.fields["taskTimeout"].widget) is widgets.FloatText
    assert type(config.fields["maxTaskRetries"].widget) is widgets.IntText
    assert config.fields["maxTaskRetries"].widget.value == 2  # the default, shown
    assert config.value == {"taskTimeout": 30, "isTestJob": True}
    config.fields["taskTimeout"].widget.value = -1
    assert [str(e) for e in config.errors] == ["config.taskTimeout: must be > 0, got -1.0"]
    split = SchemaForm(partitioners.get("split-lines").schema, prefix="params.partitioner")
    assert set(split.fields) == {"chunk_size", "lines_per_chunk", "read_ahead"}


def test_a_command_line_field_is_one_line_split_like_a_shell():
    from bytenite_nb.apps.command import CommandApp

    form = SchemaForm(CommandApp.SPEC_SCHEMA, {"command": ["python3", "app.py", "two words"]}, prefix="app")
    command = form.fields["command"]
    assert isinstance(command.widget, widgets.Text)
    assert command.widget.value == "python3 app.py 'two words'"
    assert form.value == {"command": ["python3", "app.py", "two words"]}
    as_text = SchemaForm(CommandApp.SPEC_SCHEMA, {"command": "python3 app.py"}, prefix="app")
    assert as_text.value == {"command": "python3 app.py"}  # kept as given until edited
    command.widget.value = "sh -c 'echo $TASK_DIR'"
    assert form.value == {"command": ["sh", "-c", "echo $TASK_DIR"]}
    command.widget.value = "sh -c 'unclosed"
    assert [str(e) for e in form.errors] == ["app.command: not a valid command line: No closing quotation"]
    assert "not a valid command line" in command.error.value
    command.widget.value = ""
    assert [str(e) for e in form.errors] == ["app.command: is required"]


def test_runtime_and_descriptor_schemas_make_forms():
    from bytenite_nb.apps import runtime_schemas
    from bytenite_nb.storage import descriptor_schemas

    for key, schema in {**runtime_schemas(), **descriptor_schemas()}.items():
        form = SchemaForm(schema, prefix="app")
        assert list(form.fields) == list(schema["properties"]), key
        for name, field in form.fields.items():
            # every field says what it is for, as text
            description = schema["properties"][name]["description"]
            assert field.schema["description"] == description and "``" not in description


def test_a_param_of_several_types_is_a_json_field_that_says_which():
    from bytenite_nb.registry import assemblers

    schema = assemblers.get("merge-key").schema
    form = SchemaForm(schema, prefix="params.assembler")
    on = form.fields["on"]
    assert on.kind == "json" and type(on.widget) is widgets.Textarea
    assert "JSON: string | array of string (plain text is taken as a string)" in on.help.value
    on.widget.value = '["city", "day"]'
    assert form.value["on"] == ["city", "day"] and on.parse_error is None
    on.widget.value = "city"  # not JSON, but the field takes a string
    assert form.value["on"] == "city" and on.parse_error is None and not form.errors
    numbers = SchemaForm({"type": "object", "properties": {"n": {"anyOf": [{"type": "integer"},
                                                                            {"type": "array"}]}}})
    numbers.fields["n"].widget.value = "[1, 2"
    assert numbers.fields["n"].parse_error == "not valid JSON: Expecting ',' delimiter at column 6"
    assert "plain text" not in numbers.fields["n"].help.value
