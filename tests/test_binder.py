"""binder/ installs what pyproject.toml declares: this package (from the
checkout, so the JupyterLab extension is built into it), with extras that
exist, and any other requirement exactly as pyproject pins it."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def declared_requirements() -> dict[str, Requirement]:
    """Every requirement pyproject declares (dependencies and extras), by name."""
    project = pyproject()
    found = {}
    for text in project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]:
        requirement = Requirement(text)
        found[requirement.name.lower()] = requirement
    return found


def pip_installs() -> list[list[str]]:
    """The arguments of every ``pip install`` in postBuild."""
    installs = []
    for line in (BINDER / "postBuild").read_text().splitlines():
        words = shlex.split(line, comments=True)
        if "pip" in words and "install" in words:
            installs.append([w for w in words[words.index("install") + 1:] if not w.startswith("-")])
    return installs


def test_post_build_is_an_executable_script_that_stops_on_errors():
    text = (BINDER / "postBuild").read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert os.access(BINDER / "postBuild", os.X_OK)


def test_binder_installs_this_package_from_the_checkout_with_declared_extras():
    project = pyproject()
    targets = [arg for args in pip_installs() for arg in args if arg == "." or arg.startswith(".[")]
    assert targets, "postBuild must install the package from the checkout (pip install .)"
    for target in targets:
        extras = re.fullmatch(r"\.(?:\[([^\]]*)\])?", target).group(1)
        for extra in filter(None, (extras or "").split(",")):
            assert extra.strip() in project["optional-dependencies"], f"extra {extra!r} is not in pyproject.toml"
    # The labextension's install.json names the same distribution.
    install = json.loads((REPO / "labextension" / "install.json").read_text())
    assert install["packageName"] == project["name"]


def test_every_other_binder_requirement_is_pinned_as_pyproject_pins_it():
    declared = declared_requirements()
    others = [arg for args in pip_installs() for arg in args if not arg.startswith(".")]
    assert others, "JupyterLab itself is installed for Binder"
    for text in others:
        requirement = Requirement(text)
        assert requirement.name.lower() in declared, f"{text} is not declared in pyproject.toml"
        assert requirement.specifier == declared[requirement.name.lower()].specifier, text


def test_environment_gives_python_pyproject_accepts_and_node_for_the_extension_build():
    environment = yaml.safe_load((BINDER / "environment.yml").read_text())
    dependencies = [d for d in environment["dependencies"] if isinstance(d, str)]
    python = next(d for d in dependencies if d.startswith("python="))
    version = tuple(int(p) for p in python.split("=")[1].split(".")[:2])
    minimum = tuple(int(p) for p in re.search(r">=\s*([\d.]+)", pyproject()["requires-python"]).group(1).split(".")[:2])
    assert version >= minimum
    node = next(d for d in dependencies if d.startswith("nodejs"))
    assert int(node.split("=")[1].split(".")[0]) >= 18  # what JupyterLab 4's builder needs
    assert "pip" in dependencies
