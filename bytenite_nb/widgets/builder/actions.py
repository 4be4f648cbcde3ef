"""The buttons under the tabs and what they answer.

Validate checks the whole job and shows every error next to what it names;
Plan runs the partitioner (a Dask task) and shows the chunk count, their
sizes and a page of chunks (Previous, Next, or from a chunk number: the
widget holds one page, whatever the plan's size); Run starts the job in the background under a
progress widget; Show code prints the Python that makes the same job; Save
writes the job file. Every answer goes to the status line under the buttons.
"""

from __future__ import annotations

import html
import os
from typing import Any, Callable, Protocol

import ipywidgets as widgets

from ...exceptions import ByteniteNBError, FieldError, JobValidationError
from ...job import Job
from ..preview import size_text

PLANNED_CHUNKS_SHOWN = 10


class JobForm(Protocol):
    """What the actions need of the form above them (the :class:`JobBuilder`)."""

    @property
    def job(self) -> Job: ...

    @property
    def run_kwargs(self) -> dict: ...

    def show_errors(self, errors: list[FieldError]) -> None: ...

    def code(self, *, run: bool = True) -> str: ...


class Actions:
    """The action buttons of ``form``, the status line and the views they fill;
    ``save_name`` is the file name Save offers.

    :attr:`plan_result` holds the last plan's chunks, :attr:`handle` the last job
    started and :attr:`progress` its progress widget.
    """

    def __init__(self, form: JobForm, save_name: str = "job.json"):
        self.form = form
        self.plan_result: list | None = None
        self.handle = None
        self.progress = None
        self.validate_button = widgets.Button(description="Validate", icon="check")
        self.plan_button = widgets.Button(description="Plan", icon="th-list")
        self.run_button = widgets.Button(description="Run", icon="play", button_style="primary")
        self.code_button = widgets.Button(description="Show code", icon="code")
        self.save_path = widgets.Text(value=save_name, description="File", layout=widgets.Layout(width="320px"))
        self.save_button = widgets.Button(description="Save", icon="save")
        for button, action in ((self.validate_button, self.validate), (self.plan_button, self.plan),
                               (self.run_button, self.run), (self.code_button, self.show_code),
                               (self.save_button, self.save)):
            button.on_click(lambda _, action=action: action())
        self.status = widgets.HTML("")
        self.plan_view = widgets.HTML("")
        self.plan_offset = 0
        self.previous_button = widgets.Button(description="Previous", icon="chevron-left")
        self.next_button = widgets.Button(description="Next", icon="chevron-right")
        self.from_chunk = widgets.BoundedIntText(value=0, min=0, max=0, description="From chunk",
                                                 layout=widgets.Layout(width="200px"))
        self.previous_button.on_click(lambda _: self.show_plan_page(self.plan_offset - PLANNED_CHUNKS_SHOWN))
        self.next_button.on_click(lambda _: self.show_plan_page(self.plan_offset + PLANNED_CHUNKS_SHOWN))
        self.from_chunk.observe(lambda change: self.show_plan_page(change["new"]), names="value")
        self.plan_pager = widgets.HBox([self.previous_button, self.next_button, self.from_chunk],
                                       layout=widgets.Layout(display="none"))
        self.code_view = widgets.HTML("")
        self.run_box = widgets.VBox()
        buttons = widgets.HBox([self.validate_button, self.plan_button, self.run_button, self.code_button,
                                self.save_path, self.save_button])
        self.box = widgets.VBox([buttons, self.status, self.plan_view, self.plan_pager, self.code_view,
                                 self.run_box])

    def say(self, text: str, ok: bool = True) -> None:
        """Put ``text`` on the status line (red unless ``ok``)."""
        colour = "#2e7d32" if ok else "#b00020"
        self.status.value = f'<div style="color:{colour};white-space:pre-wrap">{html.escape(text)}</div>'

    def validate(self, *, check_storage: bool = True) -> list[FieldError]:
        """Check the whole job (storage too); show every error inline; return them."""
        try:
            self.form.job.validate(check_storage=check_storage)
        except JobValidationError as exc:
            errors = exc.errors
        else:
            errors = []
        self.form.show_errors(errors)
        if errors:
            self.say(f"{len(errors)} problem(s):\n" + "\n".join(f"  - {e}" for e in errors), ok=False)
        else:
            self.say("valid")
        return errors

    def plan(self) -> list | None:
        """Plan the job and show the chunk count, sizes and the first page of chunks (None: it does not validate)."""
        self.plan_view.value = ""
        self.plan_pager.layout.display = "none"
        refs = self._when_valid(Job.plan)
        if refs is None:
            return None
        self.plan_result = refs
        self.from_chunk.max = max(0, len(refs) - 1)
        self.show_plan_page(0)
        self.plan_pager.layout.display = "flex" if len(refs) > PLANNED_CHUNKS_SHOWN else "none"
        self.say(f"planned: {len(refs)} chunk(s)")
        return refs

    def show_plan_page(self, offset: int) -> None:
        """Show the page of the last plan that starts at its ``offset``-th chunk (kept within the plan)."""
        refs = self.plan_result or []
        self.plan_offset = max(0, min(offset, len(refs) - 1))
        self.plan_view.value = plan_html(refs, self.plan_offset)
        self.previous_button.disabled = self.plan_offset == 0
        self.next_button.disabled = self.plan_offset + PLANNED_CHUNKS_SHOWN >= len(refs)
        if self.from_chunk.value != self.plan_offset:
            self.from_chunk.value = self.plan_offset  # calls back here with the same offset: nothing changes

    def run(self):
        """Start the job in the background and show its progress; return its handle
        (None: it does not validate, or cannot start)."""
        handle = self._when_valid(Job.submit)
        if handle is None:
            return None
        from ..progress import JobProgress

        self.handle = handle
        self.progress = JobProgress(handle)
        self.run_box.children = [self.progress]
        self.say(f"started {handle.job_id}")
        return handle

    def _when_valid(self, step: Callable[..., Any]) -> Any:
        """``step(job, **run_kwargs)`` once the job validates (None when it does not or the
        step fails: the status line and the tabs say why)."""
        if self.validate():
            return None
        try:
            return step(self.form.job, **self.form.run_kwargs)
        except ByteniteNBError as exc:
            self.say(str(exc), ok=False)
            return None

    def show_code(self) -> str:
        """Show (and return) the Python code that makes and starts the same job."""
        text = self.form.code()
        self.code_view.value = f"<pre>{html.escape(text)}</pre>"
        return text

    def save(self, path: str | None = None) -> str | None:
        """Write the job file to ``path`` (default: the File box; YAML for ``.yaml``); return its path."""
        path = path or self.save_path.value.strip()
        if not path:
            self.say("give a file name to save the job to", ok=False)
            return None
        try:
            job = self.form.job
            job.save(path)
        except (ByteniteNBError, OSError) as exc:
            self.say(f"cannot save {path}: {exc}", ok=False)
            return None
        note = ""
        if callable(job.app) and not isinstance(job.app, str):
            note = (f"\nnote: the app is the function {getattr(job.app, '__name__', '?')} of this notebook; "
                    "the job file names it as module:function, which only this kernel can load")
        self.say(f"saved {os.path.abspath(path)}{note}")
        return path


def plan_html(refs: list, offset: int = 0) -> str:
    """Chunk count, sizes, :data:`PLANNED_CHUNKS_SHOWN` chunks of a plan from its
    ``offset``-th with what each covers, and the first rows of its first chunk
    (see :func:`bytenite_nb.plan.plan_html`).

    >>> from bytenite_nb.partitioners import ChunkRef
    >>> refs = [ChunkRef(url="file:///d/in.txt", start=0, end=4, size=4, index=0),
    ...         ChunkRef(url="file:///d/in.txt", start=4, end=10, size=6, index=1)]
    >>> plan_html(refs).split("<table>")[0]
    '<div><b>2</b> chunk(s), 10 B in all, 4 B to 6 B each</div>'
    """
    from ...plan import plan_html as html_of_plan

    return html_of_plan(refs, getattr(refs, "sample", None), shown=PLANNED_CHUNKS_SHOWN, offset=offset)
