"""End to end, in a real browser: JupyterLab with the installed extension,
headless Chromium, a job made in the job editor and followed in the sidebar.

Screenshots of each step go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import REPO_ROOT, execute_command, wait_until_ready

POEM = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(400))
JOB_DEADLINE_MS = 180_000  # a ceiling for a stuck job, not a performance assertion


@pytest.fixture(scope="module")
def lab(jupyterlab_server):
    """The server, with input data in its root and a fast poll interval."""
    (jupyterlab_server.root_dir / "data").mkdir()
    (jupyterlab_server.root_dir / "data" / "poem.txt").write_text(POEM)
    jupyterlab_server.write_settings("bytenite-nb:plugin", {"pollInterval": 0.5})
    return jupyterlab_server


def open_sidebar(page):
    """Show the ByteNite sidebar (its command always shows it; a tab click toggles)."""
    execute_command(page, "bytenite-nb:open-sidebar")
    page.wait_for_selector(".bnb-Sidebar", state="visible")


def palette_commands(page, text: str) -> list[str]:
    """The ids of the command palette's items matching ``text``."""
    # Imported here: without playwright, the lab_page fixture skips (fails in CI) first.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    search = page.locator(".lm-CommandPalette-input")
    for attempt in range(5):
        execute_command(page, "apputils:activate-command-palette")
        try:
            # The palette closes when it loses focus (a restored tab may take it): open it again.
            search.fill(text, timeout=5000)
            page.locator(".lm-CommandPalette-item").first.wait_for(timeout=5000)
            ids = page.eval_on_selector_all(".lm-CommandPalette-item", "items => items.map(i => i.dataset.command)")
            break
        except PlaywrightTimeout:
            if attempt == 4:
                raise
    search.press("Escape")
    return ids


def form_field(page, suffix: str):
    """The input of the job form whose rjsf id ends with ``suffix``."""
    return page.locator(f'.bnb-JobForm [id$="{suffix}"]').first


def raw_json(page) -> str:
    return page.locator(".bnb-RawJSON .cm-content").inner_text()


def test_make_a_job_in_the_editor_run_it_and_see_it_complete(lab, lab_page, screenshot):
    page = lab_page

    # The sidebar, from its tab: no jobs yet, the component catalog with params docs.
    page.click('.jp-SideBar li[data-id="bytenite-nb-sidebar"]')
    page.wait_for_selector(".bnb-Sidebar", state="visible")
    page.wait_for_selector('.bnb-Section[data-section="jobs"] >> text=No jobs yet')
    page.click('.bnb-Component[data-component="partitioner:split-lines"] .bnb-Component-name')
    page.wait_for_selector('.bnb-Component[data-component="partitioner:split-lines"] .bnb-Params >> text=chunk_size')
    page.wait_for_selector('.bnb-Cluster[data-kind="local"]')
    screenshot(page, "lab-1-sidebar")

    # New job: in File > New, and on the launcher, which makes a job file and opens it in the job editor.
    page.click('.lm-MenuBar-item:has-text("File")')
    page.hover('.lm-Menu-item:has-text("New")')
    page.wait_for_selector('.lm-Menu-item[data-command="bytenite-nb:new-job"]:has-text("ByteNite Job")')
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.click('.jp-LauncherCard:has-text("ByteNite Job")')
    page.wait_for_selector(".bnb-JobEditor .bnb-JobForm form")
    assert (lab.root_dir / "untitled.bnjob.json").exists()
    page.wait_for_selector('.bnb-Step[data-step="partitioner"] >> text=split-lines')

    # Fill the form; the raw JSON follows.
    form_field(page, "_name").fill("upper-poem")
    form_field(page, "_dataSource_params_path").fill("data/poem.txt")
    form_field(page, "_dataDestination_params_path").fill("out/")
    form_field(page, "_params_partitioner_chunk_size").fill("2048")
    form_field(page, "_params_assembler_output_name").fill("poem.txt")
    page.wait_for_function(
        "() => document.querySelector('.bnb-RawJSON .cm-content').innerText.includes('\"chunk_size\": 2048')")
    assert '"name": "upper-poem"' in raw_json(page)
    page.wait_for_selector('.bnb-Step[data-step="dataSource"] >> text=data/poem.txt')

    # Edit the raw JSON; the form follows.
    job = json.loads(raw_json(page))
    job["description"] = "Typed in the raw JSON view"
    page.locator(".bnb-RawJSON .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(json.dumps(job, indent=2))
    page.wait_for_function(
        "() => { const f = document.querySelector('.bnb-JobForm textarea[id$=\"_description\"]');"
        " return f && f.value === 'Typed in the raw JSON view'; }")
    screenshot(page, "lab-2-editor-filled")

    # Validate: an error names its field and marks its box in the diagram...
    form_field(page, "_params_partitioner_chunk_size").fill("0")
    page.click(".bnb-Toolbar-validate button, button.bnb-Toolbar-validate")
    page.wait_for_selector('.bnb-EditorStatus[data-status="error"]')
    page.wait_for_selector('.bnb-FieldErrors li[data-field="params.partitioner.chunk_size"]')
    page.wait_for_selector('.bnb-Step-error[data-step="partitioner"]')
    screenshot(page, "lab-3-validation-error")
    # ... and once fixed the job is valid.
    form_field(page, "_params_partitioner_chunk_size").fill("2048")
    page.click(".bnb-Toolbar-validate button, button.bnb-Toolbar-validate")
    page.wait_for_selector('.bnb-EditorStatus[data-status="ok"] >> text=Valid: split-lines')
    assert page.locator(".bnb-Step-error").count() == 0

    # Plan: the chunk preview.
    page.click(".bnb-Toolbar-plan button, button.bnb-Toolbar-plan")
    status = page.wait_for_selector('.bnb-EditorStatus[data-status="ok"] >> text=/Plan: \\d+ chunk/')
    chunks = int(re.search(r"Plan: (\d+) chunk", status.inner_text()).group(1))
    assert chunks > 1
    assert page.locator(".bnb-Plan .bnb-Chunks tbody tr").count() == chunks
    # ... and the first lines of the first chunk, as the app will see them.
    sample = page.wait_for_selector('.bnb-PlanSample[data-kind="text"]')
    assert "First lines of chunk 0" in sample.inner_text()
    assert POEM.splitlines()[0] in sample.inner_text()
    screenshot(page, "lab-4-plan")

    # Run, double-clicked: the job file is saved and one job shows up in the sidebar.
    submits = []
    page.on("request", lambda r: submits.append(r.url) if r.method == "POST"
            and re.search(r"/bytenite-nb/jobs(\?|$)", r.url) else None)
    page.dblclick(".bnb-Toolbar-run button, button.bnb-Toolbar-run")
    started = page.wait_for_selector('.bnb-EditorStatus[data-status="ok"] >> text=Started job')
    job_id = re.search(r"Started job (\S+?):", started.inner_text()).group(1)
    saved = json.loads((lab.root_dir / "untitled.bnjob.json").read_text())
    assert saved["name"] == "upper-poem" and saved["description"] == "Typed in the raw JSON view"
    page.wait_for_selector(f'.bnb-Job[data-job-id="{job_id}"]')
    assert len(submits) == 1, submits
    screenshot(page, "lab-5-submitted")

    # The job does not depend on the page: reload, and follow it to COMPLETE.
    page.reload()
    wait_until_ready(page)
    open_sidebar(page)
    row = page.wait_for_selector(f'.bnb-Job[data-job-id="{job_id}"][data-state="COMPLETE"]', timeout=JOB_DEADLINE_MS)
    assert f"{chunks}/{chunks} done" in row.inner_text()
    screenshot(page, "lab-6-complete")
    assert (lab.root_dir / "out" / "poem.txt").read_text() == POEM

    # Its output location opens in the file browser.
    page.click(f'.bnb-Job[data-job-id="{job_id}"] button[data-action="output"]')
    page.wait_for_selector('.jp-FileBrowser .jp-BreadCrumbs >> text=out')
    page.wait_for_selector('.jp-FileBrowser .jp-DirListing-item:has-text("poem.txt")')
    open_sidebar(page)

    # The job's panel: every chunk DONE, the output listed.
    page.click(f'.bnb-Job[data-job-id="{job_id}"] button[data-action="open"]')
    page.wait_for_selector(f'.bnb-Detail[data-job-id="{job_id}"][data-state="COMPLETE"]')
    assert page.locator('.bnb-Detail .bnb-Chunks tr[data-state="DONE"]').count() == chunks
    page.wait_for_selector(".bnb-Detail .bnb-Outputs >> text=out/poem.txt")
    screenshot(page, "lab-7-job-panel")
    assert_panel_asks_no_more(page, job_id)


def assert_panel_asks_no_more(page, job_id: str) -> None:
    """The panel of an ended job does not ask for it again: while the sidebar's
    jobs list (same poll interval) is asked three more times, the job is asked 0 times."""
    asked = []
    page.on("request", lambda r: asked.append(r.url) if f"/bytenite-nb/jobs/{job_id}?" in r.url else None)
    for _ in range(3):
        page.wait_for_event("request", lambda r: "/bytenite-nb/jobs?limit=" in r.url)
    assert asked == []


def test_a_big_jobs_panel_pages_its_chunks(lab, on_session_cluster, lab_page, screenshot):
    page = lab_page
    job_path = write_job(lab, "big", "big", "identity")
    job = json.loads((lab.root_dir / job_path).read_text())
    job["params"]["partitioner"]["chunk_size"] = 128
    status, body = lab.api("POST", "bytenite-nb/jobs", {"job": job, "path": job_path, "id": "big-poem",
                                                         "scheduler": on_session_cluster.scheduler.address})
    assert status == 201, body
    close_all_tabs(page)
    open_sidebar(page)  # its jobs list keeps asking at the same interval as the panel would
    execute_command(page, "bytenite-nb:open-job", {"id": "big-poem"})
    panel = '.bnb-Detail[data-job-id="big-poem"]'
    page.wait_for_selector(f'{panel}[data-state="COMPLETE"]', timeout=JOB_DEADLINE_MS)
    status, detail = lab.api("GET", "bytenite-nb/jobs/big-poem")
    total = detail["progress"]["total"]
    assert total > 100 and detail["chunkPage"]["total"] == total
    page.wait_for_selector(f"{panel} .bnb-Pager >> text=1–100 of {total}")
    assert page.locator(f"{panel} .bnb-Chunks tbody tr").count() == 100
    assert page.locator(f'{panel} button[data-action="previous-page"]').is_disabled()
    page.click(f'{panel} button[data-action="next-page"]')
    page.wait_for_selector(f"{panel} .bnb-Pager >> text=101–{min(200, total)} of {total}")
    page.wait_for_selector(f'{panel} .bnb-Chunks tbody tr[data-chunk="100"]')
    assert page.locator(f'{panel} .bnb-Chunks tbody tr[data-chunk="99"]').count() == 0
    screenshot(page, "lab-13-chunk-pages")
    assert_panel_asks_no_more(page, "big-poem")


LINE_BYTES = 9  # "row 0000\n": a chunk of one line covers in.txt[9k:9k+9]


def editor_page_size() -> int:
    """The editor's plan page (PLAN_PAGE_SIZE in labextension/src/api.ts)."""
    source = (REPO_ROOT / "labextension" / "src" / "api.ts").read_text()
    return int(re.search(r"export const PLAN_PAGE_SIZE = (\d+);", source).group(1))


def plan_rows(page) -> list[tuple[str, str]]:
    """The plan's rows on the page: (chunk number, what it covers)."""
    return page.eval_on_selector_all(
        ".bnb-Plan .bnb-Chunks tbody tr",
        "rows => rows.map(r => [r.cells[0].innerText.trim(), r.cells[2].innerText.trim()])")


def assert_plan_page(page, first: int, total: int, size: int) -> None:
    """The plan shows chunks ``first``.. (a page of ``size`` at most, fewer at the end)."""
    shown = min(size, total - first)
    page.wait_for_selector(f'.bnb-Plan .bnb-Pager[data-offset="{first}"] >> text={first + 1}–{first + shown} of {total}')
    rows = plan_rows(page)
    assert len(rows) == shown <= size
    assert [int(number) for number, _ in rows] == list(range(first, first + shown))
    assert rows[0][1] == f"in.txt[{first * LINE_BYTES}:{(first + 1) * LINE_BYTES}]"


def test_the_editor_pages_through_a_plan_of_many_chunks(lab, lab_page, screenshot):
    page = lab_page
    size, total = editor_page_size(), 2500
    base = lab.root_dir / "long"
    (base / "data").mkdir(parents=True)
    (base / "data" / "in.txt").write_text("".join(f"row {i:04d}\n" for i in range(total)))
    job = {
        "name": "long",
        "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "data/in.txt"}},
        "partitioner": "split-lines",
        "app": "identity",
        "assembler": "concat",
        "dataDestination": {"dataSourceDescriptor": "file", "params": {"path": "out/"}},
        "params": {"partitioner": {"lines_per_chunk": 1}, "app": {}, "assembler": {}},
    }
    (base / "long.bnjob.json").write_text(json.dumps(job, indent=2))
    close_all_tabs(page)
    open_path(page, "long/long.bnjob.json")
    page.wait_for_selector(".bnb-JobEditor .bnb-JobForm form")
    plans = []
    page.on("request", lambda r: plans.append(json.loads(r.post_data))
            if r.method == "POST" and urlsplit(r.url).path.endswith("/bytenite-nb/plan") else None)

    # Plan: the first page and the count of them all.
    page.click(".bnb-Toolbar-plan button, button.bnb-Toolbar-plan")
    page.wait_for_selector(f'.bnb-EditorStatus[data-status="ok"] >> text=Plan: {total} chunk(s)')
    assert_plan_page(page, 0, total, size)
    assert page.locator('.bnb-Plan button[data-action="previous-page"]').is_disabled()
    page.locator(".bnb-Plan .bnb-Pager").scroll_into_view_if_needed()
    screenshot(page, "lab-15-plan-first-page")

    # Next, and back.
    page.click('.bnb-Plan button[data-action="next-page"]')
    assert_plan_page(page, size, total, size)
    page.click('.bnb-Plan button[data-action="previous-page"]')
    assert_plan_page(page, 0, total, size)

    # From chunk: a page from any chunk, by its Go button or Enter.
    page.fill('.bnb-Plan input[data-action="page-from"]', "1234")
    page.click('.bnb-Plan button[data-action="page-go"]')
    assert_plan_page(page, 1234, total, size)
    page.locator(".bnb-Plan .bnb-Pager").scroll_into_view_if_needed()
    screenshot(page, "lab-16-plan-from-chunk")
    page.fill('.bnb-Plan input[data-action="page-from"]', str(total - 10))
    page.press('.bnb-Plan input[data-action="page-from"]', "Enter")
    assert_plan_page(page, total - 10, total, size)  # the last, short page
    assert page.locator('.bnb-Plan button[data-action="next-page"]').is_disabled()
    # Past the end: the last chunk's page; not a number: Go is off.
    page.fill('.bnb-Plan input[data-action="page-from"]', "99999")
    page.click('.bnb-Plan button[data-action="page-go"]')
    assert_plan_page(page, total - 1, total, size)
    page.fill('.bnb-Plan input[data-action="page-from"]', "")
    assert page.locator('.bnb-Plan button[data-action="page-go"]').is_disabled()

    # Each move asked the server for one page of the same job.
    assert [(p["offset"], p["limit"]) for p in plans] == [
        (0, size), (size, size), (0, size), (1234, size), (total - 10, size), (total - 1, size)]
    assert all(p["job"] == plans[0]["job"] and p["path"] == "long/long.bnjob.json" for p in plans)


FLAKY_APP = """\
import os, pathlib, sys, time
here = pathlib.Path(__file__).parent
if os.environ["CHUNK_NUMBER"] == "1" and not (here / "fixed").exists():
    sys.exit("chunk 1 cannot be done until the file 'fixed' exists")
if (here / "slow").exists():
    time.sleep(600)
data = pathlib.Path(os.environ["TASK_DIR"], "data.bin").read_bytes()
pathlib.Path(os.environ["TASK_RESULTS_DIR"], "out.txt").write_bytes(data.upper())
"""


def write_job(lab, folder: str, name: str, app) -> str:
    """A job file (and its input) in the server root; returns its path there."""
    base = lab.root_dir / folder
    (base / "data").mkdir(parents=True, exist_ok=True)
    (base / "data" / "in.txt").write_text(POEM)
    job = {
        "name": name,
        "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "data/in.txt"}},
        "partitioner": "split-lines",
        "app": app,
        "assembler": "concat",
        "dataDestination": {"dataSourceDescriptor": "file", "params": {"path": "out/"}},
        "params": {"partitioner": {"chunk_size": 4096}, "app": {}, "assembler": {"output_name": "out.txt"}},
        "config": {"maxTaskRetries": 0, "retryBackoff": 0},
    }
    (base / f"{name}.bnjob.json").write_text(json.dumps(job, indent=2))
    return f"{folder}/{name}.bnjob.json"


def close_all_tabs(page):
    """Close every main-area tab, dropping unsaved changes (earlier tests' tabs
    come back with the workspace; a notebook turns dirty when its kernel starts)."""
    page.evaluate(
        "() => { for (const w of Array.from(window.jupyterapp.shell.widgets('main'))) {"
        " if (w.context) { w.context.model.dirty = false; } w.close(); } }")
    # JupyterLab opens a launcher when the main area empties.
    page.wait_for_function(
        "() => Array.from(window.jupyterapp.shell.widgets('main')).every(w => w.id.startsWith('launcher'))")


def open_path(page, path: str):
    """Open a file in its default editor (no page reload)."""
    execute_command(page, "docmanager:open", {"path": path})
    name = path.rsplit("/", 1)[-1]
    page.wait_for_selector(f'.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current:has-text("{name}")')


@pytest.fixture
def on_session_cluster(lab, client):
    """Jobs run on the session's Dask cluster, for pages opened after this fixture."""
    lab.write_settings("bytenite-nb:plugin", {"pollInterval": 0.5, "defaultCluster": client.scheduler.address})
    yield client
    lab.write_settings("bytenite-nb:plugin", {"pollInterval": 0.5})


@pytest.fixture
def cluster_setting(lab, client):
    """Jobs run on the session's Dask cluster and the cluster section is hidden,
    for pages opened after this fixture."""
    lab.write_settings("bytenite-nb:plugin", {"pollInterval": 0.5, "defaultCluster": client.scheduler.address,
                                              "showCluster": False})
    yield client.scheduler.address
    lab.write_settings("bytenite-nb:plugin", {"pollInterval": 0.5})


def test_insert_job_code_and_export_a_papermill_notebook_that_runs(lab, on_session_cluster, lab_page, screenshot,
                                                                   tmp_path):
    page, client = lab_page, on_session_cluster
    # The cluster section names the default cluster of the settings and links its dashboard.
    open_sidebar(page)
    page.wait_for_selector(f'.bnb-Cluster[data-kind="scheduler"] >> text={client.scheduler.address}')
    assert page.locator(f'.bnb-Cluster a[href="{client.dashboard_link}"]').count() == 1

    job_path = write_job(lab, "jobs", "shout", "identity")
    (lab.root_dir / "notebooks").mkdir()
    (lab.root_dir / "notebooks" / "analysis.ipynb").write_text(json.dumps({
        "cells": [{"cell_type": "code", "id": "first", "execution_count": None, "metadata": {}, "outputs": [],
                   "source": "# analysis"}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))

    # The commands are in the palette.
    assert {"bytenite-nb:new-job", "bytenite-nb:insert-job-code", "bytenite-nb:export-papermill"} <= set(
        palette_commands(page, "job"))

    # A notebook, then the job file in the job editor (the notebook tab stays open).
    close_all_tabs(page)
    open_path(page, "notebooks/analysis.ipynb")
    page.wait_for_selector(".jp-NotebookPanel")
    open_path(page, job_path)
    page.wait_for_selector(".bnb-JobEditor .bnb-JobForm form")
    page.wait_for_selector('.bnb-Step[data-step="dataSource"] >> text=data/in.txt')

    execute_command(page, "bytenite-nb:insert-job-code")
    cell = page.locator(".jp-NotebookPanel .jp-Cell .cm-content", has_text="bn.Job.from_dict(")
    cell.wait_for()
    code = cell.inner_text()
    assert 'base_dir="../jobs"' in code and '"name": "shout"' in code
    execute_command(page, "docmanager:save")  # the notebook is the active tab now
    saved = json.loads((lab.root_dir / "notebooks" / "analysis.ipynb").read_text())
    assert any("bn.Job.from_dict(" in "".join(c["source"]) for c in saved["cells"])
    screenshot(page, "lab-8-inserted-code")

    page.click('.lm-DockPanel-tabBar .lm-TabBar-tab:has-text("shout.bnjob.json")')
    page.wait_for_selector(".bnb-JobEditor", state="visible")
    execute_command(page, "bytenite-nb:export-papermill")
    page.wait_for_selector('.lm-DockPanel-tabBar .lm-TabBar-tab:has-text("shout.ipynb")')
    page.wait_for_selector('.jp-NotebookPanel .jp-Cell .cm-content >> text=job_id = None')
    screenshot(page, "lab-9-papermill-notebook")
    exported = lab.root_dir / "jobs" / "shout.ipynb"
    assert exported.exists()

    # The exported notebook runs as a papermill batch job, with its parameters.
    out = tmp_path / "shout-run.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", str(exported), str(out), "-p", "job_id", "shout-batch",
         "-p", "scheduler", client.scheduler.address, "--cwd", str(exported.parent), "-k", "python3"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "BYTENITE_NB_HOME": str(lab.home)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    printed = "".join("".join(o["text"]) if isinstance(o.get("text"), list) else o.get("text", "") for o in outputs)
    assert "shout-batch COMPLETE" in printed
    assert (lab.root_dir / "jobs" / "out" / "out.txt").read_text() == POEM


def test_rerun_failed_chunks_and_cancel_from_the_sidebar(lab, cluster_setting, lab_page, screenshot):
    page = lab_page
    (lab.root_dir / "flaky").mkdir()
    (lab.root_dir / "flaky" / "app.py").write_text(FLAKY_APP)
    job_path = write_job(lab, "flaky", "flaky", {"command": [sys.executable, "app.py"]})
    close_all_tabs(page)
    open_path(page, job_path)
    page.wait_for_selector(".bnb-JobEditor .bnb-JobForm form")
    open_sidebar(page)
    assert page.locator('.bnb-Section[data-section="cluster"]').count() == 0  # showCluster: false

    # A run with a failing chunk: FAILED, with the chunk's error one click away.
    page.click(".bnb-Toolbar-run button, button.bnb-Toolbar-run")
    started = page.wait_for_selector('.bnb-EditorStatus[data-status="ok"] >> text=Started job')
    job_id = re.search(r"Started job (\S+?):", started.inner_text()).group(1)
    row = f'.bnb-Job[data-job-id="{job_id}"]'
    page.wait_for_selector(f'{row}[data-state="FAILED"]', timeout=JOB_DEADLINE_MS)
    page.click(f'{row} button[data-action="open"]')
    page.wait_for_selector(f'.bnb-Detail[data-job-id="{job_id}"] >> text={cluster_setting}')
    page.click('.bnb-Detail tr[data-chunk="1"] button[data-action="chunk-error"]')
    page.wait_for_selector(".jp-Dialog >> text=chunk 1 cannot be done until the file 'fixed' exists")
    screenshot(page, "lab-10-chunk-error")
    page.click(".jp-Dialog button.jp-mod-accept")

    # Fix the cause, rerun the failed chunk: COMPLETE.
    (lab.root_dir / "flaky" / "fixed").write_text("")
    page.click(f'{row} button[data-action="rerun"]')
    page.wait_for_selector(f'{row}[data-state="COMPLETE"]', timeout=JOB_DEADLINE_MS)
    assert (lab.root_dir / "flaky" / "out" / "out.txt").read_text() == POEM.upper()
    screenshot(page, "lab-11-rerun-complete")

    # A run that would take ten minutes, cancelled from the sidebar.
    (lab.root_dir / "flaky" / "slow").write_text("")
    page.click('.lm-DockPanel-tabBar .lm-TabBar-tab:has-text("flaky.bnjob.json")')
    form_field(page, "_id").fill("flaky-slow")
    page.click(".bnb-Toolbar-run button, button.bnb-Toolbar-run")
    slow = '.bnb-Job[data-job-id="flaky-slow"]'
    page.wait_for_selector(f'{slow}[data-state="RUNNING"]', timeout=JOB_DEADLINE_MS)
    page.click(f'{slow} button[data-action="cancel"]')
    page.wait_for_selector(f'{slow}[data-state="CANCELLED"]', timeout=JOB_DEADLINE_MS)
    screenshot(page, "lab-12-cancelled")
