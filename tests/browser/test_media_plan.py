"""In a real browser: the job editor's Plan shows the pictures of a media plan
(thumbnails of the first tiles of an image), served by this checkout's
server extension and drawn by its built extension."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tests.browser.conftest import execute_command


def test_the_editor_plan_shows_the_tile_thumbnails(jupyterlab_server, lab_page, screenshot):
    page, root = lab_page, jupyterlab_server.root_dir
    (root / "media").mkdir()
    ramp = np.add.outer(np.arange(300), np.arange(500)) % 256
    rgb = np.stack([ramp, ramp[::-1], 255 - ramp], axis=-1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(root / "media" / "a.png")
    job = {
        "name": "tiles",
        "partitioner": "image-tiles",
        "app": "identity",
        "assembler": "zip",
        "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "a.png"}},
        "dataDestination": {"dataSourceDescriptor": "file", "params": {"path": "out/"}},
        "params": {"partitioner": {"tile_width": 256, "tile_height": 256}, "app": {}, "assembler": {}},
    }
    (root / "media" / "tiles.bnjob.json").write_text(json.dumps(job, indent=2))
    execute_command(page, "docmanager:open", {"path": "media/tiles.bnjob.json"})
    page.wait_for_selector(".bnb-JobEditor .bnb-JobForm form")

    page.click(".bnb-Toolbar-plan button, button.bnb-Toolbar-plan")
    page.wait_for_selector('.bnb-EditorStatus[data-status="ok"] >> text=/Plan: 4 chunk/')
    sample = page.wait_for_selector('.bnb-PlanSample[data-kind="media"]')
    assert "The first 4 tile(s) of 4" in sample.inner_text()
    images = page.locator('.bnb-PlanPictures[data-media="image"] figure img')
    assert images.count() == 4
    # every picture decoded by the browser, at the size the server says
    page.wait_for_function("() => Array.from(document.querySelectorAll('.bnb-PlanPicture img'))"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    shown = page.eval_on_selector_all(
        ".bnb-PlanPicture img",
        "imgs => imgs.map(i => [i.src.slice(0, 22), i.naturalWidth, i.naturalHeight, i.alt])")
    assert shown == [["data:image/png;base64,", 128, 128, "a.png tile 0,0"],
                     ["data:image/png;base64,", 122, 128, "a.png tile 0,1"],
                     ["data:image/png;base64,", 128, 22, "a.png tile 1,0"],
                     ["data:image/png;base64,", 128, 23, "a.png tile 1,1"]]
    assert page.locator(".bnb-PlanPicture figcaption").all_inner_texts()[0] == "a.png tile 0,0"
    images.first.scroll_into_view_if_needed()
    assert images.first.is_visible()
    screenshot(page, "lab-media-plan-tiles")


def plan_job(root, folder: str, partitioner_params: dict) -> str:
    """A job file planning every file of ``root/folder`` with ``tests.media_plans:TimeWindows``."""
    job = {
        "name": folder.replace("/", "-"),
        "partitioner": "tests.media_plans:TimeWindows",
        "app": "identity",
        "assembler": "concat",
        "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "data/"}},
        "dataDestination": {"dataSourceDescriptor": "file", "params": {"path": "out/"}},
        "params": {"partitioner": partitioner_params, "app": {}, "assembler": {}},
    }
    (root / folder / "plan.bnjob.json").write_text(json.dumps(job, indent=2))
    return f"{folder}/plan.bnjob.json"


def planned_pictures(page, path: str, media: str, chunks: int):
    """Open the job file, press Plan, wait for its pictures to be decoded; return them."""
    execute_command(page, "docmanager:open", {"path": path})
    page.wait_for_selector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current:has-text("plan.bnjob.json")')
    # earlier editors stay open in hidden tabs: only the visible one counts
    page.locator(".bnb-Toolbar-plan button:visible, button.bnb-Toolbar-plan:visible").first.click()
    page.locator(f'.bnb-EditorStatus[data-status="ok"]:visible >> text=/Plan: {chunks} chunk/').wait_for()
    images = page.locator(f'.bnb-PlanPictures[data-media="{media}"] figure img:visible')
    images.first.wait_for()
    page.wait_for_function("() => Array.from(document.querySelectorAll('.bnb-PlanPicture img'))"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    images.first.scroll_into_view_if_needed()
    return images


def test_the_editor_plan_shows_a_waveform_with_its_cuts_and_a_strip_of_frames(jupyterlab_server, lab_page,
                                                                               screenshot):
    from tests.media_plans import tone_wav
    from tests.test_media_preview import clip

    page, root = lab_page, jupyterlab_server.root_dir
    (root / "audio" / "data").mkdir(parents=True)
    tone_wav(root / "audio" / "data" / "tone.wav")
    images = planned_pictures(page, plan_job(root, "audio", {"cuts": [1.5, 3.25], "end": 6.0}), "audio", 3)
    assert images.count() == 1
    # the picture as the browser decoded it: 800 x 120, red lines exactly in the cut columns
    red_columns = images.first.evaluate(
        "img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;"
        " c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);"
        " const d = g.getImageData(0, 60, c.width, 1).data; const out = [];"
        " for (let x = 0; x < c.width; x++) { if (d[4*x] === 204 && d[4*x+1] === 0 && d[4*x+2] === 0) out.push(x); }"
        " return [c.width, c.height, out]; }")
    assert red_columns == [800, 120, [200, 433]]
    assert "tone.wav: 6.0 s, 3 chunk(s), cuts in red" in images.first.get_attribute("alt")
    screenshot(page, "lab-media-plan-waveform")

    (root / "video" / "data").mkdir(parents=True)
    clip(root / "video" / "data")
    images = planned_pictures(page, plan_job(root, "video", {"cuts": [2.0, 4.0], "end": 6.0, "video": True}),
                              "video", 3)
    assert images.count() == 1
    size = images.first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [3 * (160 + 6) + 6, 6 + 90 + 6 + 12]  # three frames side by side, the timeline below
    screenshot(page, "lab-media-plan-frames")


def test_the_notebook_builder_shows_the_tile_thumbnails_after_plan(jupyterlab_server, lab_page, screenshot):
    import nbformat

    from tests.browser.test_notebook_widgets import RUN_DEADLINE_MS, run_command, wait_for_idle_kernel

    page, root = lab_page, jupyterlab_server.root_dir
    (root / "builder").mkdir()
    ramp = np.add.outer(np.arange(200), np.arange(300)) % 256
    Image.fromarray(ramp.astype(np.uint8), "L").save(root / "builder" / "g.png")
    code = ("import bytenite_nb as bn\n"
            "from distributed import Client\n"
            "from bytenite_nb.widgets import JobBuilder\n"
            "client = Client(n_workers=1, threads_per_worker=1, dashboard_address=':0')\n"
            "job = bn.Job(source='g.png', partitioner='image-tiles', app='identity', assembler='zip',\n"
            "             destination='out/', params={'partitioner': {'tile_width': 150, 'tile_height': 100}})\n"
            "JobBuilder(job, client=client)")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)],
                                            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                     "language": "python"}}),
                   root / "builder" / "tiles.ipynb")
    page.goto(f"{jupyterlab_server.url}lab/tree/builder/tiles.ipynb")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", state="visible")
    wait_for_idle_kernel(page)
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    run_command(page, "Run All Cells")
    builder = page.locator(".bytenite-nb-builder")
    builder.wait_for(state="visible", timeout=RUN_DEADLINE_MS)
    builder.locator("button", has_text="Plan").first.click()
    images = builder.locator('figure[data-media="image"] img')
    images.first.wait_for(timeout=RUN_DEADLINE_MS)
    assert images.count() == 4
    page.wait_for_function("() => Array.from(document.querySelectorAll('.bytenite-nb-builder figure img'))"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    sizes = images.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight, i.alt])")
    assert sizes == [[128, 85, "g.png tile 0,0"], [128, 85, "g.png tile 0,1"],
                     [128, 85, "g.png tile 1,0"], [128, 85, "g.png tile 1,1"]]
    builder.locator("text=the first 4 tile(s) of 4").wait_for()
    images.first.scroll_into_view_if_needed()
    screenshot(page, "notebook-builder-media-plan")
