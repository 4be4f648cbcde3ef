"""App runtimes: what runs on every chunk.

A job's ``app`` is one of:

- a registered app name (``"identity"``, or one added with :func:`bytenite_nb.app`);
- a Python callable ``fn(chunk_path, results_dir, params)``;
- an object whose key picks a runtime: ``{"command": [...]}``,
  ``{"python": "module:function"}``, ``{"folder": "path"}``,
  ``{"image": "repo/name:tag", "command": [...]}``; other packages add
  runtimes through the ``bytenite_nb.runtimes`` entry point group;
- a ByteNite app folder's path, or its tag (``name``, ``name@1``, ``name@1.2``)
  found in the local folders :mod:`bytenite_nb.apps.catalog` searches.
"""

from __future__ import annotations

import os
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


def as_app(obj: Any, schema: dict | None = None, name: str | None = None) -> App:
    """Adapt an App, a callable or a runtime spec to an :class:`App`."""
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
        return resolve_app(obj)
    raise TypeError(f"not an app: {obj!r}")


def resolve_app(spec: Any, *, base_dir: str | None = None, field: str = "app") -> App:
    """The :class:`App` a job's ``app`` field names; :class:`FieldError` if none.

    >>> resolve_app({"command": ["true"]}).to_spec()
    {'command': ['true']}
    """
    from .. import registry
    from .folder import FolderApp
    from .python import PythonApp

    if isinstance(spec, App):
        return spec
    if callable(spec):
        # a function may carry its params schema as ``fn.schema``
        return PythonApp(spec, schema=getattr(spec, "schema", None))
    if isinstance(spec, str):
        if spec in registry.apps:
            return registry.apps.get(spec).obj
        path = spec if os.path.isabs(spec) else os.path.join(base_dir or os.getcwd(), spec)
        if os.path.isfile(os.path.join(path, "manifest.json")):
            return FolderApp(spec, base_dir=base_dir)
        from .catalog import find_folder, is_tag

        if is_tag(spec):
            manifest = find_folder(spec, "app", base_dir, field=field)
            if manifest is not None:
                return FolderApp(manifest.folder)
        raise FieldError(field, f"unknown app {spec!r}{suggest(spec, registry.apps.names())}; "
                                f"registered: {', '.join(registry.apps.names()) or 'none'}; "
                                "no app folder of that path or tag either")
    if isinstance(spec, dict):
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
        return table[keys[0]].from_spec(spec, base_dir)
    raise FieldError(field, f"expected an app name, a runtime object or a callable, got {show(spec)}")


__all__ = ["App", "BUILTINS", "RUNTIMES", "TaskContext", "as_app", "resolve_app", "runtimes"]
