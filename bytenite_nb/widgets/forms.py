"""Params forms generated from a component's JSON Schema.

Every property of an object schema becomes a row: a typed input (integer,
number, string, enum, boolean, a nested form for an object with properties,
a line of text split like a shell command line for a schema marked
``"x-widget": "command-line"``, a JSON box for anything else), a reset button
and an inline error line. A
field is *set* only when it was in the initial value or the user changed it,
so a form given ``{"chunk_size": 100}`` gives back exactly that, not the
schema's defaults as well.

>>> form = SchemaForm({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
...                   value={"n": 3}, prefix="params.app")
>>> form.value
{'n': 3}
>>> form.fields["n"].widget.value = 0
>>> [str(e) for e in form.errors]
['params.app.n: must be >= 1, got 0']
"""

from __future__ import annotations

import copy
import html
import json
import shlex
from typing import Any, Callable

import ipywidgets as widgets

from ..exceptions import FieldError
from ..schema import check, join_field

ERROR_STYLE = "color:#b00020;font-size:90%"
HELP_STYLE = "color:#666;font-size:90%"
LABEL_WIDTH = "170px"

_UNSET = object()


def error_html(messages: list[str]) -> str:
    """The inline error line of a field (empty when there is nothing to say)."""
    if not messages:
        return ""
    return "".join(f'<div style="{ERROR_STYLE}">{html.escape(m)}</div>' for m in messages)


def schema_type(schema: dict) -> str | None:
    """The one JSON type a field takes, ignoring ``null`` (``["number", "null"]`` -> ``"number"``)."""
    typ = schema.get("type")
    if isinstance(typ, list):
        kinds = [t for t in typ if t != "null"]
        return kinds[0] if len(kinds) == 1 else None
    if typ is None and "properties" in schema:
        return "object"
    return typ


def choice_types(schema: dict) -> list[str]:
    """The JSON types a field of several types takes (``anyOf``/``oneOf`` or a list
    of types), arrays named by their items: what its help shows.

    >>> choice_types({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
    ['string', 'array of string']
    """
    options = schema.get("anyOf") or schema.get("oneOf") or []
    if isinstance(schema.get("type"), list):
        options = [{"type": t} for t in schema["type"]] + list(options)
    kinds = []
    for option in options:
        if not isinstance(option, dict):
            continue
        typ = option.get("type") or ("object" if "properties" in option else "enum" if "enum" in option else None)
        if typ == "array" and isinstance(option.get("items"), dict) and option["items"].get("type"):
            typ = f"array of {option['items']['type']}"
        if typ and typ != "null" and typ not in kinds:
            kinds.append(typ)
    return kinds


def _has_form(schema: dict) -> bool:
    return schema_type(schema) == "object" and bool(schema.get("properties"))


class Field:
    """One property of a form: its input widget, whether it is set, its errors."""

    def __init__(self, name: str, schema: dict, *, required: bool, prefix: str,
                 on_change: Callable[[], None]):
        self.name = name
        self.schema = schema if isinstance(schema, dict) else {}
        self.required = required
        self.path = join_field(prefix, name)
        self.present = False
        self._on_change = on_change
        self._quiet = False
        self._raw: Any = _UNSET  # a value kept as given until the user edits the field
        self.parse_error: str | None = None
        self.widget = self._make_input()
        self.widget.observe(self._changed, names="value")
        self.reset_button = widgets.Button(icon="undo", tooltip=f"unset {name} (use the default)",
                                           layout=widgets.Layout(width="32px"))
        self.reset_button.on_click(lambda _: self.unset())
        label = name + (" *" if required else "")
        self.label = widgets.Label(label, tooltip=self.schema.get("description", ""),
                                   layout=widgets.Layout(width=LABEL_WIDTH))
        self.help = widgets.HTML("")
        self.error = widgets.HTML("")
        self.row = widgets.VBox([widgets.HBox([self.label, self.widget, self.reset_button, self.help]),
                                 self.error])
        self._show_default()
        self._sync_reset()

    # -- building ----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``command-line``, ``enum``, ``boolean``, ``integer``, ``number``, ``string`` or ``json``."""
        if self.schema.get("x-widget") == "command-line":
            return "command-line"
        if "enum" in self.schema:
            return "enum"
        typ = schema_type(self.schema)
        return typ if typ in ("boolean", "integer", "number", "string") else "json"

    def _help_text(self) -> str:
        parts = []
        if self.schema.get("description"):
            parts.append(self.schema["description"])
        if self.kind == "json" and len(choice_types(self.schema)) > 1:
            parts.append("JSON: " + " | ".join(choice_types(self.schema))
                         + (" (plain text is taken as a string)" if self._takes_text else ""))
        if "default" in self.schema:
            parts.append(f"default: {json.dumps(self.schema['default'])}")
        return "  ".join(parts)

    @property
    def _takes_text(self) -> bool:
        """A JSON field that also takes a string: text that is not JSON is that string."""
        return "string" in choice_types(self.schema)

    def _make_input(self) -> widgets.Widget:
        kind = self.kind
        layout = widgets.Layout(width="260px")
        if kind == "enum":
            options = [(json.dumps(o) if not isinstance(o, str) else o, o) for o in self.schema["enum"]]
            return widgets.Dropdown(options=options, value=None, layout=layout)
        if kind == "boolean":
            return widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="260px"))
        if kind == "integer":
            return widgets.IntText(value=0, layout=layout)
        if kind == "number":
            return widgets.FloatText(value=0.0, layout=layout)
        if kind == "string":
            return widgets.Text(value="", placeholder=str(self.schema.get("default", "")), layout=layout)
        if kind == "command-line":
            return widgets.Text(value="", placeholder="python3 app.py --fast", continuous_update=False,
                                layout=widgets.Layout(width="420px"))
        return widgets.Textarea(value="", placeholder=json.dumps(self.schema.get("default", None)) or "",
                                rows=2, layout=widgets.Layout(width="360px"))

    # -- values --------------------------------------------------------------------------

    def _show(self, value: Any) -> None:
        """Put ``value`` in the input without marking the field as edited."""
        self._quiet = True
        try:
            kind = self.kind
            w = self.widget
            if kind == "enum":
                w.value = value if value in self.schema["enum"] else None
            elif kind == "boolean":
                w.value = bool(value) if isinstance(value, bool) else False
            elif kind == "integer":
                w.value = value if isinstance(value, int) and not isinstance(value, bool) else 0
            elif kind == "number":
                w.value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
            elif kind == "string":
                w.value = value if isinstance(value, str) else ""
            elif kind == "command-line":
                w.value = shlex.join(value) if isinstance(value, list) and all(isinstance(a, str) for a in value) \
                    else value if isinstance(value, str) else "" if value is _UNSET or value is None else json.dumps(value)
            else:
                w.value = "" if value is _UNSET else json.dumps(value)
        finally:
            self._quiet = False

    def _show_default(self) -> None:
        """Show the schema's default (a JSON box shows it as its placeholder instead)."""
        self._show(_UNSET if self.kind == "json" else self.schema.get("default"))

    def set(self, value: Any) -> None:
        """Set the field to ``value`` (kept exactly as given until edited)."""
        self.present = True
        self._raw = copy.deepcopy(value)
        self.parse_error = None
        self._show(value)
        self._sync_reset()

    def unset(self) -> None:
        """Leave the field out of the form's value (the component's default applies)."""
        self.present = False
        self._raw = _UNSET
        self.parse_error = None
        self._show_default()
        self._sync_reset()
        self._on_change()

    def _sync_reset(self) -> None:
        self.reset_button.disabled = not self.present
        self.label.style.font_weight = "bold" if self.present else ""
        # A number box cannot be empty: say when what it shows is not part of the params.
        unset = "" if self.present else ("not set (the default applies)" if "default" in self.schema
                                         else "not set")
        text = "  ".join(t for t in (self._help_text(), unset) if t)
        self.help.value = f'<span style="{HELP_STYLE}">{html.escape(text)}</span>'


    def _changed(self, change) -> None:
        if self._quiet:
            return
        self.present = True
        self._raw = _UNSET
        self.parse_error = None
        if self.kind == "json":
            text = self.widget.value.strip()
            if not text:
                self.present = False
            else:
                try:
                    self._raw = json.loads(text)
                except json.JSONDecodeError as exc:
                    if self._takes_text:
                        self._raw = text  # e.g. a column name typed without quotes
                    else:
                        self.parse_error = f"not valid JSON: {exc.msg} at column {exc.colno}"
        elif self.kind == "command-line":
            text = self.widget.value.strip()
            if not text:
                self.present = False
            else:
                try:
                    self._raw = shlex.split(text)
                except ValueError as exc:
                    self.parse_error = f"not a valid command line: {exc}"
        elif self.kind == "enum" and self.widget.value is None:
            self.present = False
        self._sync_reset()
        self._on_change()

    @property
    def value(self) -> Any:
        """The field's value, or ``_UNSET`` when it is not set."""
        if not self.present:
            return _UNSET
        if self._raw is not _UNSET:
            return copy.deepcopy(self._raw)
        if self.kind in ("json", "command-line"):
            return _UNSET  # unparsable text: reported by parse_error
        return self.widget.value

    def show_errors(self, messages: list[str]) -> None:
        self.error.value = error_html(messages)


class ObjectField:
    """A property that is itself an object with properties: a nested form."""

    kind = "object"

    def __init__(self, name: str, schema: dict, *, required: bool, prefix: str,
                 on_change: Callable[[], None]):
        self.name = name
        self.schema = schema
        self.required = required
        self.path = join_field(prefix, name)
        self.present = False
        self.parse_error = None
        self._on_change = on_change
        self.form = SchemaForm(schema, prefix=self.path, on_change=self._changed)
        self.widget = self.form
        title = html.escape(name + (" *" if required else ""))
        description = html.escape(schema.get("description", ""))
        self.error = widgets.HTML("")
        self.row = widgets.VBox([
            widgets.HTML(f"<b>{title}</b> <span style=\"{HELP_STYLE}\">{description}</span>"),
            widgets.Box([self.form], layout=widgets.Layout(border="1px solid #ddd", padding="4px",
                                                           margin="0 0 0 16px")),
            self.error,
        ])

    def _changed(self) -> None:
        self.present = bool(self.form.value) or self.present
        self._on_change()

    def set(self, value: Any) -> None:
        self.present = True
        if isinstance(value, dict):
            self.form.set_value(value)
        else:  # the wrong type: kept so that validation names it
            self.form.set_value({})
            self.form._wrong_type = copy.deepcopy(value)

    def unset(self) -> None:
        self.present = False
        self.form.set_value({})
        self._on_change()

    @property
    def value(self) -> Any:
        if not self.present:
            return _UNSET
        if self.form._wrong_type is not _UNSET:
            return copy.deepcopy(self.form._wrong_type)
        return self.form.value

    def show_errors(self, messages: list[str]) -> None:
        self.error.value = error_html(messages)


class SchemaForm(widgets.VBox):
    """A form for the params of one component, generated from its JSON Schema.

    ``value`` is the params object; ``errors`` the validation errors, each a
    :class:`~bytenite_nb.exceptions.FieldError` naming its field (``prefix``
    plus the property path); errors show inline as the user types. A schema
    without properties (anything goes) becomes one JSON box.

    >>> form = SchemaForm({"type": "object", "properties": {"mode": {"enum": ["fast", "exact"]}}})
    >>> form.fields["mode"].widget.value = "exact"
    >>> form.value
    {'mode': 'exact'}
    """

    def __init__(self, schema: dict | None, value: dict | None = None, *, prefix: str = "",
                 on_change: Callable[[], None] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, dict) else {"type": "object"}
        self.prefix = prefix
        self._callbacks: list[Callable[[], None]] = [on_change] if on_change else []
        self._wrong_type: Any = _UNSET
        self._extra: dict = {}
        self._building = True
        self.fields: dict[str, Field | ObjectField] = {}
        self.form_error = widgets.HTML("")
        self.free_form: Field | None = None
        properties = self.schema.get("properties") or {}
        required = set(self.schema.get("required") or ())
        if properties:
            for name, prop in properties.items():
                prop = prop if isinstance(prop, dict) else {}
                cls = ObjectField if _has_form(prop) else Field
                self.fields[name] = cls(name, prop, required=name in required, prefix=prefix,
                                        on_change=self._changed)
            rows = [f.row for f in self.fields.values()]
        else:
            self.free_form = Field("params", {"type": "object", "description": "any JSON object"},
                                   required=False, prefix=prefix, on_change=self._changed)
            rows = [self.free_form.row]
        self.children = [*rows, self.form_error]
        self._building = False
        if value is not None:
            self.set_value(value)

    # -- values --------------------------------------------------------------------------

    @property
    def value(self) -> dict:
        """The params object: the fields that are set, plus unknown keys given at the start."""
        if self.free_form is not None:
            got = self.free_form.value
            return copy.deepcopy(got) if got is not _UNSET else {}
        out = copy.deepcopy(self._extra)
        for name, field in self.fields.items():
            got = field.value
            if got is not _UNSET:
                out[name] = got
        return out

    def set_value(self, value: dict | None) -> None:
        """Show ``value`` (fields not in it are unset)."""
        value = value if value is not None else {}
        self._wrong_type = _UNSET
        if not isinstance(value, dict):
            self._wrong_type = copy.deepcopy(value)
            value = {}
        self._building = True
        try:
            if self.free_form is not None:
                if value:
                    self.free_form.set(value)
                else:
                    self.free_form.present = False
                    self.free_form._raw = _UNSET
                    self.free_form._show_default()
                    self.free_form._sync_reset()
            else:
                self._extra = {k: copy.deepcopy(v) for k, v in value.items() if k not in self.fields}
                for name, field in self.fields.items():
                    if name in value:
                        field.set(value[name])
                    elif field.present:
                        field.unset()
        finally:
            self._building = False
        self.show_errors()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever the user changes a field."""
        self._callbacks.append(callback)

    def _changed(self) -> None:
        if self._building:
            return
        self.show_errors()
        for callback in list(self._callbacks):
            callback()

    # -- validation ------------------------------------------------------------------------

    def parse_errors(self) -> list[FieldError]:
        """The fields whose text cannot be read as their type (a command line with an
        open quote, a JSON box that is not JSON): those have no value yet.

        >>> form = SchemaForm({"type": "object", "properties": {"tags": {"type": "array"}}}, prefix="params.app")
        >>> form.fields["tags"].widget.value = "[1,"
        >>> form.parse_errors(), form.value
        ([FieldError('params.app.tags: not valid JSON: Expecting value at column 4')], {})
        """
        out = []
        fields = [self.free_form] if self.free_form is not None else list(self.fields.values())
        for field in fields:
            if isinstance(field, ObjectField):
                out.extend(field.form.parse_errors())
            elif field.parse_error:
                out.append(FieldError(self.prefix if field is self.free_form else field.path, field.parse_error))
        return out

    @property
    def errors(self) -> list[FieldError]:
        """Every problem with the current value, each naming its field."""
        parse = self.parse_errors()
        value = self._wrong_type if self._wrong_type is not _UNSET else self.value
        # a field whose text cannot be read has no value: say why once, not also "is required"
        unreadable = {e.field for e in parse}
        return parse + [e for e in check(value, self.schema, self.prefix) if e.field not in unreadable]

    def show_errors(self, errors: list[FieldError] | None = None) -> list[FieldError]:
        """Show ``errors`` (default: :attr:`errors`) next to the fields they name; return them."""
        errors = self.errors if errors is None else errors
        per_field: dict[str, list[str]] = {}
        general: list[str] = []
        for err in errors:
            name = self._field_of(err.field)
            if name is None:
                general.append(str(err))
            else:
                per_field.setdefault(name, []).append(err)
        for name, field in self.fields.items():
            mine = per_field.get(name, [])
            if isinstance(field, ObjectField):
                field.form.show_errors([e for e in mine if e.field != field.path])
                field.show_errors([e.message for e in mine if e.field == field.path])
            else:
                field.show_errors([e.message if e.field == field.path else str(e) for e in mine])
        if self.free_form is not None:
            self.free_form.show_errors([e.message for e in errors])
            general = []
        self.form_error.value = error_html(general)
        return errors

    def _field_of(self, path: str) -> str | None:
        """Which top-level field an error's path falls in (None: the form as a whole)."""
        if self.prefix:
            if path == self.prefix or not path.startswith(self.prefix + "."):
                return None
            rest = path[len(self.prefix) + 1:]
        else:
            rest = path
        name = rest.split(".", 1)[0].split("[", 1)[0]
        return name if name in self.fields else None
