"""``{"folder": "path"}``: a ByteNite app folder, in its container or as a local process."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..exceptions import FieldError, ManifestError
from ..schema import check
from .base import IMAGE_SCHEMA, App, TaskContext, runtime_schema
from .manifest import Manifest
from .process import run_process


def folder_spec_schema(title: str, description: str) -> dict:
    """The schema of ``{"folder": "path", "container": false|"image"}``, for app and engine folders.

    >>> sorted(folder_spec_schema("App folder", "A folder.")["properties"])
    ['container', 'folder']
    """
    return runtime_schema(title, description, {
        "folder": {"type": "string", "minLength": 1,
                   "description": "The folder (manifest.json and app/), relative to the job file's folder; "
                                  "or its tag: name, name@1, name@1.2."},
        "container": {
            "description": "Where the entrypoint runs: false runs it as a process on the worker, an image name "
                           "runs it in that image; left out, the manifest decides.",
            "anyOf": [{"title": "as a process", "const": False},
                      {"title": "in this image", **IMAGE_SCHEMA}],
            "x-expected": "false (run as a process) or an image name",
        },
    }, ["folder"])


class FolderRef:
    """A ByteNite folder a job names (an app, or a partitioner or assembler engine):
    its path (relative to the job's folder), its manifest, and where it runs
    (``container``: None follows the manifest, False runs it as a process, an
    image name runs it in that image)."""

    #: the manifest ``type`` this kind of folder must have
    kind = "app"
    SPEC_SCHEMA = folder_spec_schema("ByteNite folder", "A ByteNite app or engine folder.")

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
        """Problems visible before running: a broken manifest or schema, the wrong type,
        a ``container`` that is neither false nor an image name."""
        try:
            manifest = self.manifest
            manifest.schema()
        except ManifestError as exc:
            return [FieldError(folder_field, str(exc))]
        if manifest.type != self.kind:
            article = "an" if self.kind[0] in "aeiou" else "a"
            return [FieldError(folder_field, f"{manifest.path}: type is {manifest.type!r}, not {article} {self.kind}")]
        return check(self.to_spec(), self.SPEC_SCHEMA, field)

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

    >>> FolderApp("apps/uppercase", container=False).to_spec()
    {'folder': 'apps/uppercase', 'container': False}
    """

    runtime = "folder"
    SPEC_SCHEMA = folder_spec_schema(
        "ByteNite app folder",
        "A ByteNite app folder (manifest.json and app/) run on every chunk, in the image its manifest names "
        "or as a process.")
    runs_own_process = True

    @classmethod
    def from_spec(cls, spec: dict, base_dir: str | None = None) -> "FolderApp":
        """The app a job's ``{"folder": ...}`` object describes (checked by :attr:`SPEC_SCHEMA`).

        >>> FolderApp.from_spec({"folder": "apps/x", "contaner": False})
        Traceback (most recent call last):
        ...
        bytenite_nb.exceptions.FieldError: app.contaner: unknown field (did you mean "container"?)
        """
        spec = cls.checked_spec(spec)
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
