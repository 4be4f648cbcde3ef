"""``{"python": "module:function"}`` or a callable: a Python function per chunk.

The function runs inside the Dask worker, with the runtime contract as
arguments: ``fn(chunk_path, results_dir, params)``. It writes result files into
``results_dir``, or returns ``bytes``/``str`` which become the chunk's single
result file (``result.bin``/``result.txt``).

A ``taskTimeout`` or a cancel interrupts the function at its next Python
bytecode; a function blocked inside a C call (a long ``time.sleep``, a socket
read) is interrupted only when that call returns. Use a command app when an
attempt must be killable at any instant.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import functools
import inspect
import json
import os
import sys
import traceback
from typing import Any, Callable

from .. import supervision as control
from ..exceptions import AppError, FieldError, TaskCancelled, TaskTimeoutError
from ..schema import show
from .base import PARAMS_SCHEMA, App, TaskContext, runtime_schema


def load_function(ref: str, base_dir: str | None = None) -> Callable:
    """Import ``"package.module:function"`` or ``"path/to/file.py:function"``.

    A module file next to the job (``base_dir/module.py``) is loaded from that
    file, under a name of its own: two job folders that each have an ``app.py``
    never get each other's module. Anything else is imported as usual.

    >>> load_function("os.path:basename")("/a/b")
    'b'
    """
    if ":" not in ref:
        raise ValueError(f"expected 'module:function', got {ref!r}")
    module_ref, _, attr = ref.rpartition(":")
    path = module_file(module_ref, base_dir)
    if path is None and base_dir and "." not in module_ref and importlib.util.find_spec(
            module_file_name(os.path.join(base_dir, module_ref + ".py"))) is not None:
        path = os.path.join(base_dir, module_ref + ".py")  # not on this worker: its shipped copy is
    module = _load_file(path) if path else importlib.import_module(module_ref)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is not callable")
    return obj


def module_file(module_ref: str, base_dir: str | None = None) -> str | None:
    """The file a ``module:function`` reference loads by path (``file.py``, or
    ``module`` when ``base_dir/module.py`` exists); None for an importable module.

    >>> module_file("tools/app.py", "/jobs/a")
    '/jobs/a/tools/app.py'
    >>> module_file("os.path") is None
    True
    """
    if module_ref.endswith(".py"):
        return module_ref if os.path.isabs(module_ref) else os.path.join(base_dir or os.getcwd(), module_ref)
    if base_dir and "." not in module_ref and os.path.isfile(os.path.join(base_dir, module_ref + ".py")):
        return os.path.join(base_dir, module_ref + ".py")
    return None


def module_file_name(path: str) -> str:
    """The module name a file loaded by path gets: its own per path, so two job
    folders that each have an ``app.py`` never get each other's module.

    >>> module_file_name("/jobs/a/app.py").startswith("bytenite_nb_app_")
    True
    """
    path = os.path.abspath(path)
    return "bytenite_nb_app_" + hashlib.sha256(path.encode()).hexdigest()[:12] + "_" + \
        "".join(c if c.isalnum() else "_" for c in os.path.splitext(os.path.basename(path))[0])


def _load_file(path: str):
    """The module in file ``path``, loaded once per path (and again if the file changed).

    On a worker of another host the file is not there: the copy the client
    shipped (:mod:`bytenite_nb.engine.travel`), under the same module name, is
    imported instead."""
    path = os.path.abspath(path)
    name = module_file_name(path)
    try:
        stamp = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            raise FileNotFoundError(f"{path}: no such file here, and no shipped copy of it ({name}) either") from None
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__bytenite_nb_stamp__", None) == stamp:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    module.__bytenite_nb_stamp__ = stamp
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def function_ref(fn: Callable) -> str:
    """``"module:qualname"`` for a function (what a job file stores)."""
    return f"{getattr(fn, '__module__', '__main__')}:{getattr(fn, '__qualname__', getattr(fn, '__name__', 'fn'))}"


@functools.lru_cache(maxsize=256)
def takes_chunk_info(fn: Callable) -> bool:
    """Whether ``fn`` accepts a ``chunk_info`` keyword (then it gets what the chunk
    covers, as ``CHUNK_INFO`` tells process apps).

    >>> takes_chunk_info(lambda chunk_path, results_dir, params, chunk_info: None)
    True
    >>> takes_chunk_info(lambda chunk_path, results_dir, params: None)
    False
    """
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "chunk_info" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class PythonApp(App):
    """A Python function ``fn(chunk_path, results_dir, params)`` run on every chunk.

    >>> app = PythonApp("os.path:basename")
    >>> app.to_spec()
    {'python': 'os.path:basename'}
    """

    runtime = "python"
    SPEC_SCHEMA = runtime_schema(
        "Python function (module:function)",
        "A Python function fn(chunk_path, results_dir, params), run in the Dask worker for every chunk; "
        "it writes result files into results_dir or returns bytes or str.",
        {
            "python": {"type": "string", "pattern": r"^.+:[^:]+$",
                       "x-expected": "'module:function' or 'file.py:function'",
                       "description": "module:function, or file.py:function for a file beside the job file."},
            "schema": PARAMS_SCHEMA,
        },
        ["python"],
    )

    def __init__(self, fn: Callable | str, *, base_dir: str | None = None, schema: dict | None = None,
                 registered_name: str | None = None):
        self.fn = fn
        self.base_dir = base_dir
        self.schema = schema
        self.registered_name = registered_name
        self._loaded: Callable | None = fn if callable(fn) else None

    @classmethod
    def from_spec(cls, spec: dict, base_dir: str | None = None) -> "PythonApp":
        """The app a job's ``{"python": ...}`` object describes (checked by :attr:`SPEC_SCHEMA`)."""
        spec = cls.checked_spec(spec)
        return cls(spec["python"], base_dir=base_dir, schema=spec.get("schema"))

    def module_file(self, module_ref: str) -> str | None:
        """The file this app's module is loaded from by path, if it is (see :func:`module_file`)."""
        return module_file(module_ref, self.base_dir)

    @property
    def name(self) -> str:
        if self.registered_name:
            return self.registered_name
        return self.fn.rpartition(":")[2] if isinstance(self.fn, str) else getattr(self.fn, "__name__", "python")

    def load(self) -> Callable:
        if self._loaded is None:
            self._loaded = load_function(self.fn, self.base_dir)
        return self._loaded

    def check(self, field: str = "app") -> list[FieldError]:
        if isinstance(self.fn, str):
            try:
                fn = self.load()
            except Exception as exc:
                return [FieldError(f"{field}.python", f"cannot load {self.fn!r}: {type(exc).__name__}: {exc}")]
        elif callable(self.fn):
            fn = self.fn
        else:
            return [FieldError(f"{field}.python", f"expected 'module:function' or a callable, got {show(self.fn)}")]
        errors = self.spec_errors(field)
        if errors:
            return errors
        if self.schema is None and isinstance(getattr(fn, "schema", None), dict):
            self.schema = fn.schema  # a function may carry its params schema
        try:
            extra = {"chunk_info": {}} if takes_chunk_info(fn) else {}
            inspect.signature(fn).bind("chunk_path", "results_dir", {}, **extra)
        except TypeError:
            return [FieldError(f"{field}.python", f"{function_ref(fn)} must accept (chunk_path, results_dir, params"
                                                  "[, chunk_info])")]
        except ValueError:
            pass  # builtins without a signature
        return []

    def run(self, ctx: TaskContext) -> None:
        fn = self.load()
        attempt = None
        try:
            with control.supervised(ctx.job_id, ctx.timeout, python=True) as attempt:
                try:
                    if takes_chunk_info(fn):
                        out = fn(ctx.chunk_path, ctx.results_dir, ctx.params, chunk_info=ctx.chunk_info or {})
                    else:
                        out = fn(ctx.chunk_path, ctx.results_dir, ctx.params)
                except (TaskTimeoutError, TaskCancelled):
                    if attempt.reason is None:
                        raise  # raised by the function itself
                    out = None
        except (TaskTimeoutError, TaskCancelled):
            if attempt is not None and attempt.reason:
                control.raise_for(attempt, self.name)
            raise
        except Exception as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None))
            raise AppError(f"{self.name} raised {type(exc).__name__}: {exc}", stderr_tail=tb[-4096:]) from exc
        if attempt.reason:
            control.raise_for(attempt, self.name)
        if out is None:
            return
        if isinstance(out, str):
            out, result_name = out.encode(), "result.txt"
        elif isinstance(out, (bytes, bytearray, memoryview)):
            result_name = "result.bin"
        else:
            raise AppError(f"{self.name} returned {type(out).__name__}; expected None, bytes or str")
        with open(os.path.join(ctx.results_dir, result_name), "wb") as f:
            f.write(out)

    def to_spec(self) -> Any:
        if self.registered_name:
            return self.registered_name
        return {"python": self.fn if isinstance(self.fn, str) else function_ref(self.fn)}

    def fingerprint(self) -> str:
        """The function's ``module:qualname``, however the job names it (the
        function itself, a registered name or a reference in a job file), so a
        rerun from a job's record reuses what the run it repeats staged."""
        ref = self.fn if isinstance(self.fn, str) else function_ref(self.fn)
        return hashlib.sha256(json.dumps({"python": ref}).encode()).hexdigest()[:16]

    def __getstate__(self):
        state = dict(self.__dict__)
        if isinstance(self.fn, str):
            state["_loaded"] = None  # import on the worker, not pickled from the client
        return state
