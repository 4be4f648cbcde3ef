"""The video transcode example notebook (video-frames -> an ffmpeg command per
chunk -> video-stitch), run the way CI and a batch user run it: papermill."""

from __future__ import annotations

from pathlib import Path

import av  # a dependency of bytenite-nb
import nbformat
import pytest

from .conftest import require

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "video-transcode" / "video-transcode.ipynb"


def test_the_transcode_notebook_runs_with_papermill_and_keeps_every_frame(tmp_path):
    require("ffmpeg", "ffmpeg is not installed (apt-get install ffmpeg)")
    papermill = pytest.importorskip("papermill")
    executed = tmp_path / "run.ipynb"
    out = tmp_path / "out"
    papermill.execute_notebook(str(EXAMPLE), str(executed), cwd=str(tmp_path), progress_bar=False,
                               parameters={"seconds": 8, "seconds_per_chunk": 2, "height": 180,
                                           "out_dir": str(out), "data_dir": str(tmp_path / "media"), "workers": 2})
    with av.open(str(tmp_path / "media" / "clip.mp4")) as c:
        want = sum(1 for _ in c.decode(video=0))
    with av.open(str(out / "clip-180p.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == want == 8 * 25
    assert (frames[0].width, frames[0].height) == (320, 180)
    assert (out / "_SUCCESS").exists()
    nb = nbformat.read(executed, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), \
        "the inline player is missing"
    printed = "".join(o.get("text", "") for o in outputs)
    assert f"checked: {want} frames, 320x180, 4 chunks" in printed
