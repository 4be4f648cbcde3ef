"""App runtimes: what runs on every chunk.

A job's ``app`` is one of:

- a registered app name (``"identity"``, or one added with :func:`bytenite_nb.app`);
- a Python callable ``fn(chunk_path, results_dir, params)``;
- an object whose key picks a runtime: ``{"command": [...]}``,
  ``{"python": "module:function"}``, ``{"folder": "path"}``,
  ``{"image": "repo/name:tag", "command": [...]}``; other packages add
  runtimes through the ``bytenite_nb.runtimes`` entry point group;
- a ByteNite app folder's path, or its tag (``name``, ``name@1``, ``name@1.2``)
  found in the local folders :mod:`bytenite_nb.folders` searches.

:meth:`bytenite_nb.registry.Registry.resolve` turns any of these into an
:class:`App`; this package holds the runtimes themselves.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import FieldError
from ..schema import show, suggest
from .base import App, TaskContext

RUNTIMES = {
    "command": "bytenite_nb.apps.command:CommandApp",
    "python": "bytenite_nb.apps.python:PythonApp",
    "folder": "bytenite_nb.apps.folder:FolderApp",
    "notebook": "bytenite_nb.apps.notebook:NotebookApp",
    "image": "bytenite_nb.apps.container:ContainerApp",
}

BUILTINS = {
    "identity": "bytenite_nb.apps.builtin:identity",
    "noop": "bytenite_nb.apps.builtin:noop",
}

_runtimes: dict[str, type[App]] | None = None


def _import(ref: str) -> Any:
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def runtimes() -> dict[str, type[App]]:
    """Runtime key -> App class, built-ins first, then entry points."""
    global _runtimes
    if _runtimes is None:
        from importlib.metadata import entry_points

        found = {key: _import(ref) for key, ref in RUNTIMES.items()}
        for ep in entry_points(group="bytenite_nb.runtimes"):
            found.setdefault(ep.name, ep.load())
        _runtimes = found
    return _runtimes


def runtime_schemas() -> dict[str, dict]:
    """Runtime key -> the JSON Schema of the ``app`` object that selects it (what the
    notebook builder and the JupyterLab editor make their app forms from). A runtime
    from another package without a ``SPEC_SCHEMA`` gets one that asks for its key only.

    >>> runtime_schemas()["command"]["required"]
    ['command']
    """
    out = {}
    for key, cls in runtimes().items():
        schema = getattr(cls, "SPEC_SCHEMA", None)
        out[key] = schema if isinstance(schema, dict) else {
            "type": "object", "title": key, "description": f"The {key} runtime.",
            "properties": {key: {"description": f"What the {key} runtime runs."}}, "required": [key]}
    return out


def as_app(obj: Any, schema: dict | None = None, name: str | None = None) -> App:
    """Adapt an App, a callable or a runtime spec to an :class:`App`.

    >>> as_app({"command": ["true"]}).to_spec()
    {'command': ['true']}
    """
    from .python import PythonApp

    if isinstance(obj, type) and issubclass(obj, App):
        obj = obj()
    if isinstance(obj, App):
        if schema is not None:
            obj.schema = schema
        return obj
    if callable(obj):
        return PythonApp(obj, schema=schema if schema is not None else getattr(obj, "schema", None),
                         registered_name=name)
    if isinstance(obj, dict):
        return runtime_for(obj).from_spec(obj, None)
    raise TypeError(f"not an app: {obj!r}")


def runtime_for(spec: dict, field: str = "app") -> type[App]:
    """The runtime class a job's ``app`` object selects by its key.

    >>> runtime_for({"image": "busybox", "command": ["true"]}).runtime
    'image'
    """
    table = runtimes()
    keys = [k for k in spec if k in table]
    # {"image": ..., "command": [...]}: the command is the image runtime's own field.
    keys = [k for k in keys if not any(k in getattr(table[other], "absorbs", ()) for other in keys)]
    if len(keys) != 1:
        wanted = ", ".join(sorted(table))
        if not keys:
            hint = "".join(suggest(k, table) for k in spec)[:80]
            raise FieldError(field, f"expected one of the keys {wanted}{hint}; got {show(sorted(spec))}")
        raise FieldError(field, f"names several runtimes ({', '.join(keys)}); use one")
    return table[keys[0]]


__all__ = ["App", "BUILTINS", "RUNTIMES", "TaskContext", "as_app", "runtime_for", "runtime_schemas", "runtimes"]
