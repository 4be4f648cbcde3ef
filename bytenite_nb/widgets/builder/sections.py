"""What every part of the builder has: its widgets, an inline error line, and
whether the user has edited it.

A part the user has not edited gives back the job's own value, exactly as
given (a ByteNite descriptor, an app object, a class), so that
``JobBuilder(job=j).job`` is ``j`` again; an edited part gives back what its
widgets say.

>>> line = NameLine("upper")
>>> line.value, line.touched
('upper', False)
>>> line.text.value = "  shout "
>>> line.value, line.touched
('shout', True)
"""

from __future__ import annotations

import html
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import ipywidgets as widgets

from ...exceptions import ByteniteNBError, FieldError
from ...job import Job
from ..forms import SchemaForm, error_html


def under(field: str, prefix: str) -> bool:
    """Whether the field an error names is ``prefix`` or lies inside it.

    >>> under("params.app.level", "params.app"), under("app[0]", "app"), under("params.application", "params.app")
    (True, True, False)
    """
    return field == prefix or field.startswith((prefix + ".", prefix + "["))


def description_html(text: str) -> str:
    """A component's or a runtime's description, shown as text (never as markup).

    >>> description_html("splits <lines>")
    '<span style="color:#444">splits &lt;lines&gt;</span>'
    """
    return f'<span style="color:#444">{html.escape(text)}</span>'


def from_template(job: Job, kind: str) -> Any:
    """What the job's template names for ``kind`` (None without a template, or
    when the template cannot be read: validation says why).

    >>> from_template(Job(app="identity"), "app") is None
    True
    """
    if not job.template_id:
        return None
    try:
        return (job.template or {}).get(kind)
    except ByteniteNBError:
        return None


class Section:
    """A part of the builder: a box of widgets ending in an error line.

    Subclasses set :attr:`title` (the tab's title), :attr:`fields` (the job's
    top-level fields whose errors show here) and, where they hold forms,
    :meth:`forms`.
    """

    title = ""
    fields: tuple[str, ...] = ()

    def __init__(self, children: list[widgets.Widget]):
        self.error = widgets.HTML("")
        self.box = widgets.VBox([*children, self.error], layout=widgets.Layout(padding="6px"))
        self.touched = False
        self._quiet = False

    # -- edits ---------------------------------------------------------------------------

    @contextmanager
    def quietly(self) -> Iterator[None]:
        """Set widgets to show the job's value: changes made meanwhile are not the user's edits."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def on_edit(self, widget: widgets.Widget, then: Callable[[], None] | None = None) -> None:
        """When the user changes ``widget``'s value: mark the section edited, then call ``then``."""

        def changed(_change) -> None:
            if self._quiet:
                return
            self.touched = True
            if then is not None:
                then()

        widget.observe(changed, names="value")

    # -- errors --------------------------------------------------------------------------

    def forms(self) -> dict[str, SchemaForm]:
        """The forms shown now, by the field prefix of the errors each shows next to its fields."""
        return {}

    def claims(self, field: str) -> bool:
        """Whether an error naming ``field`` belongs to this section."""
        head = field.split(".", 1)[0].split("[", 1)[0]
        return head in self.fields or any(under(field, prefix) for prefix in self.forms())

    def show_errors(self, errors: list[FieldError]) -> None:
        """Show each error in the form whose fields it names; the others on the error line."""
        forms = self.forms()
        for prefix, form in forms.items():
            form.show_errors([e for e in errors if under(e.field, prefix)])
        self.show([str(e) for e in errors if not any(under(e.field, prefix) for prefix in forms)])

    def show(self, messages: list[str]) -> None:
        """Put ``messages`` on the error line (none: clear it)."""
        self.error.value = error_html(messages)


class NameLine(Section):
    """The job's name, above the tabs; errors that belong to no tab show beside it."""

    title = "Name"
    fields = ("name",)

    def __init__(self, name: str | None):
        self.given = name
        self.text = widgets.Text(value=name or "", description="Name", placeholder="(from the app)",
                                 continuous_update=False)
        super().__init__([self.text])
        self.on_edit(self.text)

    @property
    def value(self) -> str | None:
        """The job's name as edited (None: named after its app)."""
        return (self.text.value.strip() or None) if self.touched else self.given
