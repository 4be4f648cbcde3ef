"""The audio subtitles example notebook (audio-silence -> a per-chunk cue app
-> audio-index), run the way CI and a batch user run it: papermill."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "audio-subtitles" / "audio-subtitles.ipynb"
CUE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n"
                 r"sound at (-?\d+\.\d) dBFS \(chunk (\d+)\)$", re.M)


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_the_audio_notebook_runs_with_papermill_and_its_subtitles_match_the_recording(tmp_path):
    papermill = pytest.importorskip("papermill")
    out, audio = tmp_path / "out", tmp_path / "audio"
    executed = tmp_path / "run.ipynb"
    papermill.execute_notebook(str(EXAMPLE), str(executed), cwd=str(tmp_path), progress_bar=False,
                               parameters={"seconds": 45, "seed": 8, "out_dir": str(out), "data_dir": str(audio),
                                           "workers": 2})
    truth = json.loads((audio / "truth.json").read_text())
    text = (out / "talk.vtt").read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n\n")
    cues = [(seconds(*m.groups()[0:4]), seconds(*m.groups()[4:8]), float(m.group(9)), int(m.group(10)))
            for m in CUE.finditer(text)]
    assert len(cues) == len(truth) >= 5
    assert text.count(" --> ") == len(cues)
    for (start, end, level, _), (want_start, want_end, want_level) in zip(cues, truth):
        # the app's 10 ms frames start at its chunk's start: a stretch's edges are found within two frames
        assert abs(start - want_start) <= 0.02 and abs(end - want_end) <= 0.02
        assert abs(level - want_level) <= 0.5
    chunks = [c[3] for c in cues]
    assert chunks == sorted(chunks) and len(set(chunks)) > 1, "the cues do not come from several chunks"
    assert (out / "_SUCCESS").exists()
    nb = nbformat.read(executed, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the waveform is missing"
    printed = "".join(o.get("text", "") for o in outputs)
    assert f"checked: {len(truth)} cues from " in printed
