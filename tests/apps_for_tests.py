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
