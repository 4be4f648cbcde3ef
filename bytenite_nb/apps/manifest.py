"""ByteNite app and engine folders: ``manifest.json``, ``app/``, ``schema.json``.

A folder looks like::

    my-app/
      manifest.json     name, version, type, platform, entrypoint, ...
      app/main.py       the entrypoint (any file in app/)
      schema.json       optional: JSON Schema of the params
      template.json     optional: a job template using this app

Manifests are accepted in snake_case and camelCase
(``platform_config``/``platformConfig``, ``min_cpu``/``minCpu``...).
``platform`` is ``docker`` (the entrypoint runs in the image that
``platform_config.container`` names) or ``local``/``python`` (it runs as a
process on the worker); without it, a folder that names an image runs in it. ``device_requirements`` (``min_cpu`` cores, ``min_memory`` GB,
``gpu`` count) become container limits and Dask worker resources.

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
#: platform -> whether it runs in a container
PLATFORMS = {"docker": True, "container": True, "local": False, "python": False, "process": False}
VERSION = re.compile(r"^\d+\.\d+$")
GB = 10**9


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _get(d: dict, name: str, default: Any = None) -> Any:
    """``d[name]`` under its snake_case or camelCase spelling."""
    if name in d:
        return d[name]
    return d.get(_camel(name), default)


@dataclass(frozen=True)
class DeviceRequirements:
    """What one task of an app or engine needs: ``min_cpu`` cores, ``min_memory``
    GB, ``gpu`` devices. They become the container's limits and the task's Dask
    worker resources (``cpu``, ``memory`` in bytes, ``gpu``).

    >>> DeviceRequirements.parse({"minCpu": 2, "min_memory": 0.5}).resources()
    {'cpu': 2.0, 'memory': 500000000.0}
    """

    min_cpu: float | None = None
    min_memory: float | None = None
    gpu: int = 0

    @classmethod
    def parse(cls, raw: Any, where: str = "device_requirements") -> "DeviceRequirements":
        """Read a ``device_requirements`` object; :class:`ManifestError` names the bad field."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: expected an object, got {raw!r}")
        numbers = {}
        for key in ("min_cpu", "min_memory"):
            value = _get(raw, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ManifestError(f"{where}.{key}: expected a non-negative number, got {value!r}")
            numbers[key] = None if value is None else float(value)
        gpu = _get(raw, "gpu", 0)
        if gpu is None or gpu is False:
            gpu = 0
        elif gpu is True:
            gpu = 1
        if isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0:
            raise ManifestError(f"{where}.gpu: expected a number of GPUs (or true/false), got {gpu!r}")
        known = {"min_cpu", "minCpu", "min_memory", "minMemory", "gpu"}
        unknown = [k for k in raw if k not in known]
        if unknown:
            raise ManifestError(f"{where}.{unknown[0]}: unknown field (expected min_cpu, min_memory, gpu)")
        return cls(numbers["min_cpu"], numbers["min_memory"], gpu)

    def resources(self) -> dict[str, float]:
        """The Dask worker resources one task holds while it runs."""
        out: dict[str, float] = {}
        if self.min_cpu:
            out["cpu"] = float(self.min_cpu)
        if self.min_memory:
            out["memory"] = float(self.min_memory * GB)
        if self.gpu:
            out["gpu"] = float(self.gpu)
        return out

    def limit_options(self) -> list[str]:
        """Container engine options that hold a container to these requirements."""
        opts = []
        if self.min_cpu:
            opts += ["--cpus", f"{self.min_cpu:g}"]
        if self.min_memory:
            opts += ["--memory", f"{int(self.min_memory * GB)}b"]
        return opts

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        if self.min_cpu is not None:
            out["min_cpu"] = self.min_cpu
        if self.min_memory is not None:
            out["min_memory"] = self.min_memory
        if self.gpu:
            out["gpu"] = self.gpu
        return out


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
    requirements: DeviceRequirements = field(default_factory=DeviceRequirements)
    network: bool = False
    raw: dict = field(default_factory=dict)

    @property
    def min_cpu(self) -> float | None:
        return self.requirements.min_cpu

    @property
    def min_memory(self) -> float | None:  # GB
        return self.requirements.min_memory

    @property
    def gpu(self) -> int:
        return self.requirements.gpu

    @property
    def in_container(self) -> bool:
        """True when the entrypoint runs in the image ``platform_config.container``."""
        return bool(self.container) and PLATFORMS.get(self.platform, True)

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
        platform = raw.get("platform", "")
        if not isinstance(platform, str):
            raise bad("platform", f"expected one of {', '.join(PLATFORMS)}, got {platform!r}")
        if platform and platform not in PLATFORMS:
            raise bad("platform", f"expected one of {', '.join(PLATFORMS)}, got {platform!r}")
        platform_config = _get(raw, "platform_config", {}) or {}
        if not isinstance(platform_config, dict):
            raise bad("platform_config", "expected an object")
        container = platform_config.get("container")
        if container is not None and (not isinstance(container, str) or not container.strip()
                                      or any(c.isspace() for c in container)):
            raise bad("platform_config.container", f"expected an image name such as 'repo/name:tag', got {container!r}")
        if PLATFORMS.get(platform) and not container:
            raise bad("platform_config.container", f"is required for platform {platform!r}: name the image to run")
        network = platform_config.get("network", False)
        if not isinstance(network, bool):
            raise bad("platform_config.network", f"expected true or false, got {network!r}")
        try:
            requirements = DeviceRequirements.parse(_get(raw, "device_requirements"), "device_requirements")
        except ManifestError as exc:
            raise ManifestError(f"{path}: {exc}") from None
        manifest = cls(
            folder=folder,
            name=name.strip(),
            version=version,
            type=kind,
            description=raw.get("description", "") or "",
            platform=platform,
            entrypoint=entrypoint,
            container=container if PLATFORMS.get(platform, True) else None,
            requirements=requirements,
            network=network,
            raw=raw,
        )
        if not os.path.isfile(manifest.entrypoint_path):
            raise bad("entrypoint", f"app/{entrypoint} does not exist")
        app_dir = os.path.realpath(manifest.app_dir)
        if not os.path.realpath(manifest.entrypoint_path).startswith(app_dir + os.sep):
            raise bad("entrypoint", f"app/{entrypoint} is a symlink out of app/")
        return manifest

    @property
    def version_key(self) -> tuple[int, int]:
        """``(major, minor)``, for picking the highest version."""
        major, minor = self.version.split(".")
        return int(major), int(minor)
