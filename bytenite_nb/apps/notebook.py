"""``{"notebook": "path.ipynb"}``: a notebook run with papermill for every chunk.

On the worker, papermill executes the notebook in a fresh kernel, injecting
into its ``parameters`` cell:

- ``chunk_path``: the chunk's data (``TASK_DIR/data.bin``);
- ``results_dir``: where the notebook writes its result files;
- ``params``: the app params (without the ones whose names look like secrets);
- ``chunk_number``: 0..N-1;
- ``chunk_info``: what the chunk covers (``CHUNK_INFO``).

The kernel also gets the whole runtime contract as environment variables
(``TASK_DIR``, ``TASK_RESULTS_DIR``, ``APP_PARAMS``, ``CHUNK_NUMBER``...), which is
where a notebook reads a secret param: nothing secret is ever written into an
executed notebook. The executed notebook of each chunk is kept with the job's
records (``$BYTENITE_NB_HOME/records/<job id>/notebooks/chunk_0007.ipynb``, or
under ``BYTENITE_NB_RECORDS``, a URL every worker can write to), never in the
job's output. A failed cell fails the attempt with an error naming the cell.

Spec keys: ``notebook`` (a path, relative to the job file, or an fsspec URL),
``kernel`` (default: the notebook's own kernel, else ``python3``),
``schema`` (JSON Schema of the params), ``cwd`` (folder the kernel starts in;
default: the notebook's folder for a local notebook, else the task folder).

>>> NotebookApp("chunk.ipynb").to_spec()
{'notebook': 'chunk.ipynb'}
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from typing import Any

from .. import config as _config
from .. import supervision as control
from ..exceptions import AppError, FieldError
from ..redact import is_secret_name, redact_text
from ..storage import split_protocol
from .base import PARAMS_SCHEMA, App, TaskContext, runtime_schema

KERNEL_START_TIMEOUT = 120
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def records_root() -> str:
    """Where executed notebooks are kept: ``BYTENITE_NB_RECORDS`` or ``$BYTENITE_NB_HOME/records``."""
    return _config.records_url()


def executed_notebook_url(root: str, job_id: str, chunk_number: int) -> str:
    """The executed notebook of one chunk of one job.

    >>> executed_notebook_url("file:///r", "job-1", 7)
    'file:///r/job-1/notebooks/chunk_0007.ipynb'
    """
    return f"{root}/{job_id}/notebooks/chunk_{chunk_number:04d}.ipynb"


def executed_notebooks(job_id: str, root: str | None = None) -> list[str]:
    """The URLs of the executed notebooks a job left, in chunk order.

    >>> executed_notebooks("no-such-job")
    []
    """
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(f"{root or records_root()}/{job_id}/notebooks")
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    return sorted(fs.unstrip_protocol(n) for n in names if n.endswith(".ipynb"))


def injected_params(params: dict) -> dict:
    """The app params as written into the notebook: secret-looking names left out.

    >>> injected_params({"threshold": 3, "api_token": "x", "nested": {"password": "y", "n": 1}})
    {'threshold': 3, 'nested': {'n': 1}}
    """
    out = {}
    for key, value in params.items():
        if isinstance(key, str) and is_secret_name(key):
            continue
        out[key] = injected_params(value) if isinstance(value, dict) else value
    return out


def _cell_label(nb, cell_index: int, source: str) -> tuple[int, str]:
    """``(cell number in the user's notebook ``nb``, 1-based; first line of the cell's source)``.

    papermill counts the cell it injects for the parameters (right after the
    cell tagged ``parameters``, or first); the user's notebook does not have
    it, so cells after it are numbered one less.
    """
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    injected_at = tagged[0] + 1 if tagged else 0
    number = cell_index + (0 if cell_index > injected_at else 1)
    first = next((line.strip() for line in (source or "").splitlines() if line.strip()), "")
    return number, first[:80]


class NotebookApp(App):
    """Run a notebook with papermill on every chunk (see the module docs).

    >>> app = NotebookApp("apps/chunk_stats.ipynb", kernel="python3")
    >>> app.to_spec()
    {'notebook': 'apps/chunk_stats.ipynb', 'kernel': 'python3'}
    """

    runtime = "notebook"
    SPEC_SCHEMA = runtime_schema(
        "Notebook",
        "A notebook run with papermill for every chunk, with chunk_path, results_dir, params and "
        "chunk_number injected into its parameters cell.",
        {
            "notebook": {"type": "string", "pattern": r"\S", "x-expected": "a path or URL of a .ipynb file",
                         "description": "The notebook: a path relative to the job file's folder, or an fsspec URL "
                                        "(s3://bucket/chunk.ipynb)."},
            "kernel": {"type": "string", "minLength": 1, "x-expected": "a kernel name",
                       "description": "The kernel to run it with (default: the notebook's own kernel, else python3)."},
            "cwd": {"type": "string", "minLength": 1,
                    "description": "The folder the kernel starts in (default: the notebook's folder for a local "
                                   "notebook, else the task folder)."},
            "schema": PARAMS_SCHEMA,
        },
        ["notebook"],
    )

    def __init__(self, notebook: str, *, kernel: str | None = None, schema: dict | None = None,
                 cwd: str | None = None, base_dir: str | None = None):
        self.notebook = notebook
        self.kernel = kernel
        self.schema = schema
        self.cwd = cwd
        self.base_dir = base_dir
        # Decided where the job is submitted, so every worker keeps records in the same place.
        self.records = records_root()

    @classmethod
    def from_spec(cls, spec: dict, base_dir: str | None = None) -> "NotebookApp":
        """The app a job's ``{"notebook": ...}`` object describes (checked by :attr:`SPEC_SCHEMA`)."""
        spec = cls.checked_spec(spec)
        return cls(spec["notebook"], kernel=spec.get("kernel"), schema=spec.get("schema"), cwd=spec.get("cwd"),
                   base_dir=base_dir)

    # -- where things are ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The notebook as a URL or an absolute local path."""
        nb = self.notebook
        if not isinstance(nb, str):
            return str(nb)
        proto, rest = split_protocol(nb)
        if proto != "file":
            return nb
        path = rest if "://" in nb else nb
        path = os.path.expanduser(path)
        if not os.path.isabs(path):
            path = os.path.join(self.base_dir or os.getcwd(), path)
        return os.path.normpath(path)

    @property
    def is_local(self) -> bool:
        return split_protocol(self.url)[0] == "file"

    @property
    def name(self) -> str:
        base = posixpath.basename(str(self.notebook).split("?", 1)[0]) or "notebook"
        return base[:-6] if base.endswith(".ipynb") else base

    def _read(self) -> str:
        from ..papermill_io import handler

        return handler.read(self.url)

    def check(self, field: str = "app") -> list[FieldError]:
        errors = self.spec_errors(field)
        if errors:
            return errors
        try:
            text = self._read()
        except FileNotFoundError:
            return [FieldError(f"{field}.notebook", f"no such notebook: {redact_text(self.url)}")]
        except Exception as exc:
            return [FieldError(f"{field}.notebook",
                               f"cannot read {redact_text(self.url)}: {type(exc).__name__}: {redact_text(str(exc))}")]
        import nbformat

        try:
            nbformat.reads(text, as_version=4)
        except Exception as exc:
            return [FieldError(f"{field}.notebook", f"{redact_text(self.url)} is not a notebook: {exc}")]
        return []

    def fingerprint(self) -> str:
        """The spec and the notebook's content: an edited notebook never reuses staged chunks."""
        try:
            content = self._read()
        except Exception:
            content = ""
        text = json.dumps(self.to_spec(), sort_keys=True, default=repr) + content
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_spec(self) -> Any:
        spec: dict[str, Any] = {"notebook": self.notebook}
        for key in ("kernel", "schema", "cwd"):
            if getattr(self, key) is not None:
                spec[key] = getattr(self, key)
        return spec

    # -- running ---------------------------------------------------------------------------

    def _kernel_cwd(self, ctx: TaskContext) -> str:
        if self.cwd:
            if os.path.isabs(self.cwd):
                return self.cwd
            return os.path.join(self.base_dir or os.getcwd(), self.cwd)
        return os.path.dirname(self.url) if self.is_local else ctx.task_dir

    def run(self, ctx: TaskContext) -> None:
        import nbformat
        import papermill
        from jupyter_client.manager import AsyncKernelManager
        from papermill.exceptions import PapermillExecutionError

        from ..papermill_io import register

        register()  # every fsspec scheme, also on a worker that never loaded the entry points
        output = executed_notebook_url(self.records, ctx.job_id, ctx.chunk_number)
        env = {**os.environ, **ctx.env()}
        cwd = self._kernel_cwd(ctx)
        try:
            nb = nbformat.reads(self._read(), as_version=4)
        except Exception as exc:
            raise AppError(f"notebook {self.name}: cannot read {redact_text(self.url)}: {exc}") from exc
        kernel = self.kernel or (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
        parameters = {"chunk_path": ctx.chunk_path, "results_dir": ctx.results_dir,
                      "params": injected_params(ctx.params), "chunk_number": ctx.chunk_number,
                      "chunk_info": ctx.chunk_info or {"index": ctx.chunk_number}}
        with control.supervised(ctx.job_id, ctx.timeout) as attempt:
            # The kernel is started here, in its own process group, with the contract in its
            # environment: a timeout or a cancel kills it at any instant.
            km = AsyncKernelManager(kernel_name=kernel)
            # What the kernel process itself prints goes to the attempt's log, not to the worker's.
            kernel_log = open(os.path.join(ctx.log_dir, "kernel.log"), "wb")
            try:
                from jupyter_core.utils import run_sync

                run_sync(km.start_kernel)(env=env, cwd=cwd, stdout=kernel_log, stderr=kernel_log)
            except Exception as exc:
                kernel_log.close()
                raise AppError(f"notebook {self.name}: cannot start kernel {kernel!r} on this worker: "
                               f"{type(exc).__name__}: {exc} (set app.kernel to one that exists)") from exc
            pid = getattr(km.provisioner, "pid", None)
            if pid:
                attempt.pgids.add(pid)
            try:
                papermill.execute_notebook(
                    nb, output, parameters=parameters, kernel_name=kernel, km=km, progress_bar=False,
                    log_output=False, request_save_on_cell_execute=False, start_timeout=KERNEL_START_TIMEOUT)
            except PapermillExecutionError as exc:
                if attempt.reason:
                    control.raise_for(attempt, f"notebook {self.name}")
                number, first_line = _cell_label(nb, exc.cell_index, exc.source)
                traceback = _ANSI.sub("", "\n".join(exc.traceback or []))
                raise AppError(f"notebook {self.name} failed at cell {number} ({first_line!r}): "
                               f"{exc.ename}: {exc.evalue} (executed notebook: {redact_text(output)})",
                               stderr_tail=traceback[-4096:]) from None
            except Exception as exc:
                if attempt.reason:
                    control.raise_for(attempt, f"notebook {self.name}")
                from .process import tail

                raise AppError(f"notebook {self.name}: {type(exc).__name__}: {exc} "
                               f"(executed notebook: {redact_text(output)})",
                               stderr_tail=tail(os.path.join(ctx.log_dir, "kernel.log"))) from exc
            finally:
                try:
                    run_sync(km.shutdown_kernel)(now=True)
                except Exception:
                    pass
                kernel_log.close()
            if attempt.reason:
                control.raise_for(attempt, f"notebook {self.name}")
