"""The container images the container and engine tests use, built locally.

``scripts/build-test-images.sh`` builds them from files on this machine
(busybox-static, the installed Python), so no registry is needed; the
fixtures build them when they are missing. A test that needs them calls
:func:`test_images`, which goes through ``require("podman")``.
"""

from __future__ import annotations

import os
import subprocess

from .conftest import require

BUSYBOX = "localhost/bytenite-nb-test/busybox:1"
PYTHON = "localhost/bytenite-nb-test/python:3"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_images() -> tuple[str, str]:
    """``(busybox image, python image)``, built if missing; skips (fails in CI) without podman."""
    podman = require("podman")
    missing = [image for image in (BUSYBOX, PYTHON)
               if subprocess.run([podman, "image", "exists", image]).returncode != 0]
    if missing:
        require("busybox", "busybox (busybox-static) is needed to build the test images")
        subprocess.run(["bash", os.path.join(REPO, "scripts", "build-test-images.sh")], check=True)
    return BUSYBOX, PYTHON


test_images.__test__ = False  # a helper, not a test


def leftover_containers(job_id: str) -> list[str]:
    """Containers, running or not, that a job's tasks left behind."""
    proc = subprocess.run(["podman", "ps", "-a", "--filter", f"label=bytenite-nb.job={job_id}",
                           "--format", "{{.Names}}"], capture_output=True, text=True, check=True)
    return proc.stdout.split()


def make_folder(parent, name: str, manifest: dict, files: dict[str, str], schema: dict | None = None):
    """A ByteNite folder ``parent/name``: ``manifest.json``, ``app/<files>``, optional ``schema.json``."""
    import json

    folder = parent / name
    (folder / "app").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": name, "version": "1.0", **manifest}))
    for file_name, text in files.items():
        (folder / "app" / file_name).write_text(text)
    if schema is not None:
        (folder / "schema.json").write_text(json.dumps(schema))
    return folder
