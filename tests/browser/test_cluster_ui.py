"""In a real browser: the sidebar's Dask Gateway clusters (from a real
dask-gateway-server on loopback) scaled, submitted to from the job editor's
cluster choice and shut down; and the chunk grid of a real 10,000-chunk job
drawn on a canvas, one of its cells clicked for the chunk's attempts and error.

Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import uuid

import dask
import pytest

from bytenite_nb import gateway
from tests.browser.conftest import execute_command
from tests.browser.test_lab_extension import close_all_tabs, open_path, open_sidebar, write_job
from tests.test_chunk_grid import BAD_CHUNK, CHUNKS, run_grid_job
from tests.test_gateway import gateway_env, gateway_server, gateway_settings, shared_cluster  # noqa: F401

WAIT_MS = 180_000  # a ceiling for clusters and jobs, not a performance assertion
GRID_JOB = "grid-in-lab"


@pytest.fixture(scope="module")
def user(gateway_server):  # noqa: F811
    """A Gateway user, in the environment JupyterLab starts with (so its server and
    job processes use it, with the local backend's shared disk) and in this process's
    Dask config; ``shared_cluster``
    makes its running cluster of one worker."""
    name = f"user-{uuid.uuid4().hex[:8]}"
    before = dict(os.environ)
    os.environ.update({k: v for k, v in gateway_env(gateway_server, name).items() if k.startswith(("DASK_GATEWAY", "DASK_BYTENITE_NB"))})
    with dask.config.set(gateway_settings(gateway_server, name)):
        yield name
    os.environ.clear()
    os.environ.update(before)


@pytest.fixture(scope="module")
def lab(user, jupyterlab_server):
    jupyterlab_server.write_settings("bytenite-nb:plugin", {"pollInterval": 0.5})
    return jupyterlab_server


@pytest.fixture
def team_cluster(shared_cluster):  # noqa: F811
    return shared_cluster


def cluster_workers(name: str) -> set[str]:
    """The addresses of the workers of the Gateway cluster ``name`` now."""
    gw = gateway.gateway()
    try:
        joined = gw.connect(name, shutdown_on_close=False)
        try:
            return set(joined.scheduler_info["workers"])
        finally:
            joined.close(shutdown=False)
    finally:
        gw.close()


def refresh_clusters_until(page, selector: str):
    """Press the cluster section's refresh until ``selector`` shows (workers take a while to join)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(WAIT_MS // 3000):
        try:
            page.wait_for_selector(selector, timeout=3000)
            return
        except PlaywrightTimeout:
            page.click('.bnb-Section[data-section="cluster"] button[title="Look again"]')
    page.wait_for_selector(selector, timeout=1000)


def test_gateway_clusters_are_listed_scaled_submitted_to_and_shut_down(lab, team_cluster, lab_page, screenshot):
    page = lab_page
    target = f"gateway:{team_cluster}"
    row = f'.bnb-ClusterRow[data-target="{target}"]'
    open_sidebar(page)
    refresh_clusters_until(page, f"{row} .bnb-ClusterRow-workers >> text=1 worker")
    dashboard = page.get_attribute(f"{row} a", "href")
    assert dashboard.endswith(f"/clusters/{team_cluster}/status"), dashboard
    screenshot(page, "lab-cluster-1-listed")

    page.fill(f"{row} .bnb-ClusterRow-scale", "2")
    page.click(f'{row} button[data-action="scale"]')
    refresh_clusters_until(page, f"{row} .bnb-ClusterRow-workers >> text=2 workers")

    # Run from the job editor on the cluster chosen in its toolbar.
    close_all_tabs(page)
    job_path = write_job(lab, "gw", "on-gateway", "identity")
    open_path(page, job_path)
    choice = page.locator(".bnb-ClusterChoice").last
    page.wait_for_selector(f'.bnb-ClusterChoice option[value="{target}"]', state="attached")
    values = choice.evaluate("s => Array.from(s.options).map(o => o.value)")
    assert values[:4] == ["", "local", "sync", "gateway"] and target in values, values
    choice.select_option(target)
    page.click(".bnb-Toolbar-run")
    page.wait_for_selector(".bnb-EditorStatus >> text=Started job", timeout=WAIT_MS)
    status, jobs = lab.api("GET", "bytenite-nb/jobs")
    job_id = next(j["id"] for j in jobs["jobs"] if j["name"] == "on-gateway")
    execute_command(page, "bytenite-nb:open-job", {"id": job_id})
    panel = f'.bnb-Detail[data-job-id="{job_id}"]'
    page.wait_for_selector(f'{panel}[data-state="COMPLETE"]', timeout=WAIT_MS)
    page.wait_for_selector(f"{panel} .bnb-Detail-cluster >> text=gateway cluster {team_cluster}")
    assert page.get_attribute(f"{panel} .bnb-Detail-cluster a", "href") == dashboard
    # Which worker ran what: each chunk's worker is one of the cluster's.
    page.wait_for_selector(f"{panel} .bnb-Grid-workers tbody tr")
    workers = page.locator(f"{panel} .bnb-Grid-workers tbody td:first-child").all_inner_texts()
    assert workers and set(workers) <= cluster_workers(team_cluster), workers
    page.click(f"{panel} .bnb-Grid-canvas", position={"x": 3, "y": 3})
    page.wait_for_selector(f'{panel} .bnb-GridChunk[data-chunk="0"]')
    assert page.inner_text(f"{panel} .bnb-GridChunk-worker") in workers
    screenshot(page, "lab-cluster-2-job-on-gateway")

    open_sidebar(page)
    page.click(f'{row} button[data-action="shutdown"]')
    page.wait_for_selector(row, state="detached", timeout=WAIT_MS)
    screenshot(page, "lab-cluster-3-shut-down")


@pytest.fixture(scope="module")
def grid_job(lab):
    """A real job of 10,000 one-line chunks in the server's job store, one of whose
    chunks failed after a retry (:func:`tests.test_chunk_grid.run_grid_job`)."""
    folder = lab.root_dir / "grid"
    folder.mkdir()
    run_grid_job(folder, lab.home, GRID_JOB)
    return GRID_JOB


def cell_colour(page, canvas: str, index: int) -> list[int]:
    """The RGB of the middle of chunk ``index``'s cell on the grid's canvas."""
    return page.eval_on_selector(canvas, """(c, i) => {
        const n = Number(c.dataset.columns), s = Number(c.dataset.cell);
        const d = c.getContext('2d').getImageData((i % n) * s + 2, Math.floor(i / n) * s + 2, 1, 1).data;
        return [d[0], d[1], d[2]]; }""", index)


def test_ten_thousand_chunks_at_a_glance_and_one_clicked(lab, grid_job, lab_page, screenshot):
    page = lab_page
    close_all_tabs(page)
    execute_command(page, "bytenite-nb:open-job", {"id": grid_job})
    panel = f'.bnb-Detail[data-job-id="{grid_job}"]'
    page.wait_for_selector(f'{panel}[data-state="FAILED"]', timeout=WAIT_MS)
    grid = f'{panel} .bnb-Grid[data-cells="{CHUNKS}"]'
    page.wait_for_selector(grid)
    canvas = f"{grid} .bnb-Grid-canvas"
    # One canvas, not ten thousand elements.
    assert page.locator(f"{grid} *").count() < 50
    columns, cell = (int(page.get_attribute(canvas, f"data-{k}")) for k in ("columns", "cell"))
    size = page.eval_on_selector(canvas, "c => [c.width, c.height]")
    assert size == [columns * cell, (CHUNKS // columns) * cell]
    assert cell_colour(page, canvas, 0) == [0x27, 0xAE, 0x60]  # done
    assert cell_colour(page, canvas, BAD_CHUNK) == [0xEB, 0x57, 0x57]  # failed
    assert cell_colour(page, canvas, CHUNKS - 1) == [0x27, 0xAE, 0x60]
    x, y = (BAD_CHUNK % columns) * cell + cell // 2, (BAD_CHUNK // columns) * cell + cell // 2
    page.click(canvas, position={"x": x, "y": y})
    detail = f'{panel} .bnb-GridChunk[data-chunk="{BAD_CHUNK}"][data-state="FAILED"]'
    page.wait_for_selector(detail)
    assert page.inner_text(f"{detail} .bnb-GridChunk-attempts") == "2"
    assert f"line {BAD_CHUNK} is not welcome" in page.inner_text(f"{detail} .bnb-GridChunk-error")
    history = page.locator(f"{detail} .bnb-GridChunk-history li").evaluate_all("l => l.map(i => i.dataset.state)")
    assert history == ["RETRYING", "RUNNING", "FAILED"]
    screenshot(page, "lab-grid-10000-chunks")
