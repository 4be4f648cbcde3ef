"""The App tab: what runs on every chunk, and a form for its params.

The app is one of: a registered app; a function of this notebook that takes
``(chunk_path, results_dir, params)``; an app object of one runtime
(command, python, folder, image, notebook, and any a plugin adds), set field
by field in a form generated from that runtime's spec schema, the same
schema the JupyterLab editor uses; or any app spec as JSON. Below it, the
params form follows the app named now.

>>> import bytenite_nb as bn
>>> section = AppSection(bn.Job(app="identity"), namespace={})
>>> section.kind_buttons.value = "command"
>>> section.spec_form.fields["command"].widget.value = "wc -l"
>>> section.value
{'command': ['wc', '-l']}
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any, Callable

import ipywidgets as widgets

from ... import registry
from ...exceptions import FieldError, JobValidationError
from ...job import Job
from ...plaintext import plain_text
from ..forms import SchemaForm
from .sections import Section, description_html, from_template

#: the kinds of app that are not runtime objects: (label, kind); each runtime's kind is its key
OTHER_APP_KINDS = (
    ("registered app", "registered"),
    ("function in this notebook", "function"),
)
JSON_APP_KIND = ("other (JSON)", "json")


def kernel_namespace() -> dict:
    """The kernel's namespace, where a notebook's functions live (``__main__``'s outside a kernel)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        return shell.user_ns
    return vars(sys.modules["__main__"])


def app_functions(namespace: dict) -> dict[str, Callable]:
    """Functions of ``namespace`` that can be apps: ``fn(chunk_path, results_dir, params)``.

    >>> def shout(chunk_path, results_dir, params): pass
    >>> list(app_functions({"shout": shout, "print": print, "_hidden": shout}))
    ['shout']
    """
    found = {}
    for name, obj in namespace.items():
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            continue
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required_after = [p for p in positional[3:] if p.default is p.empty]
        if len(positional) >= 3 and not required_after:
            found[name] = obj
    return dict(sorted(found.items()))


def runtime_schemas() -> dict[str, dict]:
    """Runtime key -> its spec schema (the form of an app object of that runtime);
    none when a runtime plugin is broken, so that the builder still opens.

    >>> sorted(runtime_schemas())
    ['command', 'folder', 'image', 'notebook', 'python']
    """
    from ...apps import runtime_schemas as schemas

    try:
        return schemas()
    except Exception:  # a broken runtime plugin must not break the builder
        return {}


def runtime_kind(spec: dict, runtimes: dict) -> str | None:
    """The runtime an ``app`` object names (``image`` when it also says ``command``).

    >>> from bytenite_nb.apps import runtimes
    >>> runtime_kind({"image": "localhost/wc:1", "command": ["wc"]}, runtimes())
    'image'
    """
    keys = [k for k in spec if k in runtimes]
    keys = [k for k in keys if not any(k in getattr(runtimes[o], "absorbs", ()) for o in keys)]
    return keys[0] if len(keys) == 1 else None


def app_kind_of(spec: Any, schemas: dict[str, dict]) -> tuple[str, Any]:
    """Which input shows the app ``spec`` (a kind of :data:`OTHER_APP_KINDS`, a runtime
    key of ``schemas``, or ``json``), and what that input holds.

    >>> app_kind_of({"command": ["wc"]}, runtime_schemas())
    ('command', {'command': ['wc']})
    >>> app_kind_of({"command": ["wc"], "bogus": 1, "python": "m:f"}, runtime_schemas())[0]
    'json'
    """
    from ...apps import App, runtimes

    if spec is None:
        return "registered", "identity"
    if isinstance(spec, str):
        return "registered", spec
    if isinstance(spec, App):
        return "json", spec.to_spec()
    if callable(spec):
        return "function", spec
    if isinstance(spec, dict) and runtime_kind(spec, runtimes()) in schemas:
        return runtime_kind(spec, runtimes()), spec
    return "json", spec


def json_app(text: str) -> Any:
    """The app spec a JSON box holds (None when it is empty).

    >>> json_app('{"command": ["wc"]}')
    {'command': ['wc']}
    >>> json_app('{"command": ')
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.JobValidationError: invalid job: app: not valid JSON: Expecting value at column 12
    """
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobValidationError(FieldError("app", f"not valid JSON: {exc.msg} at column {exc.colno}")) from None


def describe_app(spec: Any, *, base_dir: str | None, near: list[str] | None = None) -> tuple[dict | None, str]:
    """The params schema and the first paragraph of the description of the app
    ``spec`` names (no schema, and why, when it does not resolve yet).

    >>> schema, doc = describe_app("identity", base_dir=".")
    >>> sorted(schema["properties"]), doc
    (['output_name'], 'The chunk, unchanged, as the result (result.bin): the identity map.')
    """
    if spec is None:
        return None, ""
    try:
        app = registry.resolve("app", spec, base_dir=base_dir, near=near)
    except Exception as exc:  # whatever an app's loading raises, the tab says it and stays usable
        return None, f"not resolved yet: {exc}"
    schema = app.schema
    if schema is None and callable(spec):
        schema = getattr(spec, "schema", None)  # a function may carry its params schema
    described = app.fn if callable(getattr(app, "fn", None)) else app
    return schema, plain_text(inspect.getdoc(described)).split("\n\n", 1)[0]


class AppSection(Section):
    """The App tab. ``namespace`` is where the functions offered as apps are found."""

    title = "App"
    fields = ("app",)

    def __init__(self, job: Job, namespace: dict):
        self.given = job.app
        self.shown = job.app if job.app is not None else from_template(job, "app")
        self.base_dir, self.near = job.component_dir("app"), job.component_near("app")
        self.runtime_schemas = runtime_schemas()
        kinds = [*OTHER_APP_KINDS, *((s.get("title") or k, k) for k, s in self.runtime_schemas.items()), JSON_APP_KIND]
        self.kind_buttons = widgets.ToggleButtons(options=kinds, style={"button_width": "auto"})
        self.registered = widgets.Dropdown(description="App", layout=widgets.Layout(width="420px"))
        self.function = widgets.Dropdown(description="Function", layout=widgets.Layout(width="420px"))
        self.json = widgets.Textarea(layout=widgets.Layout(width="640px"), rows=3, continuous_update=False)
        self.spec_form = SchemaForm(None, prefix="app")
        self.spec_doc = widgets.HTML("")
        self.input_box = widgets.VBox()
        self.doc = widgets.HTML("")
        self.form = SchemaForm(None, prefix="params.app")
        self.form_box = widgets.VBox([self.form])
        super().__init__([self.kind_buttons, self.input_box, self.doc, self.form_box])
        with self.quietly():
            self._show_app(self.shown, app_functions(namespace))
        self._show_form(job.params.get("app", {}))
        self.on_edit(self.kind_buttons, self._kind_edited)
        for widget in (self.registered, self.function, self.json):
            self.on_edit(widget, lambda: self._show_form({}))

    # -- showing -------------------------------------------------------------------------

    def _show_app(self, spec: Any, functions: dict[str, Callable]) -> None:
        """Set the inputs to show the app ``spec``."""
        kind, main = app_kind_of(spec, self.runtime_schemas)
        names = registry.apps.names()
        self.registered.options = [*names, main] if kind == "registered" and main not in registry.apps else names
        options = list(functions.items())
        if kind == "function" and main not in functions.values():
            options.append((getattr(main, "__name__", repr(main)), main))
        self.function.options = options
        self.kind_buttons.value = kind
        if kind == "registered":
            self.registered.value = main
        elif kind == "function":
            self.function.value = main
        elif kind == "json":
            self.json.value = "" if spec is None else json.dumps(main, indent=1, default=str)
        self._show_input(kind, main if kind in self.runtime_schemas else None)

    def _show_input(self, kind: str, spec: dict | None = None) -> None:
        """Show the input of ``kind``: a runtime's form (holding ``spec``), a dropdown or the JSON box."""
        if kind not in self.runtime_schemas:
            self.input_box.children = [{"registered": self.registered, "function": self.function,
                                        "json": self.json}[kind]]
            return
        schema = self.runtime_schemas[kind]
        self.spec_form = SchemaForm(schema, spec or {}, prefix="app", on_change=self._spec_edited)
        self.spec_doc.value = description_html(plain_text(schema.get("description")))
        self.input_box.children = [self.spec_doc, self.spec_form]

    def _show_form(self, params: dict, *, keep_if_same: bool = False) -> None:
        """The description and params form of the app named now, holding ``params``
        (with ``keep_if_same``, the form stays as it is when the params schema is the same)."""
        try:
            spec = self.current
        except JobValidationError:
            spec = None
        schema, doc = describe_app(spec, base_dir=self.base_dir, near=self.near)
        self.doc.value = description_html(doc)
        if keep_if_same and (schema if isinstance(schema, dict) else {"type": "object"}) == self.form.schema:
            return
        self.form = SchemaForm(schema, params, prefix="params.app")
        self.form_box.children = [self.form]

    # -- edits ---------------------------------------------------------------------------

    def _kind_edited(self) -> None:
        self._show_input(self.kind_buttons.value)
        self._show_form({})

    def _spec_edited(self) -> None:
        """A field of the runtime's form changed: the params form follows the app it names now."""
        if self._quiet:
            return
        self.touched = True
        self._show_form({}, keep_if_same=True)

    # -- values --------------------------------------------------------------------------

    def _from_inputs(self) -> Any:
        kind = self.kind_buttons.value
        if kind == "registered":
            return self.registered.value
        if kind == "function":
            return self.function.value
        if kind == "json":
            return json_app(self.json.value)
        unreadable = self.spec_form.parse_errors()
        if unreadable:
            raise JobValidationError(unreadable)
        return self.spec_form.value or None

    @property
    def value(self) -> Any:
        """The app as the job will say it: as the inputs say once edited, else the job's own
        (the original object, or none when the job's template names the app).

        Raises :class:`~bytenite_nb.exceptions.JobValidationError` when an input cannot be read.
        """
        return self._from_inputs() if self.touched else self.given

    @property
    def current(self) -> Any:
        """The app the tab shows: as :attr:`value`, but the template's app when the job names none."""
        return self._from_inputs() if self.touched else self.shown

    @property
    def params(self) -> dict:
        return self.form.value

    def forms(self) -> dict[str, SchemaForm]:
        forms = {"params.app": self.form}
        if self.kind_buttons.value in self.runtime_schemas:
            forms["app"] = self.spec_form  # errors in the app object show next to its fields
        return forms
