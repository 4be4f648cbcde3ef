"""``{"folder": "path"}``: a ByteNite app folder, in its container or as a local process."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..exceptions import FieldError, ManifestError
from .base import App, TaskContext
from .manifest import Manifest
from .process import run_process


class FolderRef:
    """A ByteNite folder a job names (an app, or a partitioner or assembler engine):
    its path (relative to the job's folder), its manifest, and where it runs
    (``container``: None follows the manifest, False runs it as a process, an
    image name runs it in that image)."""

    #: the manifest ``type`` this kind of folder must have
    kind = "app"

    def __init__(self, folder: str, *, base_dir: str | None = None, container: bool | str | None = None):
        self.folder = folder
        self.base_dir = base_dir
        self.container = container
        self._manifest: Manifest | None = None

    @property
    def path(self) -> str:
        if os.path.isabs(self.folder) or self.base_dir is None:
            return os.path.abspath(self.folder)
        return os.path.normpath(os.path.join(self.base_dir, self.folder))

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest.load(self.path)
        return self._manifest

    @property
    def image(self) -> str | None:
        """The image the entrypoint runs in, or None to run it as a process."""
        if self.container is False:
            return None
        if isinstance(self.container, str):
            return self.container
        return self.manifest.container if self.manifest.in_container else None

    def check_folder(self, field: str, folder_field: str) -> list[FieldError]:
        """Problems visible before running: a broken manifest or schema, the wrong type."""
        try:
            manifest = self.manifest
            manifest.schema()
        except ManifestError as exc:
            return [FieldError(folder_field, str(exc))]
        if manifest.type != self.kind:
            article = "an" if self.kind[0] in "aeiou" else "a"
            return [FieldError(folder_field, f"{manifest.path}: type is {manifest.type!r}, not {article} {self.kind}")]
        if self.container is True or (self.container is not None and not isinstance(self.container, (bool, str))):
            return [FieldError(f"{field}.container", "expected false (run as a process) or an image name")]
        return []

    def to_spec(self) -> Any:
        spec: dict[str, Any] = {"folder": self.folder}
        if self.container is not None:
            spec["container"] = self.container
        return spec


class FolderApp(FolderRef, App):
    """A ByteNite app folder (``manifest.json`` + ``app/``) run on every chunk.

    The entrypoint runs from ``app/``: ``*.py`` with Python, ``*.sh`` with
    ``sh``, anything else executed directly. When the manifest names an image
    (``platform_config.container``) it runs in a container of that image, with
    ``app/`` mounted read-only (see :mod:`bytenite_nb.apps.container`);
    otherwise it runs as a process with the worker's Python. ``container``
    overrides that: ``False`` runs the folder as a process (for debugging),
    an image name runs it in another image. ``schema.json``, if present,
    validates the app params; ``device_requirements`` become Dask resources.

    >>> # FolderApp("apps/uppercase").run(ctx)
    """

    runtime = "folder"
    runs_own_process = True

    @classmethod
    def from_spec(cls, spec: dict, base_dir: str | None = None) -> "FolderApp":
        return cls(spec["folder"], base_dir=base_dir, container=spec.get("container"))

    @property
    def name(self) -> str:
        try:
            return self.manifest.name
        except ManifestError:
            return os.path.basename(self.path)

    @property
    def schema(self) -> dict | None:  # type: ignore[override]
        return self.manifest.schema()

    def check(self, field: str = "app") -> list[FieldError]:
        return self.check_folder(field, f"{field}.folder")

    def resources(self) -> dict[str, float]:
        return self.manifest.requirements.resources()

    def run(self, ctx: TaskContext) -> None:
        m = self.manifest
        image = self.image
        if image:
            from .container import run_task_in_container

            run_task_in_container(ctx, image, m.argv(python="python3"), app_dir=m.app_dir,
                                  what=f"app {m.tag} (image {image})", requirements=m.requirements,
                                  network=m.network)
            return
        run_process(m.argv(python=sys.executable), ctx, cwd=m.app_dir, what=f"app {m.tag}")

    def fingerprint(self) -> str:
        import hashlib

        m = self.manifest
        return hashlib.sha256(f"{m.name}@{m.version}:{m.path}:{self.image}".encode()).hexdigest()[:16]
