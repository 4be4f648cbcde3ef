"""The app runtime spec.

An app runs once per chunk attempt. Whatever its runtime (a Python function,
a command, a ByteNite app folder, a container), it receives the same things,
ByteNite's runtime contract, bundled in a :class:`TaskContext`:

- ``task_dir`` holding exactly one file, ``data.bin`` (``chunk_path``);
- ``results_dir``, where it writes its result files;
- ``params``, the app params; ``chunk_number``, 0..N-1;
- ``shared_cache_dir`` (read-only) and ``user_cache_dir`` (kept between runs).

A runtime subclasses :class:`App`, says which key of a job file's ``app``
object selects it (``runtime``), describes that object with a JSON Schema
(``SPEC_SCHEMA``: every field with a ``description``, no field it does not
know), and implements :meth:`App.run` for one attempt: return on success,
raise :class:`~bytenite_nb.exceptions.AppError` on failure. Retries, timeouts
and commits are the engine's business.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..exceptions import FieldError
from ..schema import check, require

# -- pieces of the runtimes' spec schemas -----------------------------------------------

#: a command: its arguments as a list, or one string split the way a shell splits it
COMMAND_SCHEMA = {
    "description": "The program and its arguments: a list, or one command line split the way a shell splits it.",
    "anyOf": [
        {"title": "arguments", "type": "array", "items": {"type": "string"}, "minItems": 1},
        {"title": "command line", "type": "string", "pattern": r"\S"},
    ],
    "x-expected": "a non-empty list of strings",
    # forms show it as one line of text, split like a shell command line
    "x-widget": "command-line",
}

#: extra environment variables
ENV_SCHEMA = {
    "type": "object",
    "description": "Environment variables to add, by name (values are strings).",
    "additionalProperties": {"type": "string"},
    "x-expected": "an object of strings",
}

#: the params schema a runtime spec may carry
PARAMS_SCHEMA = {
    "type": "object",
    "description": "JSON Schema the app params (params.app) are checked against.",
}

#: a container image name
IMAGE_SCHEMA = {
    "type": "string",
    "pattern": r"^\S+$",
    "x-expected": "an image name such as 'repo/name:tag'",
}


def runtime_schema(title: str, description: str, properties: dict, required: list[str]) -> dict:
    """A runtime's spec schema: an object of exactly ``properties``.

    >>> runtime_schema("X", "An app.", {"x": {"type": "string", "description": "what"}}, ["x"])["additionalProperties"]
    False
    """
    return {"type": "object", "title": title, "description": description, "properties": properties,
            "required": required, "additionalProperties": False}


@dataclass
class TaskContext:
    """Everything one attempt of an app on one chunk needs."""

    job_id: str
    chunk_number: int
    task_dir: str
    chunk_path: str
    results_dir: str
    params: dict
    timeout: float | None
    shared_cache_dir: str
    user_cache_dir: str
    log_dir: str
    #: bytes the app may print (stdout and stderr together) before the attempt is stopped
    max_output: int | None = None
    #: what the chunk covers (:meth:`~bytenite_nb.partitioners.ChunkRef.info`): ``CHUNK_INFO``
    chunk_info: dict | None = None

    def env(self) -> dict[str, str]:
        """The runtime contract as environment variables."""
        return {
            "TASK_DIR": self.task_dir,
            "TASK_RESULTS_DIR": self.results_dir,
            "APP_PARAMS": json.dumps(self.params),
            "CHUNK_NUMBER": str(self.chunk_number),
            "CHUNK_INFO": json.dumps(self.chunk_info or {"index": self.chunk_number}),
            "SHARED_CACHE_DIR": self.shared_cache_dir,
            "USER_CACHE_DIR": self.user_cache_dir,
            "BYTENITE_NB_JOB_ID": self.job_id,
        }


class App:
    """Base class of app runtimes."""

    #: the key of the job file's ``app`` object that selects this runtime
    runtime: str = ""
    #: JSON Schema of the app params (None: anything goes)
    schema: dict | None = None
    #: JSON Schema of the job's ``app`` object that selects this runtime (None: not checked)
    SPEC_SCHEMA: dict | None = None

    @classmethod
    def checked_spec(cls, spec: Any, field: str = "app") -> dict:
        """``spec`` once :attr:`SPEC_SCHEMA` accepts it; otherwise raise a
        :class:`FieldError` (or a :class:`~bytenite_nb.exceptions.JobValidationError`
        listing several), each naming its field (``app.cwdd: unknown field``).
        ``from_spec`` starts with it."""
        require(spec, cls.SPEC_SCHEMA, field)
        return spec

    def spec_errors(self, field: str = "app") -> list[FieldError]:
        """What :attr:`SPEC_SCHEMA` says about this app's own spec (for apps made in Python)."""
        spec = self.to_spec()
        return check(spec, self.SPEC_SCHEMA, field) if isinstance(spec, dict) else []

    #: its work runs in processes it starts (a program, a container), not in the
    #: worker's Python: a local cluster of threads in one process serves it as well
    #: as worker processes do, and starts in a fraction of the time
    runs_own_process: bool = False

    @property
    def name(self) -> str:
        return self.runtime

    def run(self, ctx: TaskContext) -> None:
        """Run one attempt on one chunk."""
        raise NotImplementedError

    def to_spec(self) -> Any:
        """What a job file says to get this app back."""
        raise NotImplementedError

    def check(self, field: str = "app") -> list[FieldError]:
        """Problems visible before running (missing folder, empty command...)."""
        return []

    def resources(self) -> dict[str, float]:
        """Dask worker resources each attempt needs (none by default)."""
        return {}

    def fingerprint(self) -> str:
        """Identifies the app for resume: a different app never reuses staged chunks."""
        text = json.dumps(self.to_spec(), sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.to_spec()!r}>"
