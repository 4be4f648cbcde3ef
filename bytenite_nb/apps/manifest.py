"""ByteNite app and engine folders: ``manifest.json``, ``app/``, ``schema.json``.

A folder looks like::

    my-app/
      manifest.json     name, version, type, platform, entrypoint, ...
      app/main.py       the entrypoint (any file in app/)
      schema.json       optional: JSON Schema of the params
      template.json     optional: a job template using this app

Manifests are accepted in snake_case, camelCase and any letter case
(``platform_config``/``platformConfig``, ``min_cpu``/``minCpu``, ``Name``...):
keys are brought to snake_case, then the manifest is checked against
:data:`MANIFEST_SCHEMA`, and every error names the field as the file spells it.
``platform`` is ``docker`` (the entrypoint runs in the image that
``platform_config.container`` names) or ``local``/``python`` (it runs as a
process on the worker); without it, a folder that names an image runs in it.
``device_requirements`` (``min_cpu`` cores, ``min_memory`` GB, ``gpu``: a
count, true/false, or ByteNite's list of acceptable GPU models) become
container limits and Dask worker resources.

>>> manifest = {"name": "upper", "version": "1.0", "entrypoint": "main.py", "deviceRequirements": {"minCpu": "two"}}
>>> [str(e) for e in check_spelled(manifest, MANIFEST_SCHEMA, "", nested=("device_requirements",))[1]]
['deviceRequirements.minCpu: expected number, got "two"']
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import FieldError, ManifestError
from ..schema import check
from .base import IMAGE_SCHEMA

TYPES = ("app", "partitioner", "assembler")
#: platform -> whether it runs in a container
PLATFORMS = {"docker": True, "container": True, "local": False, "python": False, "process": False}
VERSION = re.compile(r"^\d+\.\d+$")
GB = 10**9
_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(name: str) -> str:
    """A key in snake_case, whatever case it was written in.

    >>> [snake_case(n) for n in ("minCpu", "platformConfig", "Name", "min_memory", "MinCPU")]
    ['min_cpu', 'platform_config', 'name', 'min_memory', 'min_cpu']
    """
    return _WORD_START.sub("_", name).lower()


def check_spelled(raw: dict, schema: dict, prefix: str, *, nested: tuple[str, ...] = (),
                  top_level: bool = True) -> tuple[dict, list[FieldError]]:
    """Check ``raw`` against ``schema`` (written in snake_case) whatever the spelling
    of its keys and of the keys of its ``nested`` objects (where a null value
    counts as left out): return ``raw`` in snake_case and the errors, each
    naming the field as ``raw`` spells it. Without ``top_level``, only the
    ``nested`` objects' own names may be spelled otherwise at the top level.

    >>> schema = {"type": "object", "properties": {"min_cpu": {"type": "number"}}, "additionalProperties": False}
    >>> check_spelled({"minCpu": 2, "MaxCpu": 4}, schema, "app.device_requirements")
    ({'min_cpu': 2, 'max_cpu': 4}, [FieldError('app.device_requirements.MaxCpu: unknown field (did you mean "min_cpu"?)')])
    """
    errors: list[FieldError] = []
    written: dict[str, str] = {}  # snake_case path -> the path as written

    def normalise(obj: dict, path: str, written_path: str) -> dict:
        out: dict = {}
        for key, value in obj.items():
            name = snake_case(key) if isinstance(key, str) else key
            if not path and not top_level and name not in nested:
                name = key
            where = f"{path}.{name}" if path else str(name)
            as_written = f"{written_path}.{key}" if written_path else str(key)
            if name in out:
                errors.append(FieldError(_join(prefix, as_written),
                                         f"the same field as {written[where].rsplit('.', 1)[-1]}; give one of them"))
                continue
            written[where] = as_written
            if not path and name in nested and isinstance(value, dict):
                value = normalise({k: v for k, v in value.items() if v is not None}, where, as_written)
            out[name] = value
        return out

    snake = normalise(raw, "", "") if isinstance(raw, dict) else raw
    for error in check(snake, schema, ""):
        path = error.field
        head = max((k for k in written if path == k or path.startswith((k + ".", k + "["))), key=len, default=None)
        if head is not None:
            path = written[head] + path[len(head):]
        errors.append(FieldError(_join(prefix, path), error.message))
    return snake, errors


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path


def _number(description: str) -> dict:
    return {"type": "number", "minimum": 0, "description": description}


#: ``device_requirements`` of a manifest or a container app, in snake_case
DEVICE_REQUIREMENTS_SCHEMA = {
    "type": "object",
    "title": "Device requirements",
    "description": "What one task needs; the container's limits and the task's Dask worker resources.",
    "properties": {
        "min_cpu": _number("CPU cores one task needs (the container's CPU limit; Dask resource cpu)."),
        "min_memory": _number("Memory one task needs, in GB (the container's memory limit; Dask resource memory)."),
        "gpu": {
            "description": "GPUs one task needs: a count, true for one, or ByteNite's list of acceptable GPU "
                           "models (one GPU of any of them; Dask resource gpu).",
            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "boolean"},
                      {"type": "array", "items": {"type": "string", "minLength": 1}}],
            "x-expected": "a number of GPUs, true/false or a list of GPU models",
        },
    },
    "additionalProperties": False,
}

_IMAGE_OR_NONE = {**IMAGE_SCHEMA, "type": ["string", "null"]}

#: ``manifest.json`` in snake_case (see :func:`check_spelled` for the other spellings)
MANIFEST_SCHEMA = {
    "type": "object",
    "title": "ByteNite manifest.json",
    "description": "What a ByteNite app or engine folder is and how it runs.",
    "properties": {
        "name": {"type": "string", "description": "The name of the app or engine; its tag is name@version."},
        "id": {"type": "string", "description": "Read as the name when name is missing."},
        "version": {"type": ["string", "number"], "description": 'The version, "major.minor" (e.g. "1.0").'},
        "type": {"enum": list(TYPES), "x-expected": f"one of {', '.join(TYPES)}",
                 "description": "app (the default), partitioner or assembler."},
        "description": {"type": ["string", "null"], "description": "What it does, in a sentence."},
        "platform": {"enum": [*PLATFORMS, ""], "x-expected": f"one of {', '.join(PLATFORMS)}",
                     "description": "docker runs the entrypoint in the image platform_config.container names; "
                                    "local, python or process runs it as a process on the worker."},
        "entrypoint": {"type": "string", "minLength": 1,
                       "description": "The file in app/ that runs: *.py with Python, *.sh with sh, anything "
                                      "else executed directly."},
        "platform_config": {
            "type": ["object", "null"],
            "description": "Where the entrypoint runs.",
            "properties": {
                "container": {**_IMAGE_OR_NONE, "description": "The image the entrypoint runs in."},
                "network": {"type": "boolean", "x-expected": "true or false",
                            "description": "Whether the container may use the network (default: false)."},
                "private_image": {"type": "boolean",
                                  "description": "ByteNite's flag for an image in a private registry; here, log "
                                                 "in with podman login or docker login instead."},
                "username": {"type": "string", "description": "ByteNite's registry user name; not used here."},
                "token": {"type": "string", "description": "ByteNite's registry token; not used here."},
                "secrets": {"type": "array", "items": {"type": "string"},
                            "description": "ByteNite secret ids given to the app as variables; not used here."},
            },
            "additionalProperties": False,
        },
        "device_requirements": DEVICE_REQUIREMENTS_SCHEMA,
    },
    "required": ["version", "entrypoint"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class DeviceRequirements:
    """What one task of an app or engine needs: ``min_cpu`` cores, ``min_memory``
    GB, ``gpu`` devices (``gpu_models``: ByteNite's list of acceptable models, of
    which one GPU is needed). They become the container's limits and the task's
    Dask worker resources (``cpu``, ``memory`` in bytes, ``gpu``).

    >>> DeviceRequirements.parse({"minCpu": 2, "min_memory": 0.5}).resources()
    {'cpu': 2.0, 'memory': 500000000.0}
    >>> DeviceRequirements.parse({"gpu": ["NVIDIA A100-SXM4-40GB"]}).resources()
    {'gpu': 1.0}
    """

    min_cpu: float | None = None
    min_memory: float | None = None
    gpu: int = 0
    gpu_models: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any, where: str = "device_requirements") -> "DeviceRequirements":
        """Read a ``device_requirements`` object (any spelling of its keys; a null
        value counts as left out); :class:`ManifestError` names every bad field.

        >>> DeviceRequirements.parse({"min_cpu": "two"})
        Traceback (most recent call last):
        ...
        bytenite_nb.exceptions.ManifestError: device_requirements.min_cpu: expected number, got "two"
        """
        if raw is None:
            return cls()
        if isinstance(raw, dict):
            raw = {k: v for k, v in raw.items() if v is not None}
        values, errors = check_spelled(raw, DEVICE_REQUIREMENTS_SCHEMA, where)
        if errors:
            raise ManifestError("; ".join(str(e) for e in errors))
        gpu = values.get("gpu", 0)
        models: tuple[str, ...] = ()
        if isinstance(gpu, list):
            models, gpu = tuple(gpu), 1 if gpu else 0
        elif isinstance(gpu, bool):
            gpu = int(gpu)
        numbers = {key: None if values.get(key) is None else float(values[key]) for key in ("min_cpu", "min_memory")}
        return cls(numbers["min_cpu"], numbers["min_memory"], gpu, models)

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
        if self.gpu_models:
            out["gpu"] = list(self.gpu_models)
        elif self.gpu:
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

        values, errors = check_spelled(raw, MANIFEST_SCHEMA, "", nested=("platform_config", "device_requirements"))
        if errors:
            raise ManifestError(f"{path}: " + "; ".join(str(e) for e in errors))
        name = values.get("name") or values.get("id")
        if not isinstance(name, str) or not name.strip():
            raise bad("name", "is required")
        version = str(values["version"])
        if not VERSION.match(version):
            raise bad("version", f'expected "major.minor" (e.g. "1.0"), got {version!r}')
        kind = values.get("type", "app")
        entrypoint = values["entrypoint"]
        if os.path.isabs(entrypoint) or ".." in entrypoint.split("/"):
            raise bad("entrypoint", f"must be a file inside app/, got {entrypoint!r}")
        platform = values.get("platform", "")
        platform_config = values.get("platform_config") or {}
        container = platform_config.get("container")
        if PLATFORMS.get(platform) and not container:
            raise bad("platform_config.container", f"is required for platform {platform!r}: name the image to run")
        network = platform_config.get("network", False)
        requirements = DeviceRequirements.parse(values.get("device_requirements"))
        manifest = cls(
            folder=folder,
            name=name.strip(),
            version=version,
            type=kind,
            description=values.get("description") or "",
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
