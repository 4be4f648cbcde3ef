"""The Partitioner and Assembler tabs: which component, what it does, and a
form for its params generated from its JSON Schema.

The dropdown offers the registered components, plus the job's own when it
names something else (a tag, a folder, a class); picking another one starts
its params afresh.

>>> section = ComponentSection("partitioner", Job(partitioner="split-lines",
...                                               params={"partitioner": {"lines_per_chunk": 10}}))
>>> section.choice.value, section.params
('split-lines', {'lines_per_chunk': 10})
>>> section.choice.value = "files"
>>> section.value, section.params
('files', {})
"""

from __future__ import annotations

import inspect
from typing import Any

import ipywidgets as widgets

from ... import registry
from ...job import Job, component_spec
from ...plaintext import plain_text
from ..forms import SchemaForm
from .sections import Section, description_html, from_template


class ComponentSection(Section):
    """The tab of the job's ``kind``: ``"partitioner"`` or ``"assembler"``."""

    def __init__(self, kind: str, job: Job):
        self.kind = kind
        self.title, self.fields = kind.capitalize(), (kind,)
        self.given = getattr(job, kind)
        # where the component's path or tag is looked for: the template's folders for a template's
        self.base_dir, self.near = job.component_dir(kind), job.component_near(kind)
        self.choice = widgets.Dropdown(description=self.title, layout=widgets.Layout(width="420px"))
        self.doc = widgets.HTML("")
        self.form = SchemaForm(None, prefix=f"params.{kind}")
        self.form_box = widgets.VBox([self.form])
        super().__init__([self.choice, self.doc, self.form_box])
        shown = self.given if self.given is not None else from_template(job, kind) or "passthrough"
        with self.quietly():
            self.choice.options = component_options(kind, shown)
            self.choice.value = shown
        self._show_form(job.params.get(kind, {}))
        self.on_edit(self.choice, lambda: self._show_form({}))

    def _show_form(self, params: dict) -> None:
        """The description and the params form of the component chosen now, holding ``params``."""
        schema, doc = describe_component(self.kind, self.choice.value, base_dir=self.base_dir, near=self.near)
        self.form = SchemaForm(schema, params, prefix=f"params.{self.kind}")
        self.form_box.children = [self.form]
        self.doc.value = description_html(doc)

    @property
    def value(self) -> Any:
        """The component as the job will say it: the one picked, or the job's own."""
        return self.choice.value if self.touched else self.given

    @property
    def params(self) -> dict:
        return self.form.value

    def forms(self) -> dict[str, SchemaForm]:
        return {f"params.{self.kind}": self.form}


def component_options(kind: str, shown: Any) -> list[tuple[str, Any]]:
    """The dropdown's (label, value) pairs: every registered ``kind``, and ``shown``
    when it is not one of them (labelled as a job file would write it).

    >>> component_options("assembler", "tests.helpers:Joiner")[-1]
    ('tests.helpers:Joiner', 'tests.helpers:Joiner')
    """
    known = registry.REGISTRIES[kind]
    options = [(name, name) for name in known.names()]
    if not (isinstance(shown, str) and shown in known):
        options.append((shown if isinstance(shown, str) else component_spec(shown), shown))
    return options


def describe_component(kind: str, value: Any, *, base_dir: str | None,
                       near: list[str] | None = None) -> tuple[dict | None, str]:
    """The params schema and the description of the component ``value`` names (no
    schema, and why, when it cannot be loaded here).

    >>> schema, doc = describe_component("partitioner", "no-such-thing", base_dir=".")
    >>> schema, doc.startswith("cannot load it here: ")
    (None, True)
    """
    known = registry.REGISTRIES[kind]
    try:
        if isinstance(value, str) and value in known:
            entry = known.get(value)
            return entry.schema, entry.summary
        component = registry.resolve(kind, value, base_dir=base_dir, near=near)
        return component.schema, plain_text(inspect.getdoc(component))
    except Exception as exc:  # whatever a component's loading raises, the tab says it and stays usable
        return None, f"cannot load it here: {exc}"
