"""End to end, in a real browser: JupyterLab with the installed extension,
headless Chromium, a job made in the job editor and followed in the sidebar.

Screenshots of each step go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re

import pytest

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
    """Show the ByteNite sidebar (its tab toggles it, so only click when it is hidden)."""
    tab = page.locator('.jp-SideBar li[data-id="bytenite-nb-sidebar"]')
    tab.wait_for(state="visible")
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    page.wait_for_selector(".bnb-Sidebar", state="visible")


def run_command(page, label: str):
    """Run a command from the command palette by its label."""
    page.keyboard.press("Control+Shift+C")
    search = page.locator(".lm-CommandPalette-input")
    search.wait_for(state="visible")
    search.fill(label)
    page.locator(".lm-CommandPalette-item", has_text=label).first.click()


def form_field(page, suffix: str):
    """The input of the job form whose rjsf id ends with ``suffix``."""
    return page.locator(f'.bnb-JobForm [id$="{suffix}"]').first


def raw_json(page) -> str:
    return page.locator(".bnb-RawJSON .cm-content").inner_text()


def test_make_a_job_in_the_editor_run_it_and_see_it_complete(lab, lab_page, screenshot):
    page = lab_page

    # The sidebar: no jobs yet, the component catalog with params docs.
    open_sidebar(page)
    page.wait_for_selector('.bnb-Section[data-section="jobs"] >> text=No jobs yet')
    page.click('.bnb-Component[data-component="partitioner:split-lines"] .bnb-Component-name')
    page.wait_for_selector('.bnb-Component[data-component="partitioner:split-lines"] .bnb-Params >> text=chunk_size')
    page.wait_for_selector('.bnb-Cluster[data-kind="local"]')
    screenshot(page, "lab-1-sidebar")

    # New job from the launcher: a job file opens in the job editor.
    page.click('.jp-LauncherCard:has-text("New ByteNite Job")')
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
    assert page.locator(".bnb-Plan tbody tr").count() == chunks
    screenshot(page, "lab-4-plan")

    # Run: the job file is saved and the job shows up in the sidebar.
    page.click(".bnb-Toolbar-run button, button.bnb-Toolbar-run")
    started = page.wait_for_selector('.bnb-EditorStatus[data-status="ok"] >> text=Started job')
    job_id = re.search(r"Started job (\S+?):", started.inner_text()).group(1)
    saved = json.loads((lab.root_dir / "untitled.bnjob.json").read_text())
    assert saved["name"] == "upper-poem" and saved["description"] == "Typed in the raw JSON view"
    page.wait_for_selector(f'.bnb-Job[data-job-id="{job_id}"]')
    screenshot(page, "lab-5-submitted")

    # The job does not depend on the page: reload, and follow it to COMPLETE.
    page.reload()
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=120_000)
    open_sidebar(page)
    row = page.wait_for_selector(f'.bnb-Job[data-job-id="{job_id}"][data-state="COMPLETE"]', timeout=JOB_DEADLINE_MS)
    assert f"{chunks}/{chunks} done" in row.inner_text()
    screenshot(page, "lab-6-complete")
    assert (lab.root_dir / "out" / "poem.txt").read_text() == POEM

    # The job's panel: every chunk DONE, the output listed.
    page.click(f'.bnb-Job[data-job-id="{job_id}"] button[data-action="open"]')
    page.wait_for_selector(f'.bnb-Detail[data-job-id="{job_id}"][data-state="COMPLETE"]')
    assert page.locator('.bnb-Detail .bnb-Chunks tr[data-state="DONE"]').count() == chunks
    page.wait_for_selector(".bnb-Detail .bnb-Outputs >> text=out/poem.txt")
    screenshot(page, "lab-7-job-panel")
