"""The examples in the docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bytenite_nb

MODULES = sorted(m.name for m in pkgutil.walk_packages(bytenite_nb.__path__, "bytenite_nb.")
                 if ".labextension" not in m.name)


@pytest.fixture
def registries_as_they_were():
    """Examples register components (``@bn.app("shout")``): take them away after."""
    from bytenite_nb.registry import REGISTRIES

    for registry in REGISTRIES.values():
        registry.names()  # loaded before the snapshot
    before = {kind: dict(registry._items) for kind, registry in REGISTRIES.items()}
    yield
    for kind, registry in REGISTRIES.items():
        registry._items.clear()
        registry._items.update(before[kind])


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch, registries_as_they_were):
    monkeypatch.chdir(tmp_path)  # examples may write files: never into the checkout
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_there_are_examples(tmp_path, monkeypatch, registries_as_they_were):
    monkeypatch.chdir(tmp_path)  # the examples run here too: never in the checkout
    attempted = sum(doctest.testmod(importlib.import_module(n), verbose=False, report=False).attempted
                    for n in MODULES)
    assert attempted > 50
