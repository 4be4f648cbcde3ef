"""Python apps used by the tests (importable on the workers)."""

import os
import time


def spin(chunk_path, results_dir, params):
    """Never finishes (pure Python, so a timeout can interrupt it)."""
    while True:
        time.sleep(0.01)


def die(chunk_path, results_dir, params):
    """Kills the worker process running it."""
    os._exit(1)


def slow_concat(results, output_dir, params):
    """An assembler that signals it started, then takes its time (a cancel arrives meanwhile)."""
    open(params["gate"], "w").close()
    time.sleep(3)
    with open(os.path.join(output_dir, "output.txt"), "wb") as out:
        for chunk in results:
            for f in chunk.files:
                with f.open() as src:
                    out.write(src.read())


def process_id(chunk_path, results_dir, params):
    """The id of the process that ran the chunk."""
    return f"{os.getpid()}\n"


def worker_team(chunk_path, results_dir, params):
    """The BNB_TEAM variable of the worker that ran the chunk (a Gateway cluster option sets it)."""
    return os.environ.get("BNB_TEAM", "unset") + "\n"
