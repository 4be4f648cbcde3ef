"""The job builder: the name line, a tab for every part of the job, and the
action buttons under them, put together.

>>> builder = JobBuilder(Job(source="in.txt", partitioner="split-lines", app="identity",
...                          assembler="concat", destination="out/"))
>>> builder.job.to_dict()["partitioner"]
'split-lines'
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ...exceptions import FieldError
from ...job import Job
from .actions import Actions
from .app import AppSection, kernel_namespace
from .codegen import job_code, job_summary
from .components import ComponentSection
from .locations import LocationSection, SourceSection
from .sections import NameLine, Section
from .settings import ClusterSection, ConfigSection


def _reach(owner: str, *names: str) -> tuple[property, ...]:
    """Read-only properties for ``names`` of one part of the builder: the tab
    ``owner`` of :attr:`JobBuilder.sections`, or its attribute ``owner``."""

    def part(builder: "JobBuilder") -> Any:
        return builder.sections[owner] if owner in builder.sections else getattr(builder, owner)

    return tuple(property(lambda builder, name=name: getattr(part(builder), name)) for name in names)


class JobBuilder(widgets.VBox):
    """Build, check, plan and run a job from a notebook, without writing its JSON.

    ``JobBuilder(job)`` starts from an existing job; :attr:`job` gives the
    configured :class:`~bytenite_nb.Job` back at any time
    (``JobBuilder(job=j).job.to_dict() == j.to_dict()``); :attr:`handle` is the
    last job started with Run. ``namespace`` is where function apps are looked
    for (default: the kernel's namespace); ``client`` a Dask client to plan
    and run on.

    Its parts: :attr:`name_line`, :attr:`sections` (the tabs, by title) and
    :attr:`actions` (the buttons and what they show).

    >>> builder = JobBuilder()
    >>> builder.source_url.value = "data/*.txt"
    >>> builder.job.to_dict()["dataSource"]
    'data/*.txt'
    """

    def __init__(self, job: Job | None = None, *, namespace: dict | None = None, client=None, **kwargs):
        super().__init__(**kwargs)
        self._given = job.copy() if job is not None else Job()
        self._namespace = namespace
        given = self._given
        self.name_line = NameLine(given.name)
        tabs: list[Section] = [
            SourceSection(given.source, base_dir=given.base_dir, storage_options=given.storage_options),
            ComponentSection("partitioner", given),
            AppSection(given, self.namespace),
            ComponentSection("assembler", given),
            LocationSection("Destination", "dataDestination", given.destination, base_dir=given.base_dir),
            ConfigSection(given),
            ClusterSection(client),
        ]
        self.sections: dict[str, Section] = {tab.title: tab for tab in tabs}
        self.tabs = widgets.Tab(children=[tab.box for tab in tabs], titles=[tab.title for tab in tabs])
        self.actions = Actions(self, save_name=f"{given.name or 'job'}.json")
        self.children = [self.name_line.box, self.tabs, self.actions.box]
        self.add_class("bytenite-nb-builder")

    def _repr_mimebundle_(self, **kwargs):
        # Where widgets do not render (an executed notebook), one line says what the job is.
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            try:
                bundle["text/plain"] = f"JobBuilder: {job_summary(self.job)}"
            except Exception as exc:
                bundle["text/plain"] = f"JobBuilder ({type(exc).__name__}: {exc})"
        return bundle

    # -- the job ------------------------------------------------------------------------------

    @property
    def namespace(self) -> dict:
        """Where the functions offered as apps, and named in the code, are found."""
        return self._namespace if self._namespace is not None else kernel_namespace()

    @property
    def job(self) -> Job:
        """The job as configured now."""
        given, tab = self._given, self.sections
        params = {kind: tab[kind.capitalize()].params for kind in ("partitioner", "app", "assembler")}
        return Job(source=tab["Source"].value, partitioner=tab["Partitioner"].value, app=tab["App"].value,
                   assembler=tab["Assembler"].value, destination=tab["Destination"].value, params=params,
                   config=tab["Config"].value, name=self.name_line.value, id=given.id,
                   description=given.description, template_id=given.template_id,
                   storage_options=given.storage_options, base_dir=given.base_dir, extra=given.extra)

    @property
    def run_kwargs(self) -> dict:
        """Where Plan and Run send the job (``client=``, ``scheduler=`` or ``workers=``)."""
        return self.sections["Cluster"].run_kwargs

    def show_errors(self, errors: list[FieldError]) -> None:
        """Show each error next to what it names, mark the tabs that have some, and
        put the errors no tab claims beside the name."""
        tabs = list(self.sections.values())
        for i, tab in enumerate(tabs):
            mine = [e for e in errors if tab.claims(e.field)]
            tab.show_errors(mine)
            self.tabs.set_title(i, f"{tab.title} (!)" if mine else tab.title)
        self.name_line.show_errors([e for e in errors if not any(tab.claims(e.field) for tab in tabs)])

    # -- what the buttons do ------------------------------------------------------------------

    def list_source(self) -> list:
        """List what the source URL matches and preview its first file."""
        return self.sections["Source"].list_files()

    def validate(self, *, check_storage: bool = True) -> list[FieldError]:
        """Check the whole job (storage too); show every error inline; return them."""
        return self.actions.validate(check_storage=check_storage)

    def plan(self) -> list | None:
        """Plan the job (a Dask task) and show the chunk count, sizes and the first page of chunks."""
        return self.actions.plan()

    def show_plan_page(self, offset: int) -> None:
        """Show the page of the last plan from its ``offset``-th chunk (as Previous, Next and From chunk do)."""
        self.actions.show_plan_page(offset)

    def run(self):
        """Start the job in the background; show its progress; return the handle."""
        return self.actions.run()

    def code(self, *, run: bool = True) -> str:
        """The Python code that makes (and, with ``run``, starts) the same job."""
        return job_code(self.job, self.namespace, self.run_kwargs if run else None)

    def show_code(self) -> str:
        """Show the code of :meth:`code` under the buttons; return it."""
        return self.actions.show_code()

    def save(self, path: str | None = None) -> str | None:
        """Write the job file (JSON, or YAML for ``.yaml``); return its path."""
        return self.actions.save(path)

    # -- the parts' widgets by the flat names notebooks use (builder.source_url, ...) ---------

    name_text, header_error = _reach("name_line", "text", "error")
    source_url, source_note, list_button, source_listing, source_preview = _reach(
        "Source", "url", "note", "list_button", "listing", "preview")
    partitioner, partitioner_doc, partitioner_form, partitioner_box = _reach(
        "Partitioner", "choice", "doc", "form", "form_box")
    app_kind, app_registered, app_function, app_json, app_spec_form, app_spec_doc, app_input = _reach(
        "App", "kind_buttons", "registered", "function", "json", "spec_form", "spec_doc", "input_box")
    app_doc, app_form, app_box, runtime_schemas = _reach("App", "doc", "form", "form_box", "runtime_schemas")
    assembler, assembler_doc, assembler_form, assembler_box = _reach(
        "Assembler", "choice", "doc", "form", "form_box")
    destination_url, destination_note = _reach("Destination", "url", "note")
    config_form = _reach("Config", "form")[0]
    cluster_mode, cluster_workers, cluster_address = _reach("Cluster", "mode", "workers", "address")
    validate_button, plan_button, run_button, code_button, save_path, save_button = _reach(
        "actions", "validate_button", "plan_button", "run_button", "code_button", "save_path", "save_button")
    status, plan_view, code_view, run_box, plan_result, handle, progress = _reach(
        "actions", "status", "plan_view", "code_view", "run_box", "plan_result", "handle", "progress")
    plan_pager, plan_previous, plan_next, plan_from_chunk = _reach(
        "actions", "plan_pager", "previous_button", "next_button", "from_chunk")
