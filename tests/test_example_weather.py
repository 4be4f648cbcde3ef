"""The weather example notebook (a public CSV that ships in a package, sharded
by date, merged by key), run the way CI and a batch user run it: papermill."""

from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "weather-by-month" / "weather-by-month.ipynb"


def expected_days() -> dict[tuple[int, str], int]:
    package = importlib.util.find_spec("vega_datasets").submodule_search_locations[0]
    days: dict[tuple[int, str], int] = {}
    with open(os.path.join(package, "_data", "seattle-weather.csv"), newline="") as f:
        for row in csv.DictReader(f):
            key = (int(row["date"][:4]), row["weather"])
            days[key] = days.get(key, 0) + 1
    return days


@pytest.mark.parametrize("every", ["1M", "7D"])
def test_the_weather_notebook_runs_with_papermill_and_its_table_is_right(tmp_path, every):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out"
    executed = tmp_path / "run.ipynb"
    papermill.execute_notebook(str(EXAMPLE), str(executed), cwd=str(tmp_path), progress_bar=False,
                               parameters={"every": every, "out_dir": str(out), "workers": 2})
    with open(out / "by-year-and-weather.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(int(r["year"]), r["weather"]): int(float(r["days"])) for r in rows} == expected_days()
    assert (out / "_SUCCESS").exists()
    nb = nbformat.read(executed, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot is missing"
    printed = "".join(o.get("text", "") for o in outputs)
    assert f"checked: {len(expected_days())} year/weather rows, 1461 days" in printed
    chunks = int(printed.split("COMPLETE - ")[1].split()[0])
    assert chunks == 48 if every == "1M" else 209 <= chunks <= 210  # weeks aligned to the epoch's
