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
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .exceptions import ComponentNotFound
from .schema import suggest

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
        # A wrapped function (a function app, partitioner or assembler) speaks for
        # itself: the wrapper's class docstring describes the wrapper, not the component.
        fn = getattr(self.obj, "fn", None)
        if callable(fn):
            return inspect.getdoc(fn) or ""
        return inspect.getdoc(self.obj) or ""

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
                self._items.setdefault(name, Component(self.kind, name, self._make(_import(ref), name), "builtin"))
            from importlib.metadata import entry_points

            for ep in entry_points(group=self.group):
                if ep.name in self._items:
                    continue
                try:
                    obj = self._make(ep.load(), ep.name)
                except Exception as exc:  # a broken plugin must not break the rest
                    log.warning("cannot load %s %r from %s: %s", self.kind, ep.name, ep.value, exc)
                    continue
                dist = getattr(ep, "dist", None)
                origin = f"entry point {dist.name}" if dist is not None else "entry point"
                self._items[ep.name] = Component(self.kind, ep.name, obj, origin)
            self._loaded = True

    def _make(self, obj: Any, name: str, schema: dict | None = None) -> Any:
        if self.kind == "app":
            return self._adapt(obj, schema=schema, name=name)
        return self._adapt(obj, schema=schema)

    def register(self, name: str, obj: Any, *, schema: dict | None = None, origin: str = "python") -> Component:
        """Add (or replace) a component under ``name``."""
        if not isinstance(name, str) or not name:
            # e.g. an instance given to a bare decorator: it has no __name__ to go by
            raise TypeError(f"a {self.kind} needs a name (a non-empty string), got {name!r}")
        self._load()
        component = Component(self.kind, name, self._make(obj, name, schema), origin)
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
