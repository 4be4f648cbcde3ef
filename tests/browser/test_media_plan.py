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
    Image.fromarray(np.stack([ramp, ramp[::-1], 255 - ramp], axis=-1).astype(np.uint8), "RGB").save(root / "media" / "a.png")
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
