"""The codebase-report example, executed with papermill on the test cluster: a
real installed package's source, sharded by module, reported per module and
stitched into one document whose numbers match counts made here directly."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from pathlib import Path

import nbformat
import papermill

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "codebase-report"


def source_files(root: str) -> dict[str, bytes]:
    out = {}
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in names:
            if not name.endswith(".pyc"):
                full = os.path.join(dirpath, name)
                out[os.path.relpath(full, root).replace(os.sep, "/")] = open(full, "rb").read()
    return out


def module_of(root: str, rel: str) -> str:
    """Each root file on its own; else the outermost Python package on the way, or the top-level folder."""
    parts = rel.split("/")
    if len(parts) == 1:
        return rel
    for depth in range(1, len(parts)):
        if os.path.exists(os.path.join(root, *parts[:depth], "__init__.py")):
            return "/".join(parts[:depth])
    return parts[0]


def sections(report: str) -> dict[str, tuple[int, int, int, int]]:
    """Module -> (files, lines, functions, classes), read from each section's first table."""
    found = {}
    for match in re.finditer(r"^## `([^`]+)`\n\n\|[^\n]+\n\|[^\n]+\n\| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$",
                             report, re.M):
        found[match.group(1)] = tuple(int(g) for g in match.groups()[1:])
    return found


def test_the_codebase_report_counts_what_is_there(tmp_path, client):
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(EXAMPLE / "codebase-report.ipynb"), str(out), cwd=str(EXAMPLE),
                               parameters={"work_dir": str(tmp_path / "work"), "package": "fsspec",
                                           "scheduler": client.scheduler.address},
                               progress_bar=False, kernel_name="python3")
    root = list(importlib.util.find_spec("fsspec").submodule_search_locations)[0]
    files = source_files(root)
    want: dict[str, list[int]] = {}
    for rel, data in files.items():
        counts = want.setdefault(module_of(root, rel), [0, 0, 0, 0])
        text = data.decode("utf-8", errors="replace")
        counts[0] += 1
        counts[1] += len(text.splitlines())
        if rel.endswith(".py"):
            nodes = list(ast.walk(ast.parse(text)))
            counts[2] += sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in nodes)
            counts[3] += sum(isinstance(n, ast.ClassDef) for n in nodes)
    report = (tmp_path / "work" / "output" / "codebase-report.md").read_text(encoding="utf-8")
    got = sections(report)
    assert got == {m: tuple(c) for m, c in want.items()}  # each module once, every number as counted here
    assert {"core.py", "spec.py", "implementations"} <= set(got) and len(got) > 10
    assert list(got) == sorted(got)  # stitched in module order
    assert "Largest files:" in report and "`implementations/" in report
    nb = nbformat.read(out, as_version=4)
    shown = [o for c in nb.cells for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert shown and "## `implementations`" in shown[-1]["data"]["text/markdown"]
