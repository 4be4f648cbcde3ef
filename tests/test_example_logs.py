"""The log analysis example notebook (log-time -> counts -> merge-key, and
log-time -> errors -> log-merge), run the way CI and a batch user run it:
papermill."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import nbformat
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "log-analysis" / "log-analysis.ipynb"
START = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) ([\w.]+): ")


def entries_of(folder: Path) -> list[tuple[str, str, str, str]]:
    """(timestamp, level, logger, text) of every entry of every log, files in name order."""
    found: list[list[str]] = []
    for path in sorted(folder.iterdir()):
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            m = START.match(line)
            if m:
                found.append([m.group(1), m.group(2), m.group(3), line])
            else:
                assert found, f"{path.name} starts with a continuation line"
                found[-1][3] += line
    return [tuple(e) for e in found]


@pytest.mark.parametrize("every", ["1h", "30min"])
def test_the_log_notebook_runs_with_papermill_and_its_counts_and_timeline_are_right(tmp_path, every):
    papermill = pytest.importorskip("papermill")
    out, logs = tmp_path / "out", tmp_path / "logs"
    executed = tmp_path / "run.ipynb"
    papermill.execute_notebook(str(EXAMPLE), str(executed), cwd=str(tmp_path), progress_bar=False,
                               parameters={"every": every, "out_dir": str(out), "data_dir": str(logs),
                                           "hours": 3, "seed": 11, "workers": 2})
    entries = entries_of(logs)
    expected: dict[tuple[str, str], int] = {}
    for _, level, logger, _ in entries:
        expected[(level, logger)] = expected.get((level, logger), 0) + 1
    with open(out / "counts" / "counts.csv", newline="") as f:
        counted = {(r["level"], r["logger"]): int(float(r["count"])) for r in csv.DictReader(f)}
    assert counted == expected
    assert any(e[3].count("\n") > 1 for e in entries), "no multi-line entry in the generated logs"
    assert any(a[0] > b[0] for a, b in zip(entries, entries[1:])), "the generated logs are all in order"
    errors = sorted((e for e in entries if e[1] == "ERROR"), key=lambda e: e[0])
    timeline = (out / "errors" / "errors-timeline.log").read_text(encoding="utf-8")
    assert timeline == "".join(e[3] for e in errors)
    assert (out / "counts" / "_SUCCESS").exists() and (out / "errors" / "_SUCCESS").exists()
    nb = nbformat.read(executed, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("text/html" in o.get("data", {}) for o in outputs), "the table is missing"
    printed = "".join(o.get("text", "") for o in outputs)
    assert f"checked: {len(entries)} entries, {len(expected)} level/logger rows, {len(errors)} errors" in printed
    chunks = [int(part.split()[0]) for part in printed.split("COMPLETE - ")[1:]]
    assert chunks == [4, 4] if every == "1h" else chunks == [7, 7]
