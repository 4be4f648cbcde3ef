"""A real JupyterLab and a real browser, for end-to-end tests of the UI.

- ``jupyterlab_server`` (module scope): JupyterLab started by the test on
  127.0.0.1 with a random token, a temporary root dir, its own
  ``BYTENITE_NB_HOME``, settings and workspaces dirs, serving this checkout:
  its Python package first on the path and its built extension
  (``bytenite_nb/labextension``) before any installed copy. Yields a
  :class:`JupyterLabServer` (``.url``, ``.token``, ``.root_dir``, ``.home``,
  ``.api()``, ``.write_settings()``).
- ``chromium_browser`` (session scope): Debian's Chromium driven by
  Playwright through ``executable_path`` (no browser download; the network
  is closed, so everything that calls home is switched off).
- ``lab_page``: a logged-in Playwright page on ``jupyterlab_server`` with the
  JupyterLab shell ready. Its console errors go to ``test-artifacts/``, and a
  screenshot is taken there when the test fails.
- ``screenshot``: ``screenshot(page, "name")`` saves ``test-artifacts/name.png``.
- ``wait_until_ready(page)``: after ``page.reload()``, wait for JupyterLab to
  have started its plugins and restored its layout.
- ``execute_command(page, "docmanager:open", {"path": ...})`` runs a
  JupyterLab command by id (the app is exposed as ``window.jupyterapp``).

A machine without Chromium or the playwright package skips these tests; CI
(``BYTENITE_NB_REQUIRE_SYSTEM=1``) fails them instead.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, missing, require

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"

# Flags for a browser on a closed network: no first-run UI, no background
# traffic, no GPU, and no sandbox (tests run as root in CI).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

SERVER_START_SECONDS = 120
LAB_READY_MS = 120_000


@dataclass
class JupyterLabServer:
    """A JupyterLab process started by a test."""

    url: str  # "http://127.0.0.1:PORT/", ends with "/"
    token: str
    root_dir: Path
    home: Path  # BYTENITE_NB_HOME of the server and of the jobs it starts
    settings_dir: Path
    log_path: Path
    process: subprocess.Popen

    def api(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        """An authenticated request to the server: ``(status, decoded JSON or None)``.

        ``path`` is relative to the base URL, e.g. ``"bytenite-nb/jobs"``.
        """
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path.lstrip("/"), data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        return status, (json.loads(text) if text.strip() else None)

    def write_settings(self, plugin_id: str, values: dict) -> None:
        """Set a JupyterLab plugin's user settings; pages opened afterwards use them.

        ``plugin_id`` is ``"package:plugin"``, e.g. ``"bytenite-nb:plugin"``.
        """
        package, _, plugin = plugin_id.partition(":")
        path = self.settings_dir / package / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_until_serving(server: JupyterLabServer) -> None:
    """Wait for the REST API to answer (the process may still be loading extensions)."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {server.process.returncode}:\n{server.log_tail()}")
        try:
            status, _ = server.api("GET", "api/status")
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"JupyterLab did not answer within {SERVER_START_SECONDS}s:\n{server.log_tail()}")


@pytest.fixture(scope="module")
def jupyterlab_server(tmp_path_factory):
    """JupyterLab on loopback with a token and a temporary root dir (see the module doc)."""
    require("jupyter-lab", "JupyterLab is not installed (pip install -e '.[test]')")
    base = tmp_path_factory.mktemp("jupyterlab")
    root_dir, home, settings_dir, workspaces, runtime = (
        base / "root", base / "bnb-home", base / "settings", base / "workspaces", base / "runtime")
    for folder in (root_dir, home, settings_dir, workspaces, runtime):
        folder.mkdir()
    port = free_port()
    token = secrets.token_hex(24)
    env = dict(os.environ)
    # This checkout, not whichever one the editable install or Jupyter's labextension link names.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    labextensions = base / "labextensions"
    labextensions.mkdir()
    built = REPO_ROOT / "bytenite_nb" / "labextension"
    if (built / "package.json").exists():
        (labextensions / "bytenite-nb").symlink_to(built, target_is_directory=True)
    env.update({
        "BYTENITE_NB_HOME": str(home),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        # the token reaches the server through the environment, not the command line (ps shows that)
        "JUPYTER_TOKEN": token,
    })
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={workspaces}",
        # found before the installed extensions: the first of a name wins
        f"--LabApp.extra_labextensions_path={labextensions}",
        # nothing may call out: no update check, no news feed
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
        # window.jupyterapp: tests run commands by id (see execute_command)
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:  # CI runs as root
        command.append("--allow-root")
    log_path = base / "jupyterlab.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root_dir,
                               start_new_session=True)
    server = JupyterLabServer(url=f"http://127.0.0.1:{port}/", token=token, root_dir=root_dir, home=home,
                              settings_dir=settings_dir, log_path=log_path, process=process)
    # The news prompt would cover part of the page.
    server.write_settings("@jupyterlab/apputils-extension:notification", {"fetchNews": "false"})
    try:
        _wait_until_serving(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"jupyterlab-{port}.log").write_text(log_path.read_text(errors="replace").replace(token, "***"))


@pytest.fixture(scope="package")
def chromium_browser():
    """Headless Debian Chromium through Playwright, for the browser tests only: stopped
    when they are done, so its event loop never meets the other tests."""
    executable = require("chromium", "Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package is not installed (pip install -e '.[test]')")
    playwright = sync_playwright().start()
    # Playwright gives every launch a fresh --user-data-dir of its own.
    browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


def wait_until_ready(page) -> None:
    """Wait until JupyterLab in ``page`` has started every plugin and restored its
    layout (after ``page.goto`` or ``page.reload``)."""
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=LAB_READY_MS)
    page.evaluate("() => window.jupyterapp.restored.then(() => null)")
    page.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=LAB_READY_MS)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=LAB_READY_MS)


def execute_command(page, command: str, args: dict | None = None):
    """Run a JupyterLab command by id in ``page`` (e.g. ``"docmanager:open"``,
    ``{"path": "x.ipynb"}``) and return what it resolves to, if JSON-able."""
    return page.evaluate(
        "async ([command, args]) => { const r = await window.jupyterapp.commands.execute(command, args);"
        " try { return JSON.parse(JSON.stringify(r ?? null)); } catch { return null; } }",
        [command, args or {}])


def _artifact_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:120]


@pytest.fixture
def screenshot():
    """``screenshot(page, name)``: save a full-page PNG as ``test-artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{_artifact_name(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so ``lab_page`` knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def lab_page(request, chromium_browser, jupyterlab_server):
    """A logged-in Playwright page with the JupyterLab shell loaded."""
    context = chromium_browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}") if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    # The token logs the browser in (JupyterLab turns it into a cookie and drops it from the URL).
    page.goto(f"{jupyterlab_server.url}lab?token={jupyterlab_server.token}")
    wait_until_ready(page)
    try:
        yield page
    finally:
        name = _artifact_name(request.node.name)
        ARTIFACTS.mkdir(exist_ok=True)
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"), full_page=True)
            except Exception:  # the page may be gone; the report already says why
                pass
        if console:
            (ARTIFACTS / f"{name}.console.log").write_text(
                "\n".join(console).replace(jupyterlab_server.token, "***") + "\n")
        context.close()
