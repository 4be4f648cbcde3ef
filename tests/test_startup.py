"""What starting bytenite-nb loads: structural checks, not timings (those are
ratios in benchmarks/startup.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import pytest

from bytenite_nb.apps.process import wait_exit

#: libraries that take from a twentieth of a second to seconds to import, and that
#: `import bytenite_nb` and `bytenite-nb --help` must not load: a module on those
#: paths imports them inside the functions that use them
HEAVY = ("dask", "distributed", "jsonschema", "ipywidgets", "jupyter_server", "pyarrow", "pandas",
         "rfc3987_syntax", "lark", "fsspec", "papermill", "nbformat", "tornado")


def imported_modules(*argv: str) -> set[str]:
    """The top-level packages a fresh interpreter imports running ``python -X importtime argv...``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name.split(".")[0])
    assert "bytenite_nb" in names, "the import was not seen: is -X importtime's output format different?"
    return names


def test_import_bytenite_nb_loads_no_heavy_library():
    loaded = imported_modules("-c", "import bytenite_nb")
    assert not loaded & set(HEAVY), f"import bytenite_nb loaded {sorted(loaded & set(HEAVY))}"


def test_cli_help_loads_no_heavy_library():
    loaded = imported_modules("-m", "bytenite_nb.cli", "--help")
    assert "click" in loaded
    assert not loaded & set(HEAVY), f"bytenite-nb --help loaded {sorted(loaded & set(HEAVY))}"


def test_every_command_help_loads_no_heavy_library():
    for command in (["run"], ["cluster", "start"], ["app", "new"], ["notebook", "run"]):
        loaded = imported_modules("-m", "bytenite_nb.cli", *command, "--help")
        assert not loaded & set(HEAVY), f"bytenite-nb {' '.join(command)} --help loaded {sorted(loaded & set(HEAVY))}"


def test_validating_a_job_compiles_no_iri_grammar(tmp_path):
    # jsonschema is imported to check params, but its IRI format checker's grammar
    # (rfc3987_syntax, over a second) is not built until someone checks an iri.
    if importlib.util.find_spec("rfc3987_syntax") is None:
        pytest.skip("rfc3987_syntax is not installed: jsonschema has no IRI grammar to compile here")
    (tmp_path / "in.txt").write_text("a\nb\n")
    script = f"""
import sys
import bytenite_nb as bn
job = bn.Job(source={str(tmp_path / 'in.txt')!r}, partitioner="split-lines", app={{"command": ["true"]}},
             assembler="concat", destination={str(tmp_path / 'out')!r},
             params={{"partitioner": {{"chunk_size": 2}}, "assembler": {{"output_name": "x.txt"}}}})
job.validate()
assert "jsonschema" in sys.modules, "params were not checked with jsonschema"
print("lark" in sys.modules, "rfc3987_syntax" in sys.modules)
import jsonschema
checker = jsonschema.FormatChecker()
print(checker.conforms("http://example.com/a b", "iri"), checker.conforms("http://example.com/\u00e9", "iri"))
print("rfc3987_syntax" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    grammar_loaded, iri_checks, loaded_after = proc.stdout.split("\n")[:3]
    assert grammar_loaded == "False False"
    # The IRI checker still works for whoever uses it: a space is not allowed, an accent is.
    assert iri_checks == "False True"
    assert loaded_after == "True"


def test_wait_exit_returns_as_the_process_ends():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    assert wait_exit(proc, 0.05) is None  # still running
    started = time.monotonic()
    code = None
    while code is None:
        code = wait_exit(proc, 5)
    assert code == 0
    assert time.monotonic() - started < 3


def test_wait_exit_reports_a_kill_and_a_failure():
    proc = subprocess.Popen(["sleep", "30"])
    assert wait_exit(proc, 0.01) is None
    proc.kill()
    assert wait_exit(proc, 5) == -9
    assert wait_exit(proc, 5) == -9  # asked again: the same answer, not an error
    failing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_exit(failing, None) == 3


def test_a_chatty_app_is_still_stopped_by_max_output(tmp_path):
    # The output check runs between waits: faster waits must not skip it.
    from bytenite_nb.apps.base import TaskContext
    from bytenite_nb.apps.process import run_process
    from bytenite_nb.exceptions import AppOutputTooLarge

    for name in ("task", "results", "logs"):
        os.makedirs(tmp_path / name)
    ctx = TaskContext(job_id="chatty", chunk_number=0, task_dir=str(tmp_path / "task"),
                      chunk_path=str(tmp_path / "task" / "data.bin"), results_dir=str(tmp_path / "results"),
                      params={}, timeout=60, shared_cache_dir=str(tmp_path), user_cache_dir=str(tmp_path),
                      log_dir=str(tmp_path / "logs"), max_output=2**20)
    with pytest.raises(AppOutputTooLarge, match="more than 1 MiB"):
        run_process([sys.executable, "-c", "import sys\nwhile True: sys.stdout.write('x' * 65536)"], ctx)
