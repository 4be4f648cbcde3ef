"""The job builder: a form for every part of a job, in stock ipywidgets.

Tabs for the source (a URL with a listing of what it matches and a preview
of the first file), the partitioner, the app, the assembler, the destination,
the job's config and the cluster it runs on. Partitioner, app and assembler
params get forms generated from each component's JSON Schema. Buttons
validate, plan (chunk count, sizes, first chunks), run (the job runs in the
background; a progress widget appears), show the equivalent Python code, and
save the job file.

>>> builder = JobBuilder(Job(source="in.txt", partitioner="split-lines", app="identity",
...                          assembler="concat", destination="out/"))
>>> builder.job.to_dict()["partitioner"]
'split-lines'
"""

from __future__ import annotations

import html
import inspect
import json
import os
import pprint
import sys
from typing import Any, Callable

import ipywidgets as widgets

from .. import registry
from ..exceptions import ByteniteNBError, FieldError, JobValidationError
from ..job import CONFIG_SCHEMA, Job, _component_spec
from ..plaintext import plain_text
from ..storage import list_source, parse_location
from .forms import SchemaForm, error_html
from .preview import preview_widget, size_text

SECTIONS = ("Source", "Partitioner", "App", "Assembler", "Destination", "Config", "Cluster")
LISTED_FILES = 20
PLANNED_CHUNKS_SHOWN = 10

#: app kinds that are not runtime objects: (label, kind); the runtimes' forms come from their spec schemas
OTHER_APP_KINDS = (
    ("registered app", "registered"),
    ("function in this notebook", "function"),
)
JSON_APP_KIND = ("other (JSON)", "json")


def _user_namespace() -> dict:
    """The kernel's namespace (where a notebook's functions live)."""
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


def _runtime_schemas() -> dict[str, dict]:
    """Runtime key -> its spec schema (the form of an app object of that runtime)."""
    from ..apps import runtime_schemas

    try:
        return runtime_schemas()
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


class _Section:
    """A tab of the builder: its box and its inline error line."""

    def __init__(self, title: str, children: list):
        self.title = title
        self.error = widgets.HTML("")
        self.box = widgets.VBox([*children, self.error], layout=widgets.Layout(padding="6px"))

    def show(self, messages: list[str]) -> None:
        self.error.value = error_html(messages)


class JobBuilder(widgets.VBox):
    """Build, check, plan and run a job from a notebook, without writing its JSON.

    ``JobBuilder(job)`` starts from an existing job; :attr:`job` gives the
    configured :class:`~bytenite_nb.Job` back at any time
    (``JobBuilder(job=j).job.to_dict() == j.to_dict()``); :attr:`handle` is the
    last job started with Run. ``namespace`` is where function apps are looked
    for (default: the kernel's namespace); ``client`` a Dask client to plan
    and run on.

    >>> builder = JobBuilder()
    >>> builder.source_url.value = "data/*.txt"
    >>> builder.job.to_dict()["dataSource"]
    'data/*.txt'
    """

    def __init__(self, job: Job | None = None, *, namespace: dict | None = None, client=None, **kwargs):
        super().__init__(**kwargs)
        self._base = job.copy() if job is not None else Job()
        self._namespace = namespace
        self._client = client
        self._touched: set[str] = set()
        self._quiet = False
        self.handle = None
        self.progress = None
        self.plan_result: list | None = None
        base = self._base

        # header
        self.name_text = widgets.Text(value=base.name or "", description="Name", placeholder="(from the app)",
                                      continuous_update=False)
        self.name_text.observe(lambda c: self._touch("name"), names="value")
        self.header_error = widgets.HTML("")

        # source
        self.source_url = widgets.Text(description="URL", placeholder="data/*.txt, s3://bucket/prefix/, ...",
                                       layout=widgets.Layout(width="640px"), continuous_update=False)
        self.source_note = widgets.HTML("")
        self.list_button = widgets.Button(description="List", icon="folder-open",
                                          tooltip="List the files the source matches")
        self.list_button.on_click(lambda _: self.list_source())
        self.source_listing = widgets.HTML("")
        self.source_preview = widgets.VBox()
        self.source_url.observe(self._source_changed, names="value")
        self._show_location(base.source, self.source_url, self.source_note)
        source = _Section("Source", [widgets.HBox([self.source_url, self.list_button]), self.source_note,
                                     self.source_listing, self.source_preview])

        # partitioner and assembler
        self.partitioner = widgets.Dropdown(description="Partitioner", layout=widgets.Layout(width="420px"))
        self.partitioner_doc = widgets.HTML("")
        self.partitioner_form = SchemaForm(None, prefix="params.partitioner")
        self.partitioner_box = widgets.VBox([self.partitioner_form])
        partitioner = _Section("Partitioner", [self.partitioner, self.partitioner_doc, self.partitioner_box])
        self.assembler = widgets.Dropdown(description="Assembler", layout=widgets.Layout(width="420px"))
        self.assembler_doc = widgets.HTML("")
        self.assembler_form = SchemaForm(None, prefix="params.assembler")
        self.assembler_box = widgets.VBox([self.assembler_form])
        assembler = _Section("Assembler", [self.assembler, self.assembler_doc, self.assembler_box])
        for kind in ("partitioner", "assembler"):
            self._setup_component(kind)

        # app: a registered name, a notebook function, or an object of one runtime, whose
        # form comes from that runtime's spec schema (the same the JupyterLab editor uses)
        self.runtime_schemas = _runtime_schemas()
        kinds = [*OTHER_APP_KINDS,
                 *((schema.get("title") or key, key) for key, schema in self.runtime_schemas.items()),
                 JSON_APP_KIND]
        self.app_kind = widgets.ToggleButtons(options=kinds, style={"button_width": "auto"})
        self.app_registered = widgets.Dropdown(description="App", layout=widgets.Layout(width="420px"))
        self.app_function = widgets.Dropdown(description="Function", layout=widgets.Layout(width="420px"))
        self.app_json = widgets.Textarea(layout=widgets.Layout(width="640px"), rows=3, continuous_update=False)
        self.app_spec_form = SchemaForm(None, prefix="app")
        self.app_spec_doc = widgets.HTML("")
        self.app_input = widgets.VBox()
        self.app_doc = widgets.HTML("")
        self.app_form = SchemaForm(None, prefix="params.app")
        self.app_box = widgets.VBox([self.app_form])
        app = _Section("App", [self.app_kind, self.app_input, self.app_doc, self.app_box])
        self._setup_app()

        # destination
        self.destination_url = widgets.Text(description="URL", placeholder="out/, s3://bucket/results/, ...",
                                            layout=widgets.Layout(width="640px"), continuous_update=False)
        self.destination_note = widgets.HTML("")
        self.destination_url.observe(lambda c: self._quiet or self._touch("destination"), names="value")
        self._show_location(base.destination, self.destination_url, self.destination_note)
        destination = _Section("Destination", [self.destination_url, self.destination_note])

        # config and cluster
        self.config_form = SchemaForm(CONFIG_SCHEMA, base.user_config, prefix="config")
        config = _Section("Config", [self.config_form])
        cluster_options = [("the current Dask client, or a local cluster", "default"),
                           ("a new local cluster", "local"),
                           ("a scheduler address", "address"),
                           ("this process, no Dask (for debugging)", "sync")]
        if client is not None:
            cluster_options.insert(0, ("the client given to the builder", "client"))
        self.cluster_mode = widgets.Dropdown(options=cluster_options, description="Run on",
                                             layout=widgets.Layout(width="520px"))
        self.cluster_workers = widgets.IntText(value=2, description="Workers", layout=widgets.Layout(width="200px"))
        self.cluster_address = widgets.Text(description="Address", placeholder="tcp://10.0.0.5:8786")
        cluster = _Section("Cluster", [self.cluster_mode, self.cluster_workers, self.cluster_address])

        self.sections = {s.title: s for s in (source, partitioner, app, assembler, destination, config, cluster)}
        self.tabs = widgets.Tab(children=[s.box for s in self.sections.values()])
        for i, title in enumerate(self.sections):
            self.tabs.set_title(i, title)

        # actions
        self.validate_button = widgets.Button(description="Validate", icon="check")
        self.plan_button = widgets.Button(description="Plan", icon="th-list")
        self.run_button = widgets.Button(description="Run", icon="play", button_style="primary")
        self.code_button = widgets.Button(description="Show code", icon="code")
        self.save_path = widgets.Text(value=f"{base.name or 'job'}.json", description="File",
                                      layout=widgets.Layout(width="320px"))
        self.save_button = widgets.Button(description="Save", icon="save")
        self.validate_button.on_click(lambda _: self.validate())
        self.plan_button.on_click(lambda _: self.plan())
        self.run_button.on_click(lambda _: self.run())
        self.code_button.on_click(lambda _: self.show_code())
        self.save_button.on_click(lambda _: self.save())
        self.status = widgets.HTML("")
        self.plan_view = widgets.HTML("")
        self.code_view = widgets.HTML("")
        self.run_box = widgets.VBox()
        self.children = [
            widgets.HBox([self.name_text, self.header_error]),
            self.tabs,
            widgets.HBox([self.validate_button, self.plan_button, self.run_button, self.code_button,
                          self.save_path, self.save_button]),
            self.status, self.plan_view, self.code_view, self.run_box,
        ]
        self.add_class("bytenite-nb-builder")

    def _repr_mimebundle_(self, **kwargs):
        # Where widgets do not render (an executed notebook), one line says what the job is.
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            try:
                spec = self.job.to_dict()
                text = (f"JobBuilder: {spec.get('name') or 'job'}: {spec.get('dataSource')} -> "
                        f"{spec.get('partitioner', 'passthrough')} -> {spec.get('app')} -> "
                        f"{spec.get('assembler', 'passthrough')} -> {spec.get('dataDestination')}")
            except Exception as exc:
                text = f"JobBuilder ({type(exc).__name__}: {exc})"
            bundle["text/plain"] = text
        return bundle

    # -- pieces -------------------------------------------------------------------------------

    @property
    def namespace(self) -> dict:
        return self._namespace if self._namespace is not None else _user_namespace()

    def _touch(self, part: str) -> None:
        if not self._quiet:
            self._touched.add(part)

    def _show_location(self, value: Any, text: widgets.Text, note: widgets.HTML) -> None:
        self._quiet = True
        try:
            if value is None:
                text.value = ""
            elif isinstance(value, str):
                text.value = value
            else:
                try:
                    loc = parse_location(value, field="", base_dir=self._base.base_dir)
                    text.value = loc.url or ""
                except ByteniteNBError:
                    text.value = ""
                spec = value.to_spec() if hasattr(value, "to_spec") else value
                note.value = (f'<span style="color:#666">as given: <code>{html.escape(json.dumps(spec, default=str))}'
                              "</code> (editing the URL replaces it)</span>")
        finally:
            self._quiet = False

    def _source_changed(self, change) -> None:
        if self._quiet:
            return
        self._touch("source")
        self.source_note.value = ""
        if change["new"].strip():
            self.list_source()

    # components

    def _setup_component(self, kind: str) -> None:
        dropdown: widgets.Dropdown = getattr(self, kind)
        reg = registry.REGISTRIES[kind]
        current = getattr(self._base, kind)
        shown = current if current is not None else self._template_component(kind) or "passthrough"
        options = [(name, name) for name in reg.names()]
        if not (isinstance(shown, str) and shown in reg):
            options.append((shown if isinstance(shown, str) else _component_spec(shown), shown))
        self._quiet = True
        dropdown.options = options
        dropdown.value = shown
        self._quiet = False
        self._component_form(kind, self._base.params.get(kind, {}))
        dropdown.observe(lambda c, kind=kind: self._component_changed(kind), names="value")

    def _template_component(self, kind: str) -> Any:
        try:
            return self._base._component(kind) if self._base.template_id else None
        except ByteniteNBError:
            return None

    def _component_changed(self, kind: str) -> None:
        if self._quiet:
            return
        self._touch(kind)
        self._component_form(kind, {})

    def _component_form(self, kind: str, params: dict) -> None:
        value = getattr(self, kind).value
        schema, doc = None, ""
        try:
            if isinstance(value, str) and value in registry.REGISTRIES[kind]:
                comp = registry.REGISTRIES[kind].get(value)
                schema, doc = comp.schema, comp.summary
            else:
                obj = registry.resolve(kind, value, base_dir=self._base.base_dir)
                schema, doc = obj.schema, plain_text(inspect.getdoc(obj))
        except Exception as exc:
            doc = f"cannot load it here: {exc}"
        form = SchemaForm(schema, params, prefix=f"params.{kind}")
        setattr(self, f"{kind}_form", form)
        getattr(self, f"{kind}_box").children = [form]
        getattr(self, f"{kind}_doc").value = f'<span style="color:#444">{html.escape(doc)}</span>'

    # app

    def _setup_app(self) -> None:
        spec = self._base.app
        if spec is None and self._base.template_id:
            spec = self._template_component("app")
        kind, main = self._app_kind_of(spec)
        self._quiet = True
        try:
            self.app_registered.options = registry.apps.names()
            functions = app_functions(self.namespace)
            options = list(functions.items())
            if kind == "function" and main not in functions.values():
                options.append((getattr(main, "__name__", repr(main)), main))
            self.app_function.options = options
            if kind == "registered" and main not in registry.apps:
                self.app_registered.options = [*registry.apps.names(), main]
            self.app_kind.value = kind
            if kind == "registered":
                self.app_registered.value = main
            elif kind == "function":
                self.app_function.value = main
            elif kind == "json":
                self.app_json.value = "" if spec is None else json.dumps(main, indent=1, default=str)
            self._app_inputs(kind, spec if kind in self.runtime_schemas else None)
        finally:
            self._quiet = False
        self._app_original = spec
        self._app_form(self._base.params.get("app", {}))
        self.app_kind.observe(self._app_kind_changed, names="value")
        for w in (self.app_registered, self.app_function, self.app_json):
            w.observe(self._app_changed, names="value")

    def _app_kind_of(self, spec: Any) -> tuple[str, Any]:
        from ..apps import App, runtimes

        if spec is None:
            return "registered", "identity"
        if isinstance(spec, str):
            return "registered", spec
        if isinstance(spec, App):
            return "json", spec.to_spec()
        if callable(spec):
            return "function", spec
        if isinstance(spec, dict):
            kind = runtime_kind(spec, runtimes())
            if kind in self.runtime_schemas:
                return kind, spec
        return "json", spec

    def _app_inputs(self, kind: str, spec: dict | None = None) -> None:
        """Show the input of ``kind``: a runtime's form (holding ``spec``), a dropdown or a JSON box."""
        if kind == "registered":
            self.app_input.children = [self.app_registered]
        elif kind == "function":
            self.app_input.children = [self.app_function]
        elif kind == "json":
            self.app_input.children = [self.app_json]
        else:
            schema = self.runtime_schemas[kind]
            self.app_spec_form = SchemaForm(schema, spec or {}, prefix="app", on_change=self._app_spec_changed)
            self.app_spec_doc.value = f'<span style="color:#444">{html.escape(plain_text(schema.get("description")))}</span>'
            self.app_input.children = [self.app_spec_doc, self.app_spec_form]

    def _app_kind_changed(self, change) -> None:
        if self._quiet:
            return
        self._touch("app")
        self._app_inputs(change["new"])
        self._app_form({})

    def _app_changed(self, change) -> None:
        if self._quiet:
            return
        self._touch("app")
        self._app_form({})

    def _app_spec_changed(self) -> None:
        """A field of the runtime's form changed: the params form follows the app it now names."""
        self._touch("app")
        self._app_form({}, keep_if_same=True)

    def _app_spec(self) -> Any:
        """The app as the job will say it (the original object when untouched)."""
        if "app" not in self._touched:
            return self._app_original
        kind = self.app_kind.value
        if kind == "registered":
            return self.app_registered.value
        if kind == "function":
            return self.app_function.value
        if kind == "json":
            text = self.app_json.value.strip()
            if not text:
                return None
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise JobValidationError(FieldError("app", f"not valid JSON: {exc.msg} at column {exc.colno}"))
        parse_errors = self.app_spec_form._parse_errors()
        if parse_errors:
            raise JobValidationError(parse_errors)
        return self.app_spec_form.value or None

    def _app_form(self, params: dict, *, keep_if_same: bool = False) -> None:
        """The params form of the app named now (kept as it is when ``keep_if_same``
        and the app's params schema did not change)."""
        schema, doc = None, ""
        try:
            spec = self._app_spec()
        except JobValidationError:
            spec = None
        if spec is not None:
            try:
                app = registry.resolve("app", spec, base_dir=self._base.base_dir)
                schema = app.schema
                if schema is None and callable(spec):
                    schema = getattr(spec, "schema", None)  # a function may carry its params schema
                target = getattr(app, "fn", None) if callable(getattr(app, "fn", None)) else app
                doc = plain_text(inspect.getdoc(target)).split("\n\n", 1)[0]
            except Exception as exc:
                doc = f"not resolved yet: {exc}"
        self.app_doc.value = f'<span style="color:#444">{html.escape(doc)}</span>'
        if keep_if_same and (schema if isinstance(schema, dict) else {"type": "object"}) == self.app_form.schema:
            return
        self.app_form = SchemaForm(schema, params, prefix="params.app")
        self.app_box.children = [self.app_form]

    # -- the job ------------------------------------------------------------------------------

    @property
    def job(self) -> Job:
        """The job as configured now."""
        base = self._base
        source = self.source_url.value.strip() or None if "source" in self._touched else base.source
        destination = (self.destination_url.value.strip() or None) if "destination" in self._touched \
            else base.destination
        partitioner = self.partitioner.value if "partitioner" in self._touched else base.partitioner
        assembler = self.assembler.value if "assembler" in self._touched else base.assembler
        name = (self.name_text.value.strip() or None) if "name" in self._touched else base.name
        params = {"partitioner": self.partitioner_form.value, "app": self.app_form.value,
                  "assembler": self.assembler_form.value}
        return Job(source=source, partitioner=partitioner, app=self._app_spec(), assembler=assembler,
                   destination=destination, params=params, config=self.config_form.value, name=name,
                   id=base.id, description=base.description, template_id=base.template_id,
                   storage_options=base.storage_options, base_dir=base.base_dir, extra=base.extra)

    @property
    def run_kwargs(self) -> dict:
        """Where Plan and Run send the job (``client=``, ``scheduler=`` or ``workers=``)."""
        mode = self.cluster_mode.value
        if mode == "client":
            return {"client": self._client}
        if mode == "local":
            return {"workers": max(1, self.cluster_workers.value)}
        if mode == "address":
            return {"scheduler": self.cluster_address.value.strip()}
        if mode == "sync":
            return {"scheduler": "sync"}
        return {}

    # -- actions ------------------------------------------------------------------------------

    def list_source(self) -> list:
        """List what the source URL matches and preview its first file."""
        self.sections["Source"].show([])
        self.source_listing.value = ""
        self.source_preview.children = []
        url = self.source_url.value.strip()
        if not url:
            return []
        try:
            spec = url if "source" in self._touched or self._base.source is None else self._base.source
            location = parse_location(spec, field="dataSource", base_dir=self._base.base_dir,
                                      storage_options=self._base.storage_options)
            files = list_source(location)
        except ByteniteNBError as exc:
            self.sections["Source"].show([str(exc)])
            return []
        total = sum(f.size or 0 for f in files)
        rows = "".join(f"<tr><td><code>{html.escape(f.name)}</code></td><td>{size_text(f.size)}</td></tr>"
                       for f in files[:LISTED_FILES])
        more = f"<div>... {len(files) - LISTED_FILES} more</div>" if len(files) > LISTED_FILES else ""
        self.source_listing.value = (f"<div><b>{len(files)}</b> file(s), {size_text(total)} in all</div>"
                                     f"<table>{rows}</table>{more}")
        if files:
            first = files[0]
            self.source_preview.children = [
                widgets.HTML(f"<b>{html.escape(first.name)}</b>"),
                preview_widget({"name": first.name, "url": first.url, "size": first.size},
                               location.storage_options, text_limit=1024, rows=10),
            ]
        return files

    def _route_errors(self, errors: list[FieldError]) -> None:
        """Show each error next to what it names; mark the tabs that have some."""
        buckets: dict[str, list[FieldError]] = {title: [] for title in self.sections}
        header: list[str] = []
        forms = {"params.partitioner": ("Partitioner", self.partitioner_form),
                 "params.app": ("App", self.app_form), "params.assembler": ("Assembler", self.assembler_form),
                 "config": ("Config", self.config_form)}
        if self.app_kind.value in self.runtime_schemas:
            forms["app"] = ("App", self.app_spec_form)  # next to the runtime form's fields
        form_errors: dict[str, list[FieldError]] = {k: [] for k in forms}
        for err in errors:
            path = err.field
            prefix = next((p for p in forms if path == p or path.startswith(p + ".") or path.startswith(p + "[")),
                          None)
            if prefix:
                form_errors[prefix].append(err)
                buckets[forms[prefix][0]].append(err)
                continue
            head = path.split(".", 1)[0].split("[", 1)[0]
            title = {"dataSource": "Source", "dataDestination": "Destination", "partitioner": "Partitioner",
                     "app": "App", "assembler": "Assembler", "config": "Config"}.get(head)
            if title:
                buckets[title].append(err)
            else:
                header.append(str(err))
        for prefix, (title, form) in forms.items():
            form.show_errors(form_errors[prefix])
        for title, section in self.sections.items():
            direct = [str(e) for e in buckets[title] if not any(e in form_errors[p] for p in forms)]
            section.show(direct)
        self.header_error.value = error_html(header)
        for i, title in enumerate(self.sections):
            self.tabs.set_title(i, f"{title} (!)" if buckets[title] else title)

    def _say(self, text: str, ok: bool = True) -> None:
        colour = "#2e7d32" if ok else "#b00020"
        self.status.value = f'<div style="color:{colour};white-space:pre-wrap">{html.escape(text)}</div>'

    def validate(self, *, check_storage: bool = True) -> list[FieldError]:
        """Check the whole job (storage too); show every error inline; return them."""
        try:
            job = self.job
            job.validate(check_storage=check_storage)
        except JobValidationError as exc:
            errors = exc.errors
        else:
            errors = []
        self._route_errors(errors)
        if errors:
            self._say(f"{len(errors)} problem(s):\n" + "\n".join(f"  - {e}" for e in errors), ok=False)
        else:
            self._say("valid")
        return errors

    def plan(self) -> list | None:
        """Plan the job (a Dask task) and show the chunk count, sizes and the first chunks."""
        self.plan_view.value = ""
        if self.validate():
            return None
        try:
            refs = self.job.plan(**self.run_kwargs)
        except ByteniteNBError as exc:
            self._say(str(exc), ok=False)
            return None
        self.plan_result = refs
        self.plan_view.value = plan_html(refs)
        self._say(f"planned: {len(refs)} chunk(s)")
        return refs

    def run(self):
        """Start the job in the background; show its progress; return the handle."""
        if self.validate():
            return None
        try:
            handle = self.job.submit(**self.run_kwargs)
        except ByteniteNBError as exc:
            self._say(str(exc), ok=False)
            return None
        from .progress import JobProgress

        self.handle = handle
        self.progress = JobProgress(handle)
        self.run_box.children = [self.progress]
        self._say(f"started {handle.job_id}")
        return handle

    def code(self, *, run: bool = True) -> str:
        """The Python code that makes (and, with ``run``, starts) the same job."""
        return job_code(self.job, self.namespace, self.run_kwargs if run else None)

    def show_code(self) -> str:
        text = self.code()
        self.code_view.value = f"<pre>{html.escape(text)}</pre>"
        return text

    def save(self, path: str | None = None) -> str | None:
        """Write the job file (JSON, or YAML for ``.yaml``); return its path."""
        path = path or self.save_path.value.strip()
        if not path:
            self._say("give a file name to save the job to", ok=False)
            return None
        try:
            job = self.job
            job.save(path)
        except (ByteniteNBError, OSError) as exc:
            self._say(f"cannot save {path}: {exc}", ok=False)
            return None
        note = ""
        if callable(job.app) and not isinstance(job.app, str):
            note = (f"\nnote: the app is the function {getattr(job.app, '__name__', '?')} of this notebook; "
                    "the job file names it as module:function, which only this kernel can load")
        self._say(f"saved {os.path.abspath(path)}{note}")
        return path


def plan_html(refs: list) -> str:
    """Chunk count, sizes and the first chunks of a plan."""
    sizes = [r.size for r in refs if r.size is not None]
    head = f"<b>{len(refs)}</b> chunk(s)"
    if sizes:
        head += f", {size_text(sum(sizes))} in all, {size_text(min(sizes))} to {size_text(max(sizes))} each"
    rows = "".join(f"<tr><td>{r.index}</td><td>{size_text(r.size)}</td><td><code>{html.escape(r.describe())}"
                   "</code></td></tr>" for r in refs[:PLANNED_CHUNKS_SHOWN])
    more = f"<div>... {len(refs) - PLANNED_CHUNKS_SHOWN} more</div>" if len(refs) > PLANNED_CHUNKS_SHOWN else ""
    return (f"<div>{head}</div><table><thead><tr><th>chunk</th><th>size</th><th>covers</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{more}")


def _literal(value: Any, namespace: dict) -> str:
    """Python source for a value of a job: a name for a notebook's own objects."""
    if callable(value) and not isinstance(value, str):
        name = getattr(value, "__name__", None)
        if name and namespace.get(name) is value:
            return name
        return repr(_component_spec(value))
    return pprint.pformat(value, indent=1, width=88, sort_dicts=False)


def job_code(job: Job, namespace: dict | None = None, run_kwargs: dict | None = None) -> str:
    """Python code that builds ``job`` (and starts it, given ``run_kwargs``).

    >>> print(job_code(Job(source="in.txt", app="identity", destination="out/")))
    import bytenite_nb as bn
    <BLANKLINE>
    job = bn.Job(
        source='in.txt',
        app='identity',
        destination='out/',
    )
    """
    namespace = namespace or {}
    args = []
    for key, value in (("source", job.source), ("partitioner", job.partitioner), ("app", job.app),
                       ("assembler", job.assembler), ("destination", job.destination)):
        if value is not None:
            if hasattr(value, "to_spec") and not callable(value):
                value = value.to_spec()
            args.append((key, value))
    params = {k: v for k, v in job.params.items() if v}
    if params:
        args.append(("params", params))
    if job.user_config:
        args.append(("config", job.user_config))
    # Relative paths resolve against base_dir, which is the kernel's folder unless said otherwise.
    base_dir = job.base_dir if job.base_dir and job.base_dir != os.getcwd() else None
    for key, value in (("name", job.name), ("id", job.id), ("description", job.description),
                       ("template_id", job.template_id), ("base_dir", base_dir)):
        if value:
            args.append((key, value))
    from ..redact import drop_secrets

    options = drop_secrets(job.storage_options)
    if options:
        args.append(("storage_options", options))
    if job.extra:
        args.append(("extra", job.extra))
    lines = ["import bytenite_nb as bn", "", "job = bn.Job("]
    for key, value in args:
        text = _literal(value, namespace).replace("\n", "\n    ")
        lines.append(f"    {key}={text},")
    lines.append(")")
    if run_kwargs is not None:
        call = ", ".join(f"{k}={'client' if k == 'client' else repr(v)}" for k, v in run_kwargs.items())
        lines += [f"handle = job.submit({call})", "handle"]
    return "\n".join(lines)
