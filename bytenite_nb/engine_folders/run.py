"""Running an engine folder's entrypoint, as a process or in its container.

An engine gets folders and params through environment variables, like an app
(its own contract: ``SOURCE_DIR``/``CHUNKS_DIR``/``PARTITIONER_PARAMS`` for a
partitioner, ``TASK_RESULTS_DIR``/``OUTPUT_DIR``/``ASSEMBLER_PARAMS`` for an
assembler). In a container each folder is mounted at ``/bytenite/<name>``;
read-only unless the engine writes there.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

from ..apps.container import APP_DIR, Mount, run_container
from ..apps.manifest import Manifest
from ..apps.process import run_command
from .. import supervision as control


@dataclass(frozen=True)
class EngineFolder:
    """An engine's contract folder: the variable naming it, its host path, whether the engine writes there."""

    var: str
    path: str
    writable: bool = False

    @property
    def target(self) -> str:
        return "/bytenite/" + self.var.lower().replace("_dir", "").replace("_", "-")


def run_engine(manifest: Manifest, image: str | None, folders: list[EngineFolder], params_var: str,
               params: dict, what: str) -> None:
    """Run the engine once; raise :class:`~bytenite_nb.exceptions.AppError` (naming
    ``what``, with the stderr tail) if it fails.

    It runs under the current job (a cancel or ``jobTimeout`` stops it) and
    with no task timeout: an engine sees the whole job's data.

    A partitioner engine runs as::

        run_engine(manifest, "localhost/splitter:1",
                   [EngineFolder("SOURCE_DIR", source), EngineFolder("CHUNKS_DIR", chunks, writable=True)],
                   "PARTITIONER_PARAMS", {"rows": 1000}, "partitioner engine split-csv@1.0")

    where each folder is mounted in the container at :attr:`EngineFolder.target`:

    >>> EngineFolder("CHUNKS_DIR", "/tmp/chunks", writable=True).target
    '/bytenite/chunks'
    """
    log_dir = tempfile.mkdtemp(prefix="bytenite-nb-engine-logs-")
    job_id = control.current_job()
    try:
        if image:
            env = {f.var: f.target for f in folders}
            env[params_var] = json.dumps(params)
            mounts = [Mount(f.path, f.target, f.writable) for f in folders] + [Mount(manifest.app_dir, APP_DIR)]
            run_container(image, manifest.argv(python="python3"), mounts=mounts, env=env, log_dir=log_dir,
                          job_id=job_id, timeout=None, what=what, workdir=APP_DIR,
                          requirements=manifest.requirements, network=manifest.network, label=manifest.type)
        else:
            env = dict(os.environ)
            env.update({f.var: f.path for f in folders})
            env[params_var] = json.dumps(params)
            run_command(manifest.argv(python=sys.executable), env=env, cwd=manifest.app_dir, job_id=job_id,
                        timeout=None, log_dir=log_dir, what=what)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
