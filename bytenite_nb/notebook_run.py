"""Notebooks as parameterized jobs: run one with papermill and record the run.

    bytenite-nb notebook run NB OUT [-p NAME VALUE]... [-r NAME VALUE]... [-y YAML] [-f FILE]
                                    [-k KERNEL] [--cwd DIR] [--id ID] [--timeout SECONDS] [--json]

``NB`` and ``OUT`` are paths or fsspec URLs (``s3://``, ``gs://``, ``az://``,
``memory://``...). The run is recorded in the job store (kind ``notebook``) with
its parameters, state, duration and, when a cell fails, which one. ``-p``
values are read as papermill reads them (``True``/``False``/``None``, integers
and floats, else text); ``-r`` keeps the text as it is. A parameter whose name
looks like a secret is refused: papermill writes parameters into the output
notebook, so secrets go to the notebook through the environment instead.

>>> parse_value("3"), parse_value("2.5"), parse_value("True"), parse_value("s3://b/x")
(3, 2.5, True, 's3://b/x')
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import click

from .exceptions import FieldError, JobFailed, JobValidationError
from .redact import is_secret_name, redact, redact_text

KIND = "notebook"


def parse_value(text: str) -> Any:
    """A ``-p`` value: ``True``, ``False``, ``None``, an int, a float, else the text."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass
class NotebookRun:
    """A finished run of a notebook: where it went and how it ended."""

    run_id: str
    notebook: str
    output: str
    state: str
    duration: float
    parameters: dict
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETE"

    def to_dict(self) -> dict:
        return redact(asdict(self))


def _secret_parameters(parameters: dict) -> list[FieldError]:
    return [FieldError(f"parameters.{name}", "looks like a secret; papermill writes parameters into the output "
                                             "notebook, so pass it to the notebook through an environment variable")
            for name in parameters if is_secret_name(str(name))]


def notebook_name(path: str) -> str:
    base = posixpath.basename(str(path).split("?", 1)[0]) or "notebook"
    return base[:-6] if base.endswith(".ipynb") else base


def run_notebook(notebook: str, output: str, parameters: dict | None = None, *, kernel: str | None = None,
                 cwd: str | None = None, run_id: str | None = None, execution_timeout: float | None = None,
                 progress_bar: bool = False, store=None) -> NotebookRun:
    """Execute ``notebook`` with papermill into ``output``, recording the run in the job store.

    ``cwd`` is the folder the notebook runs in (default: the notebook's own
    folder when it is local, like JupyterLab). Raises
    :class:`~bytenite_nb.exceptions.JobValidationError` for a bad notebook,
    kernel or parameter, :class:`~bytenite_nb.exceptions.JobFailed` (naming the
    failing cell) when a cell raises; the output notebook is written either way.

    For example, the word count job notebook, its output written to a bucket::

        run = run_notebook("notebooks/05_papermill_job.ipynb", "s3://runs/wc.ipynb", {"lines_per_chunk": 100})
    """
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    from . import store as st
    from .ids import new_job_id, valid_job_id
    from .papermill_io import register

    register()
    parameters = dict(parameters or {})
    errors = _secret_parameters(parameters)
    if run_id is not None and not valid_job_id(run_id):
        errors.append(FieldError("id", f"expected letters, digits, '.', '_' or '-' (max 128), got {run_id!r}"))
    local = "://" not in notebook or notebook.startswith("file://")
    local_path = notebook.split("://", 1)[-1]
    if local and not os.path.isfile(local_path):
        errors.append(FieldError("notebook", f"no such notebook: {notebook}"))
    if errors:
        raise JobValidationError(errors, notebook)
    if cwd is None and local:
        cwd = os.path.dirname(os.path.abspath(local_path))
    if "://" not in output:  # papermill's own handler writes local paths, into existing folders only
        output = os.path.abspath(output)
        os.makedirs(os.path.dirname(output), exist_ok=True)
    store = store or st.default_store()
    name = notebook_name(notebook)
    run_id = run_id or new_job_id(name)
    spec = {"notebook": notebook, "output": output, "parameters": parameters, "kernel": kernel, "cwd": cwd}
    store.create_job(run_id, name, spec, kind=KIND)
    store.set_state(run_id, st.RUNNING)
    started = time.time()
    error: str | None = None
    try:
        papermill.execute_notebook(notebook, output, parameters=parameters, kernel_name=kernel, cwd=cwd,
                                   progress_bar=progress_bar, log_output=False,
                                   execution_timeout=execution_timeout)
    except PapermillExecutionError as exc:
        number, first_line = _failed_cell(notebook, exc)
        error = (f"cell {number} ({first_line!r}) raised {exc.ename}: {exc.evalue}; the executed notebook, "
                 f"with the traceback, is at {redact_text(output)}")
        raise_as = JobFailed(f"notebook {name} failed ({run_id}): {error}")
    except NoSuchKernel as exc:
        error = f"no kernel named {exc.name!r} here (see `jupyter kernelspec list`)"
        raise_as = JobValidationError(FieldError("kernel", error), notebook)
    except FileNotFoundError as exc:
        error = f"not found: {redact_text(str(exc))}"
        raise_as = JobValidationError(FieldError("notebook", error), notebook)
    except Exception as exc:  # papermill, kernel and storage errors: said plainly, recorded
        error = f"{type(exc).__name__}: {redact_text(str(exc))}"
        raise_as = JobFailed(f"notebook {name} failed ({run_id}): {error}")
    duration = time.time() - started
    if error is not None:
        store.set_state(run_id, st.FAILED, error=error)
        raise raise_as
    run = NotebookRun(run_id, notebook, output, st.COMPLETE, duration, parameters)
    store.set_state(run_id, st.COMPLETE, result={"output": output, "duration": duration})
    return run


def _failed_cell(notebook: str, exc) -> tuple[Any, str]:
    """The failing cell as numbered in the user's notebook, and its first line."""
    import nbformat

    from .apps.notebook import _cell_label
    from .papermill_io import handler

    try:
        original = nbformat.reads(handler.read(notebook) if "://" in notebook else open(notebook).read(),
                                  as_version=4)
    except Exception:
        return exc.exec_count or "?", (exc.source or "").strip().split("\n", 1)[0][:80]
    return _cell_label(original, exc.cell_index, exc.source)


# -- the command ---------------------------------------------------------------------------


@click.group("notebook")
def notebook() -> None:
    """Run notebooks as parameterized jobs (papermill), recorded in the job store."""


@notebook.command("run")
@click.argument("notebook_path", metavar="NB")
@click.argument("output_path", metavar="OUT")
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter; VALUE is read as True/False/None, a number, or text.")
@click.option("-r", "--raw", "raw_parameters", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter kept as text.")
@click.option("-y", "--yaml", "yaml_text", help="Parameters as a YAML (or JSON) mapping.")
@click.option("-f", "--parameters-file", type=click.Path(exists=True, dir_okay=False),
              help="Parameters from a YAML or JSON file.")
@click.option("-k", "--kernel", help="Kernel to run the notebook with (default: the notebook's own).")
@click.option("--cwd", help="Folder to run the notebook in (default: the notebook's folder).")
@click.option("--id", "run_id", help="Id of the run in the job store.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds a cell may run.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def run_command(notebook_path, output_path, parameters, raw_parameters, yaml_text, parameters_file, kernel, cwd,
                run_id, timeout, as_json):
    """Execute notebook NB with papermill into OUT (paths or fsspec URLs)."""
    import yaml

    values: dict[str, Any] = {}
    for source, text in (("--parameters-file", open(parameters_file).read() if parameters_file else None),
                         ("--yaml", yaml_text)):
        if text is None:
            continue
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise JobValidationError(FieldError(source, f"not valid YAML: {exc}")) from exc
        if not isinstance(loaded, dict):
            raise JobValidationError(FieldError(source, "expected a mapping of parameter names to values"))
        values.update(loaded)
    values.update({name: parse_value(value) for name, value in parameters})
    values.update(dict(raw_parameters))
    result = run_notebook(notebook_path, output_path, values, kernel=kernel, cwd=cwd, run_id=run_id,
                          execution_timeout=timeout, progress_bar=sys.stderr.isatty())
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(f"{result.run_id} COMPLETE in {result.duration:.1f}s: {redact_text(result.output)}")
