"""What partitioner and assembler engine folders share: the folder, its manifest, its image."""

from __future__ import annotations

import os
from typing import Any

from ..apps.manifest import Manifest
from ..exceptions import FieldError, ManifestError


class EngineFolderSpec:
    """An engine folder named by a job: its path, and whether it runs in its
    container (``container``: False runs it as a process, an image name runs it
    in another image)."""

    kind = ""

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
        if self.container is False:
            return None
        if isinstance(self.container, str):
            return self.container
        return self.manifest.container if self.manifest.in_container else None

    @property
    def schema(self) -> dict:
        return self.manifest.schema() or {"type": "object"}

    def check(self, field: str) -> list[FieldError]:
        """Problems visible before running: a broken manifest, the wrong type."""
        try:
            manifest = self.manifest
            manifest.schema()
        except ManifestError as exc:
            return [FieldError(field, str(exc))]
        if manifest.type != self.kind:
            return [FieldError(field, f"{manifest.path}: type is {manifest.type!r}, not a {self.kind}")]
        if self.container is True or (self.container is not None and not isinstance(self.container, (bool, str))):
            return [FieldError(f"{field}.container", "expected false (run as a process) or an image name")]
        return []

    def to_spec(self) -> Any:
        spec: dict[str, Any] = {"folder": self.folder}
        if self.container is not None:
            spec["container"] = self.container
        return spec

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"
