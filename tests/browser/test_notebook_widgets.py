"""In a real browser: JupyterLab opens the first example notebook, runs it, and the
job builder and the live progress widget render (screenshots in test-artifacts/)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXAMPLE = "01_first_job_word_count.ipynb"
RUN_DEADLINE_MS = 240_000  # a ceiling for a stuck run (a local cluster starts in the kernel), not a timing check


def run_command(page, label: str) -> None:
    """Run a JupyterLab command from the command palette by its label."""
    page.keyboard.press("Control+Shift+C")
    search = page.locator(".lm-CommandPalette-input")
    search.wait_for(state="visible")
    search.fill(label)
    page.locator(".lm-CommandPalette-item", has_text=label).first.click()


def wait_for_idle_kernel(page) -> None:
    """Wait until the notebook's kernel is connected and idle, answering JupyterLab's
    kernel dialog if it asks (it may, when the page opens while the session starts)."""
    idle = page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle")
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    deadline = time.monotonic() + RUN_DEADLINE_MS / 1000
    while time.monotonic() < deadline:
        if dialog.count() and dialog.first.is_visible():
            dialog.locator("button", has_text="Select").first.click()
        if idle.count() and idle.first.is_visible():
            return
        page.wait_for_timeout(250)
    raise AssertionError("the notebook's kernel did not become idle")


def test_example_notebook_shows_the_builder_and_the_progress_widget(jupyterlab_server, lab_page, screenshot):
    root = jupyterlab_server.root_dir
    shutil.copy(NOTEBOOKS / EXAMPLE, root / EXAMPLE)
    shutil.copytree(NOTEBOOKS / "apps" / "wordcount", root / "apps" / "wordcount")
    page = lab_page
    page.goto(f"{jupyterlab_server.url}lab/tree/{EXAMPLE}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", state="visible")
    wait_for_idle_kernel(page)
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    run_command(page, "Run All Cells")
    try:
        # The builder: tabs for every part of the job, the source listing, the buttons.
        builder = page.locator(".bytenite-nb-builder")
        builder.wait_for(state="visible", timeout=RUN_DEADLINE_MS)
        for title in ("Source", "Partitioner", "App", "Assembler", "Destination", "Config", "Cluster"):
            assert builder.locator(".lm-TabBar-tab", has_text=title).count() == 1, title
        builder.locator("text=6 file(s)").wait_for(state="visible")
        for label in ("Validate", "Plan", "Run", "Show code", "Save"):
            assert builder.locator("button", has_text=label).count() >= 1, label
        builder.scroll_into_view_if_needed()
        screenshot(page, "notebook-widgets-builder")

        # The progress widget follows the job to the end, then previews the output.
        progress = page.locator(".bytenite-nb-progress")
        progress.wait_for(state="visible", timeout=RUN_DEADLINE_MS)
        progress.locator("text=COMPLETE").first.wait_for(state="visible", timeout=RUN_DEADLINE_MS)
        progress.locator("text=word_counts.tsv").first.wait_for(state="visible")
        assert progress.locator(".widget-hprogress, .progress-bar, progress").count() >= 1
        assert progress.locator("a", has_text="Dask dashboard").count() == 1
        assert "12/12 done" in progress.inner_text().replace("\n", " ") or "/12 done" in progress.inner_text()
        assert progress.locator("table.bytenite-nb-table").count() == 1  # the TSV's first rows as a table
        # Its chunk grid: a canvas of one cell per chunk, coloured by state; a click shows one chunk.
        canvas = progress.locator("canvas.bnb-grid-canvas")
        canvas.wait_for(state="visible")
        assert canvas.get_attribute("data-cells") == "12"
        done = canvas.evaluate("c => Array.from(c.getContext('2d').getImageData(2, 2, 1, 1).data.slice(0, 3))")
        assert done == [0x27, 0xAE, 0x60]
        canvas.click(position={"x": 2 + 6 * 5, "y": 2})
        detail = progress.locator('.bnb-grid-detail[data-chunk="5"][data-state="DONE"]')
        detail.wait_for(state="visible")
        assert detail.locator(".bnb-grid-attempts").inner_text() == "attempts: 1"
        worker = detail.locator(".bnb-grid-worker").inner_text()
        assert re.fullmatch(r"worker: (tcp|tls|inproc)://\S+", worker), worker
        counts = progress.locator(".bnb-grid-worker-count").all_inner_texts()
        assert counts and sum(int(c.split(": ")[1].split()[0]) for c in counts) == 12, counts
        assert worker.removeprefix("worker: ") in " ".join(counts)
        progress.scroll_into_view_if_needed()
        screenshot(page, "notebook-widgets-progress")

        # The last cell checked the job's counts against a direct count and printed them.
        page.locator(".jp-OutputArea-output", has_text="top words:").wait_for(state="visible",
                                                                               timeout=RUN_DEADLINE_MS)
        assert (root / "work" / "01-word-count" / "output" / "word_counts.tsv").exists()
    finally:
        # A clean shutdown lets the kernel close the local cluster it started.
        status, kernels = jupyterlab_server.api("GET", "api/kernels")
        for kernel in kernels or []:
            jupyterlab_server.api("DELETE", f"api/kernels/{kernel['id']}")
