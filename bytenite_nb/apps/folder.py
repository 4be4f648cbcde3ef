"""``{"folder": "path"}``: a ByteNite app folder, run as a local process."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..exceptions import FieldError, ManifestError
from .base import App, TaskContext
from .manifest import Manifest
from .process import run_process


class FolderApp(App):
    """A ByteNite app folder (``manifest.json`` + ``app/``) run on every chunk.

    The entrypoint runs from ``app/``: ``*.py`` with the worker's Python,
    ``*.sh`` with ``sh``, anything else executed directly. ``schema.json``, if
    present, validates the app params.

    >>> # FolderApp("apps/uppercase").run(ctx)
    """

    runtime = "folder"

    def __init__(self, folder: str, *, base_dir: str | None = None):
        self.folder = folder
        self.base_dir = base_dir
        self._manifest: Manifest | None = None

    @classmethod
    def from_spec(cls, spec: dict, base_dir: str | None = None) -> "FolderApp":
        return cls(spec["folder"], base_dir=base_dir)

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
    def name(self) -> str:
        try:
            return self.manifest.name
        except ManifestError:
            return os.path.basename(self.path)

    @property
    def schema(self) -> dict | None:  # type: ignore[override]
        return self.manifest.schema()

    def check(self, field: str = "app") -> list[FieldError]:
        try:
            manifest = self.manifest
            manifest.schema()
        except ManifestError as exc:
            return [FieldError(f"{field}.folder", str(exc))]
        if manifest.type != "app":
            return [FieldError(f"{field}.folder", f"{manifest.path}: type is {manifest.type!r}, not an app")]
        return []

    def run(self, ctx: TaskContext) -> None:
        m = self.manifest
        argv = m.argv(python=sys.executable)
        run_process(argv, ctx, cwd=m.app_dir, what=f"app {m.name}")

    def to_spec(self) -> Any:
        return {"folder": self.folder}

    def fingerprint(self) -> str:
        import hashlib

        m = self.manifest
        return hashlib.sha256(f"{m.name}@{m.version}:{m.path}".encode()).hexdigest()[:16]
