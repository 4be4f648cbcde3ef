"""Components by name: partitioners, apps and assemblers.

Three registries, filled from the built-ins, then from the entry point groups
``bytenite_nb.partitioners``, ``bytenite_nb.apps`` and ``bytenite_nb.assemblers``
(a third-party package declares them in its ``pyproject.toml``), then from
the decorators a notebook uses:

>>> import bytenite_nb
>>> @bytenite_nb.app("shout", schema={"type": "object"})
... def shout(chunk_path, results_dir, params):
...     return open(chunk_path).read().upper()
>>> "shout" in bytenite_nb.registry.apps
True

Each component carries a JSON Schema for its params and a docstring.

:func:`resolve` is the one way a job's ``partitioner``, ``app`` or
``assembler`` becomes something runnable (the job, the CLI, the widgets and
the server all go through it); :meth:`Registry.resolve` documents the order.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .exceptions import ComponentNotFound, FieldError, JobValidationError
from .plaintext import plain_text
from .schema import show, suggest

log = logging.getLogger(__name__)


@dataclass
class Component:
    """A registered partitioner, app or assembler."""

    kind: str
    name: str
    obj: Any  # a Partitioner, an App or an Assembler
    origin: str  # "builtin", "entry point <dist>", or "python"

    @property
    def schema(self) -> dict:
        return getattr(self.obj, "schema", None) or {"type": "object"}

    @property
    def doc(self) -> str:
        """The docstring as plain text (what users see: no reST markup)."""
        # A wrapped function (a function app, partitioner or assembler) speaks for
        # itself: the wrapper's class docstring describes the wrapper, not the component.
        fn = getattr(self.obj, "fn", None)
        return plain_text(inspect.getdoc(fn if callable(fn) else self.obj))

    @property
    def summary(self) -> str:
        return self.doc.split("\n\n", 1)[0].replace("\n", " ") if self.doc else ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "summary": self.summary, "doc": self.doc,
                "schema": self.schema, "origin": self.origin}


def _import(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


class Registry:
    """Components of one kind, by name.

    >>> from bytenite_nb.registry import partitioners
    >>> partitioners.get("split-lines").name
    'split-lines'
    """

    def __init__(self, kind: str, group: str, builtins: dict[str, str], adapt: Callable[..., Any]):
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._adapt = adapt
        self._items: dict[str, Component] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for name, ref in self._builtins.items():
                self._items.setdefault(name, Component(self.kind, name, self.adapt(_import(ref), name), "builtin"))
            from importlib.metadata import entry_points

            for ep in entry_points(group=self.group):
                if ep.name in self._items:
                    continue
                try:
                    obj = self.adapt(ep.load(), ep.name)
                except Exception as exc:  # a broken plugin must not break the rest
                    log.warning("cannot load %s %r from %s: %s", self.kind, ep.name, ep.value, exc)
                    continue
                dist = getattr(ep, "dist", None)
                origin = f"entry point {dist.name}" if dist is not None else "entry point"
                self._items[ep.name] = Component(self.kind, ep.name, obj, origin)
            self._loaded = True

    def adapt(self, obj: Any, name: str | None = None, schema: dict | None = None) -> Any:
        """``obj`` (a class, an instance or a function) as a component of this kind;
        :class:`TypeError` when it cannot be one."""
        if self.kind == "app":
            return self._adapt(obj, schema=schema, name=name)
        return self._adapt(obj, schema=schema)

    def register(self, name: str, obj: Any, *, schema: dict | None = None, origin: str = "python") -> Component:
        """Add (or replace) a component under ``name``."""
        if not isinstance(name, str) or not name:
            # e.g. an instance given to a bare decorator: it has no __name__ to go by
            raise TypeError(f"a {self.kind} needs a name (a non-empty string), got {name!r}")
        self._load()
        component = Component(self.kind, name, self.adapt(obj, name, schema), origin)
        with self._lock:
            self._items[name] = component
        return component

    def unregister(self, name: str) -> None:
        with self._lock:
            self._items.pop(name, None)

    def get(self, name: str) -> Component:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            known = self.names()
            raise ComponentNotFound(
                f"unknown {self.kind} {name!r}{suggest(name, known)}; known: {', '.join(known)}"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[Component]:
        self._load()
        return iter([self._items[n] for n in sorted(self._items)])

    def resolve(self, spec: Any, *, base_dir: str | None = None, field: str | None = None,
                near: list[str] | None = None) -> Any:
        """The runnable component that ``spec`` (a job's ``partitioner``, ``app`` or
        ``assembler`` field) names. Tried in this order:

        1. a registered name (``"split-lines"``, ``"identity"``);
        2. a folder path holding a ByteNite ``manifest.json`` (relative to
           ``base_dir``), or ``{"folder": path, ...}``;
        3. a tag, ``name``, ``name@1`` or ``name@1.2``, of such a folder
           (also as ``{"folder": tag}``), searched nearest first from the
           folders in ``near`` (default ``[base_dir]``; see
           :mod:`bytenite_nb.folders`);
        4. a ``module:attr`` reference (a module next to ``base_dir`` first);
        5. for apps, a runtime object: ``{"command": [...]}``,
           ``{"python": "module:function"}``, ``{"image": ...}``,
           ``{"notebook": ...}`` (and runtimes from entry points);
        6. an object: a component instance or class, or a function.

        Problems raise :class:`~bytenite_nb.exceptions.FieldError` naming
        ``field`` (default: the kind), or
        :class:`~bytenite_nb.exceptions.JobValidationError` listing several.

        >>> type(partitioners.resolve("split-lines")).__name__
        'SplitLines'
        >>> apps.resolve({"command": ["true"]}).to_spec()
        {'command': ['true']}
        >>> apps.resolve("bytenite_nb.apps.builtin:noop").to_spec()
        {'python': 'bytenite_nb.apps.builtin:noop'}
        >>> assemblers.resolve("concta")
        Traceback (most recent call last):
        ...
        bytenite_nb.exceptions.FieldError: assembler: unknown assembler 'concta' (did you mean "concat"?); known: ...
        """
        field = field or self.kind
        if near is None:
            near = [base_dir] if base_dir else []
        if spec is None:
            raise FieldError(field, "is required")
        if isinstance(spec, str):
            component = self._resolve_text(spec, base_dir, field, near)
        elif isinstance(spec, dict):
            component = self._resolve_object(spec, base_dir, field, near)
        else:
            try:
                component = self.adapt(spec, getattr(spec, "__name__", None))
            except TypeError as exc:
                raise FieldError(field, str(exc)) from exc
        check = getattr(component, "check", None)
        errors = check(field) if callable(check) else []
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise JobValidationError(errors)
        return component

    def _resolve_text(self, spec: str, base_dir: str | None, field: str, near: list[str]) -> Any:
        if spec in self:
            return self.get(spec).obj
        folder = _find_folder(self.kind, spec, base_dir, field, near)
        if folder is not None:
            return self._folder_component(folder, base_dir, field, {})
        if ":" in spec and not spec.startswith(("/", ".")):
            return self._load_reference(spec, base_dir, field)
        from .folders import is_tag, search_dirs

        known = self.names()
        where = "; no folder of that path" if not is_tag(spec) else (
            f"; no {self.kind} folder of that tag in {', '.join(d for d in search_dirs(near) if os.path.isdir(d)) or 'any folder searched'}")
        raise FieldError(field, f"unknown {self.kind} {spec!r}{suggest(spec, known)}; "
                                f"known: {', '.join(known) or 'none'}{where}")

    def _resolve_object(self, spec: dict, base_dir: str | None, field: str, near: list[str]) -> Any:
        if self.kind == "app":
            from .apps import runtime_for

            runtime = runtime_for(spec, field)
            if runtime.runtime != "folder":
                return runtime.from_spec(spec, base_dir)
            runtime.checked_spec(spec, field)  # the object's fields first, then where its folder is
        else:
            from .engine_folders import CLASSES

            CLASSES[self.kind].check_spec(spec, field)
        folder = spec["folder"]
        if not isinstance(folder, str) or not folder:
            raise FieldError(f"{field}.folder", f"expected a folder path or tag, got {show(folder)}")
        found = _find_folder(self.kind, folder, base_dir, f"{field}.folder", near)
        if found is None:
            raise FieldError(f"{field}.folder", f"no {self.kind} folder {folder!r} (no manifest.json there, "
                                                f"and no {self.kind} folder of that tag)")
        return self._folder_component(found, base_dir, field, spec)

    def _folder_component(self, folder: str, base_dir: str | None, field: str, spec: dict) -> Any:
        """The component of a ByteNite folder (``folder`` as the job wrote it, or
        an absolute path when found by tag)."""
        if self.kind == "app":
            from .apps import runtimes

            return runtimes()["folder"].from_spec({**spec, "folder": folder}, base_dir)
        from .engine_folders import CLASSES

        cls = CLASSES[self.kind]
        if spec:
            cls.check_spec(spec, field)
        return cls(folder, base_dir=base_dir, container=spec.get("container"))

    def _load_reference(self, ref: str, base_dir: str | None, field: str) -> Any:
        from .apps.python import load_function

        try:
            obj = load_function(ref, base_dir)
        except Exception as exc:
            raise FieldError(field, f"cannot load {ref!r}: {type(exc).__name__}: {exc}") from exc
        if self.kind == "app" and inspect.isfunction(obj):
            # kept as a reference: a job file written back names it the same way
            from .apps import runtimes

            return runtimes()["python"].from_spec({"python": ref}, base_dir)
        try:
            return self.adapt(obj, ref)
        except TypeError as exc:
            raise FieldError(field, f"{ref!r}: {exc}") from exc


def _find_folder(kind: str, text: str, base_dir: str | None, field: str, near: list[str]) -> str | None:
    """The folder ``text`` names, as a path (kept as written) or found by tag; None
    when it names neither. A path-like name without a manifest is an error."""
    path = text if os.path.isabs(text) else os.path.join(base_dir or os.getcwd(), text)
    if os.path.isfile(os.path.join(path, "manifest.json")):
        return text
    from .folders import find_folder, is_tag

    if is_tag(text):
        manifest = find_folder(text, kind, near, field=field)
        return manifest.folder if manifest is not None else None
    if os.sep in text and ":" not in text:
        raise FieldError(field, f"{os.path.normpath(path)}: no manifest.json (not a ByteNite {kind} folder)")
    return None


def _adapt_partitioner(obj, schema=None):
    from .partitioners import as_partitioner

    return as_partitioner(obj, schema)


def _adapt_assembler(obj, schema=None):
    from .assemblers import as_assembler

    return as_assembler(obj, schema)


def _adapt_app(obj, schema=None, name=None):
    from .apps import as_app

    return as_app(obj, schema, name)


def _builtins(module: str) -> dict[str, str]:
    return importlib.import_module(module).BUILTINS


partitioners = Registry("partitioner", "bytenite_nb.partitioners", _builtins("bytenite_nb.partitioners"),
                        _adapt_partitioner)
assemblers = Registry("assembler", "bytenite_nb.assemblers", _builtins("bytenite_nb.assemblers"), _adapt_assembler)
apps = Registry("app", "bytenite_nb.apps", _builtins("bytenite_nb.apps"), _adapt_app)

REGISTRIES = {"partitioner": partitioners, "app": apps, "assembler": assemblers}


def resolve(kind: str, spec: Any, *, base_dir: str | None = None, field: str | None = None,
            near: list[str] | None = None) -> Any:
    """The runnable ``kind`` (``"partitioner"``, ``"app"`` or ``"assembler"``) that
    ``spec`` names: see :meth:`Registry.resolve` for the order tried.

    >>> resolve("app", "identity").name
    'identity'
    """
    return REGISTRIES[kind].resolve(spec, base_dir=base_dir, field=field, near=near)


def _decorator(registry: Registry, name: str | Callable | None, schema: dict | None):
    def register(obj):
        registry.register(getattr(obj, "__name__", None) if not isinstance(name, str) else name, obj, schema=schema)
        return obj

    if callable(name):  # used bare: @bytenite_nb.app
        return register(name)
    return register


def partitioner(name: str | None = None, *, schema: dict | None = None):
    """Register a partitioner class or function ``fn(source, params) -> [ChunkRef]``.

    >>> from bytenite_nb.partitioners import ChunkRef
    >>> @partitioner("one-per-file", schema={"type": "object"})
    ... def one_per_file(source, params):
    ...     return [ChunkRef(url=f.url, size=f.size) for f in source.files]
    """
    return _decorator(partitioners, name, schema)


def assembler(name: str | None = None, *, schema: dict | None = None):
    """Register an assembler class or function ``fn(results, output_dir, params)``.

    >>> @assembler("count")
    ... def count(results, output_dir, params):
    ...     open(output_dir + "/count.txt", "w").write(str(len(results)))
    """
    return _decorator(assemblers, name, schema)


def app(name: str | None = None, *, schema: dict | None = None):
    """Register a function ``fn(chunk_path, results_dir, params)`` as a named app.

    >>> @app("upper")
    ... def upper(chunk_path, results_dir, params):
    ...     return open(chunk_path, "rb").read().upper()
    """
    return _decorator(apps, name, schema)
