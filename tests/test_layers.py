"""Layers point one way: the package's imports (at module level and inside
functions alike) form no cycle, and low layers never import high ones."""

from __future__ import annotations

import ast
import os

import bytenite_nb

ROOT = os.path.dirname(os.path.abspath(bytenite_nb.__file__))
PACKAGE = "bytenite_nb"

#: what each layer may not import (by module name prefix), lowest first
FORBIDDEN = {
    "bytenite_nb.engine": ("bytenite_nb.widgets", "bytenite_nb.server", "bytenite_nb.cli", "bytenite_nb.job"),
    "bytenite_nb.apps": ("bytenite_nb.engine", "bytenite_nb.widgets", "bytenite_nb.server",
                         "bytenite_nb.job", "bytenite_nb.registry"),
    "bytenite_nb.partitioners": ("bytenite_nb.engine", "bytenite_nb.widgets", "bytenite_nb.server",
                                 "bytenite_nb.job", "bytenite_nb.registry"),
    "bytenite_nb.assemblers": ("bytenite_nb.engine", "bytenite_nb.widgets", "bytenite_nb.server",
                               "bytenite_nb.job", "bytenite_nb.registry"),
    "bytenite_nb.engine_folders": ("bytenite_nb.engine", "bytenite_nb.widgets", "bytenite_nb.server",
                                   "bytenite_nb.job", "bytenite_nb.registry"),
    "bytenite_nb.store": ("bytenite_nb.engine", "bytenite_nb.widgets", "bytenite_nb.server"),
    "bytenite_nb.registry": ("bytenite_nb.engine", "bytenite_nb.widgets", "bytenite_nb.server", "bytenite_nb.job"),
    "bytenite_nb.display": ("bytenite_nb.",),  # a leaf: hooks arrive through entry points
    "bytenite_nb.supervision": ("bytenite_nb.engine", "bytenite_nb.apps"),
    "bytenite_nb.ids": ("bytenite_nb.",),
    "bytenite_nb.widgets": ("bytenite_nb.server",),
}


def module_names() -> dict[str, str]:
    """Module name -> file, for every module of the package."""
    out = {}
    for dirpath, dirnames, names in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "__")) and d != "labextension"]
        for name in names:
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), ROOT)[:-3].split(os.sep)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join([PACKAGE, *rel])] = os.path.join(dirpath, name)
    return out


def imports_of(name: str, path: str, modules: dict[str, str]) -> set[str]:
    """The package modules that ``name`` imports anywhere in its file."""
    is_package = path.endswith("__init__.py")
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from x import y`` imports the module x.y when there is one, else names from x
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target != PACKAGE:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_cycle():
    edges = graph()
    assert len(edges) > 40 and edges["bytenite_nb.job"]  # the graph was read
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_low_layers_do_not_import_high_ones():
    wrong = []
    for name, targets in graph().items():
        for layer, forbidden in FORBIDDEN.items():
            if name == layer or name.startswith(layer + "."):
                wrong += [f"{name} imports {t}" for t in targets
                          if any(t.startswith(f) if f.endswith(".") else t == f or t.startswith(f + ".")
                                 for f in forbidden)]
    assert wrong == []


def test_handles_and_results_show_through_the_widgets_hooks():
    from bytenite_nb import display
    from bytenite_nb.widgets.display import display_handle, display_result

    display._load()
    assert display._entry_hooks["handle"] is display_handle and display._entry_hooks["result"] is display_result
    seen = []
    display.register("result", seen.append)
    display.show("result", "r")
    display.unregister("result")
    assert seen == ["r"]
    assert display._hooks.get("result") is None and display._entry_hooks["result"] is display_result


# -- objects are read through what they offer -----------------------------------------------

RUNNER_FILE = os.path.join(ROOT, "engine", "runner.py")
TESTS = os.path.dirname(os.path.abspath(__file__))


def private_names(path: str, classes: tuple[str, ...]) -> set[str]:
    """The private attributes and methods (``_name``, not ``__dunder__``) the
    ``classes`` defined in ``path`` give themselves."""
    names: set[str] = set()
    for cls in ast.parse(open(path, encoding="utf-8").read(), path).body:
        if not (isinstance(cls, ast.ClassDef) and cls.name in classes):
            continue
        for node in ast.walk(cls):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.endswith("__")}


def private_reads(source: str, path: str, private: set[str]) -> list[str]:
    """Where ``source`` reaches one of the ``private`` names through anything
    but ``self`` (``handle._runner``, ``self._runner._lock``,
    ``getattr(handle, "_runner", None)``...)."""
    found = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Attribute) and node.attr in private \
                and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) and node.args[1].value in private:
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_private_read_finder_finds_one():
    private = {"_runner", "_lock"}
    source = "def f(handle):\n    return handle._runner.state\n\nclass H:\n    def g(self):\n        return self._runner._lock\n"
    assert private_reads(source, "x.py", private) == ["x.py:2: handle._runner", "x.py:6: self._runner._lock"]
    assert private_reads("def f(handle):\n    return getattr(handle, '_runner', None)\n", "z.py", private) \
        == ["z.py:2: getattr(handle, '_runner', None)"]
    assert private_reads("class H:\n    def g(self):\n        return self._lock\n", "y.py", private) == []


def test_nothing_reads_a_job_runners_or_handles_private_fields():
    """A JobHandle reads its runner through the runner's public methods, and
    everyone else (widgets, CLI, server, tests) reads a handle through its
    public names: each class can change its insides alone."""
    # Display hooks are Python's protocol (a notebook calls them), not private fields.
    private = private_names(RUNNER_FILE, ("JobRunner", "JobHandle")) - {"_ipython_display_"}
    assert {"_runner", "_lock", "_done", "_chunk_state", "_secrets", "_futures", "_staging"} <= private
    files = [path for path in module_names().values()]
    files += [os.path.join(TESTS, name) for name in os.listdir(TESTS) if name.endswith(".py")]
    found = []
    for path in files:
        found += private_reads(open(path, encoding="utf-8").read(), path, private)
    assert found == []
