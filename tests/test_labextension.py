"""The JupyterLab extension as installed: Jupyter lists both halves enabled
and OK, the settings schema is what the sidebar reads, and the extension's
own Jest suite passes (run from here so that CI runs it too)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

import tests.conftest as test_setup
from tests.conftest import missing, require

REPO = Path(__file__).resolve().parents[1]
LABEXTENSION = REPO / "labextension"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def jupyter(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, timeout=120)
    return ANSI.sub("", done.stdout + done.stderr)


@pytest.mark.parametrize("required, outcome", [(False, pytest.skip.Exception), (True, pytest.fail.Exception)])
def test_a_missing_part_skips_here_and_fails_in_ci(monkeypatch, required, outcome):
    # The browser tests reach a missing chromium or playwright package through these.
    monkeypatch.setattr(test_setup, "REQUIRE_SYSTEM", required)
    with pytest.raises(outcome) as stopped:
        missing("the playwright Python package is not installed")
    assert "the playwright Python package is not installed" in str(stopped.value)
    with pytest.raises(outcome) as stopped:
        require("no-such-tool-on-any-path", "no-such-tool is not installed")
    assert "no-such-tool is not installed" in str(stopped.value)


def test_jupyter_lists_the_lab_extension_enabled_and_ok():
    listing = jupyter("labextension", "list")
    line = next((line for line in listing.splitlines() if "bytenite-nb" in line), None)
    assert line is not None, listing
    assert re.search(r"bytenite-nb v\S+ enabled\s+OK", line), line


def test_jupyter_lists_the_server_extension_enabled_and_ok():
    listing = jupyter("server", "extension", "list")
    assert re.search(r"bytenite_nb\.server\s+enabled", listing), listing
    assert re.search(r"bytenite_nb\.server\s+OK", listing), listing


def test_settings_schema_declares_what_the_sidebar_reads():
    schema = json.loads((LABEXTENSION / "schema" / "plugin.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert set(schema["properties"]) == {"pollInterval", "defaultCluster", "showCluster"}
    defaults = {name: prop["default"] for name, prop in schema["properties"].items()}
    assert defaults == {"pollInterval": 2, "defaultCluster": "", "showCluster": True}
    jsonschema.validate({"pollInterval": 0.5, "defaultCluster": "tcp://127.0.0.1:8786"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"pollInterval": 0}, schema)
    # The built extension carries the same schema, under the plugin id the code loads.
    built = REPO / "bytenite_nb" / "labextension" / "schemas" / "bytenite-nb" / "plugin.json"
    assert json.loads(built.read_text()) == schema
    assert "'bytenite-nb:plugin'" in (LABEXTENSION / "src" / "index.ts").read_text()


def test_jest_suite_of_the_extension_passes():
    require("npm", "Node.js/npm is not installed: the extension's Jest tests cannot run")
    if not (LABEXTENSION / "node_modules" / ".bin" / "jest").exists():
        pytest.fail("labextension/node_modules is missing: run scripts/setup (scripts/setup.d/40-labextension.sh)")
    done = subprocess.run(["npx", "jest", "--ci"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable})
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert re.search(r"Tests:\s+\d+ passed, \d+ total", report), report


@pytest.mark.slow
@pytest.mark.timeout(1500)  # npm install and a production build: minutes on a busy machine
def test_a_wheel_built_from_a_clean_copy_ships_both_extensions(tmp_path):
    """What `pip install .` does on a machine with only the sources: npm packages,
    the production build, and the wheel's shared data."""
    require("npm", "Node.js/npm is not installed: the wheel cannot build the extension")
    source = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-5000:]
    wheel = next((tmp_path / "dist").glob("bytenite_nb-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/data/")[0] + "/data/" for n in names if ".data/data/" in n)
    share = data + "share/jupyter/labextensions/bytenite-nb/"
    for expected in ("package.json", "install.json", "schemas/bytenite-nb/plugin.json", "static/style.js"):
        assert share + expected in names, expected
    assert any(n.startswith(share + "static/remoteEntry.") for n in names)
    assert data + "etc/jupyter/jupyter_server_config.d/bytenite_nb.json" in names
    config = json.loads(zipfile.ZipFile(wheel).read(data + "etc/jupyter/jupyter_server_config.d/bytenite_nb.json"))
    assert config == {"ServerApp": {"jpserver_extensions": {"bytenite_nb.server": True}}}
    assert "bytenite_nb/server/handlers.py" in names
