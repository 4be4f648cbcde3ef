"""ByteNite app and engine folders: ``manifest.json``, ``app/``, ``schema.json``.

A folder looks like::

    my-app/
      manifest.json     name, version, type, platform, entrypoint, ...
      app/main.py       the entrypoint (any file in app/)
      schema.json       optional: JSON Schema of the params
      template.json     optional: a job template using this app

Manifests are accepted in snake_case and camelCase
(``platform_config``/``platformConfig``, ``min_cpu``/``minCpu``...).

>>> # Manifest.load("path/to/my-app").entrypoint_path
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ManifestError

TYPES = ("app", "partitioner", "assembler")
VERSION = re.compile(r"^\d+\.\d+$")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _get(d: dict, name: str, default: Any = None) -> Any:
    """``d[name]`` under its snake_case or camelCase spelling."""
    if name in d:
        return d[name]
    return d.get(_camel(name), default)


@dataclass
class Manifest:
    """A parsed ``manifest.json``."""

    folder: str
    name: str
    version: str
    type: str = "app"
    description: str = ""
    platform: str = ""
    entrypoint: str = ""
    container: str | None = None
    min_cpu: float | None = None
    min_memory: float | None = None  # GB
    gpu: Any = None
    raw: dict = field(default_factory=dict)

    @property
    def path(self) -> str:
        return os.path.join(self.folder, "manifest.json")

    @property
    def app_dir(self) -> str:
        return os.path.join(self.folder, "app")

    @property
    def entrypoint_path(self) -> str:
        return os.path.join(self.app_dir, self.entrypoint)

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    def schema(self) -> dict | None:
        """The params schema from ``schema.json``, if the folder has one."""
        path = os.path.join(self.folder, "schema.json")
        if not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                return json.load(f)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc

    def argv(self, python: str = "python3") -> list[str]:
        """How the entrypoint is started: ``*.py`` with Python, ``*.sh`` with sh, else directly."""
        if self.entrypoint.endswith(".py"):
            return [python, self.entrypoint]
        if self.entrypoint.endswith(".sh"):
            return ["sh", self.entrypoint]
        return ["./" + self.entrypoint]

    @classmethod
    def load(cls, folder: str) -> "Manifest":
        """Read and check ``folder/manifest.json``; errors name the file and field."""
        folder = os.path.abspath(folder)
        path = os.path.join(folder, "manifest.json")
        if not os.path.isdir(folder):
            raise ManifestError(f"{folder}: no such folder")
        if not os.path.exists(path):
            raise ManifestError(f"{folder}: no manifest.json (not a ByteNite app or engine folder)")
        try:
            with open(path) as f:
                raw = json.load(f)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
        if not isinstance(raw, dict):
            raise ManifestError(f"{path}: expected a JSON object")

        def bad(field_name: str, message: str) -> ManifestError:
            return ManifestError(f"{path}: {field_name}: {message}")

        name = raw.get("name") or raw.get("id")
        if not isinstance(name, str) or not name.strip():
            raise bad("name", "is required")
        version = raw.get("version")
        if version is None:
            raise bad("version", "is required")
        version = str(version)
        if not VERSION.match(version):
            raise bad("version", f'expected "major.minor" (e.g. "1.0"), got {version!r}')
        kind = raw.get("type", "app")
        if kind not in TYPES:
            raise bad("type", f"expected one of {', '.join(TYPES)}, got {kind!r}")
        entrypoint = raw.get("entrypoint")
        if not isinstance(entrypoint, str) or not entrypoint:
            raise bad("entrypoint", "is required")
        if os.path.isabs(entrypoint) or ".." in entrypoint.split("/"):
            raise bad("entrypoint", f"must be a file inside app/, got {entrypoint!r}")
        platform_config = _get(raw, "platform_config", {}) or {}
        if not isinstance(platform_config, dict):
            raise bad("platform_config", "expected an object")
        container = platform_config.get("container")
        if container is not None and (not isinstance(container, str) or not container.strip()):
            raise bad("platform_config.container", "expected an image name")
        platform = raw.get("platform", "")
        if platform in ("docker", "container") and not container:
            raise bad("platform_config.container", f"is required for platform {platform!r}")
        reqs = _get(raw, "device_requirements", {}) or {}
        if not isinstance(reqs, dict):
            raise bad("device_requirements", "expected an object")
        numbers = {}
        for key in ("min_cpu", "min_memory"):
            value = _get(reqs, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise bad(f"device_requirements.{key}", f"expected a non-negative number, got {value!r}")
            numbers[key] = value
        manifest = cls(
            folder=folder,
            name=name.strip(),
            version=version,
            type=kind,
            description=raw.get("description", "") or "",
            platform=platform,
            entrypoint=entrypoint,
            container=container,
            min_cpu=numbers["min_cpu"],
            min_memory=numbers["min_memory"],
            gpu=_get(reqs, "gpu"),
            raw=raw,
        )
        if not os.path.isfile(manifest.entrypoint_path):
            raise bad("entrypoint", f"app/{entrypoint} does not exist")
        return manifest
