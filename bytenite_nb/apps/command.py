"""``{"command": [...]}``: any program, run once per chunk."""

from __future__ import annotations

import os
import shlex
from typing import Any

from ..exceptions import FieldError
from .base import COMMAND_SCHEMA, ENV_SCHEMA, PARAMS_SCHEMA, App, TaskContext, runtime_schema
from .process import run_process


class CommandApp(App):
    """Run a program for every chunk under the runtime contract
    (``TASK_DIR/data.bin``, ``TASK_RESULTS_DIR``, ``APP_PARAMS``, ``CHUNK_NUMBER``).

    The program runs from ``cwd`` (default: the job file's folder), so a job
    file next to ``app.py`` can say ``{"command": ["python3", "app.py"]}``.

    >>> CommandApp(["sh", "-c", "cp $TASK_DIR/data.bin $TASK_RESULTS_DIR/"]).to_spec()
    {'command': ['sh', '-c', 'cp $TASK_DIR/data.bin $TASK_RESULTS_DIR/']}
    """

    runtime = "command"
    SPEC_SCHEMA = runtime_schema(
        "Command",
        "Any program, run once per chunk under the runtime contract (TASK_DIR/data.bin, TASK_RESULTS_DIR, "
        "APP_PARAMS, CHUNK_NUMBER).",
        {
            "command": COMMAND_SCHEMA,
            "cwd": {"type": "string", "minLength": 1,
                    "description": "The folder the program starts in, relative to the job file's folder "
                                   "(default: the job file's folder)."},
            "env": ENV_SCHEMA,
            "schema": PARAMS_SCHEMA,
        },
        ["command"],
    )
    runs_own_process = True

    def __init__(self, command: list[str] | str, *, cwd: str | None = None,
                 env: dict[str, str] | None = None, base_dir: str | None = None,
                 schema: dict | None = None):
        self.command = command
        self.cwd = cwd
        self.env = dict(env or {})
        self.base_dir = base_dir
        self.schema = schema

    @classmethod
    def from_spec(cls, spec: dict, base_dir: str | None = None) -> "CommandApp":
        """The app a job's ``{"command": ...}`` object describes (checked by :attr:`SPEC_SCHEMA`).

        >>> CommandApp.from_spec({"command": ["true"], "cwdd": "x"})
        Traceback (most recent call last):
        ...
        bytenite_nb.exceptions.FieldError: app.cwdd: unknown field (did you mean "cwd"?)
        """
        spec = cls.checked_spec(spec)
        return cls(spec["command"], cwd=spec.get("cwd"), env=spec.get("env"), base_dir=base_dir,
                   schema=spec.get("schema"))

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)

    @property
    def name(self) -> str:
        argv = self.argv
        if not argv:
            return "command"
        # "python3 app.py" is better called by its script than by its interpreter
        if os.path.basename(argv[0]).startswith(("python", "sh", "bash")):
            scripts = [a for a in argv[1:] if not a.startswith("-")]
            if scripts and len(argv) > 1 and not argv[1] == "-c":
                return os.path.basename(scripts[0])
        return os.path.basename(argv[0])

    @property
    def workdir(self) -> str | None:
        if self.cwd is None:
            return self.base_dir
        return self.cwd if os.path.isabs(self.cwd) or self.base_dir is None else os.path.join(self.base_dir, self.cwd)

    def check(self, field: str = "app") -> list[FieldError]:
        return self.spec_errors(field)

    def run(self, ctx: TaskContext) -> None:
        run_process(self.argv, ctx, cwd=self.workdir or ctx.task_dir, extra_env=self.env,
                    what=f"command {self.argv[0]!r}")

    def to_spec(self) -> Any:
        spec: dict[str, Any] = {"command": self.command}
        if self.cwd is not None:
            spec["cwd"] = self.cwd
        if self.env:
            spec["env"] = self.env
        if self.schema is not None:
            spec["schema"] = self.schema
        return spec
