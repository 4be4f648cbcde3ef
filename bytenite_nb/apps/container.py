"""``{"image": "repo/name:tag", "command": [...]}``: one container per chunk.

An app packaged as a container image runs through podman or docker, one
container per chunk attempt, under the runtime contract:

- ``TASK_DIR`` (``/bytenite/task``, read-only) holds the chunk, ``data.bin``;
- ``TASK_RESULTS_DIR`` (``/bytenite/results``) is the only place the app
  writes results; the rest of the container's filesystem is read-only apart
  from a private ``/tmp``;
- ``APP_PARAMS``, ``CHUNK_NUMBER``; ``SHARED_CACHE_DIR`` (read-only) and
  ``USER_CACHE_DIR`` (kept between chunks and jobs);
- no network unless the app asks for it (``"network": true``);
- CPU and memory limits from ``device_requirements`` (``min_cpu`` cores,
  ``min_memory`` GB), which also become Dask worker resources;
- ``taskTimeout`` or a cancel kills the container; containers are always removed;
- the app runs as an unprivileged user: the calling user's own id with rootless
  podman or docker, and a dedicated id (:data:`APP_UID`) when running as root.

The container tool is podman or docker, whichever is found first; an app
spec's ``engine``, the ``BYTENITE_NB_CONTAINER_ENGINE`` environment variable
or the ``bytenite-nb.container.engine`` Dask config names another (a name or
a path). ("Engine" there is the container world's word; in bytenite-nb an
engine is a ByteNite partitioner or assembler folder, so the code says tool.)
``BYTENITE_NB_CONTAINER_PULL`` (``missing``, ``never`` or ``always``) says
whether a missing image is pulled; ``BYTENITE_NB_CONTAINER_OPTIONS`` adds
options to every ``run`` (e.g. ``--ulimit nofile=1024:1024``).

>>> ContainerApp("localhost/upper:1", ["sh", "-c", "tr a-z A-Z < $TASK_DIR/data.bin > $TASK_RESULTS_DIR/out.txt"]).name
'upper'
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from .. import config as _config
from ..exceptions import AppError, ContainerError, FieldError, ImageNotFound
from ..schema import raise_errors, require
from .base import COMMAND_SCHEMA, ENV_SCHEMA, IMAGE_SCHEMA, PARAMS_SCHEMA, App, TaskContext, runtime_schema
from .manifest import DEVICE_REQUIREMENTS_SCHEMA, DeviceRequirements, check_spelled
from .process import run_command, run_process

#: where the runtime contract's folders appear inside a container
TASK_DIR = "/bytenite/task"
RESULTS_DIR = "/bytenite/results"
SHARED_CACHE_DIR = "/bytenite/cache/shared"
USER_CACHE_DIR = "/bytenite/cache/user"
APP_DIR = "/bytenite/app"
#: the user an app runs as when bytenite-nb itself runs as root
APP_UID = 10001
APP_GID = 10001
#: seconds a container may outlive taskTimeout before the engine itself stops it
#: (a backstop for a worker that died without removing its containers)
ENGINE_TIMEOUT_MARGIN = 60
PULL_POLICIES = ("missing", "never", "always")
#: names the image a worker itself runs in (a Kubernetes worker pod of an app's
#: image, :mod:`bytenite_nb.kube`): that image's tasks run as processes of the
#: worker, since a pod cannot start containers of its own
WORKER_IMAGE_ENV = "BYTENITE_NB_WORKER_IMAGE"
#: seconds a pull may take before the image counts as unavailable
PULL_TIMEOUT = 900

_IMAGE_MISSING = re.compile(
    r"image not known|no such image|unable to find image|manifest unknown|repository .* not found|"
    r"pull access denied|initializing source|pinging container registry|short-name .* did not resolve",
    re.IGNORECASE)


@dataclass(frozen=True)
class Mount:
    """A host folder seen inside the container at ``target``."""

    host: str
    target: str
    writable: bool = False

    def option(self) -> list[str]:
        if "," in self.host or "," in self.target:
            # --mount is comma-separated; a comma in a path would change its meaning.
            raise ContainerError(f"cannot mount {self.host!r}: a folder mounted into a container may not contain ','")
        spec = f"type=bind,source={self.host},target={self.target}"
        return ["--mount", spec if self.writable else spec + ",readonly"]


@dataclass(frozen=True)
class ContainerTool:
    """A container tool (podman or docker): its command and how to drive it."""

    path: str
    kind: str  # "podman" or "docker"

    @property
    def rootless(self) -> bool:
        """True when containers run without root on the host (podman run by a user)."""
        return self.kind == "podman" and os.geteuid() != 0

    def user_options(self, user: str | None) -> list[str]:
        """Who the app runs as: never root on the host unless the app spec says ``"user": "root"``."""
        if user == "root":
            return ["--user", "0:0"]
        if user:
            return ["--user", user]
        if self.rootless:
            return ["--userns=keep-id"]  # the calling user's own id, inside and out
        if os.geteuid() != 0:
            return ["--user", f"{os.geteuid()}:{os.getegid()}"]  # docker run by a member of its group
        return ["--user", f"{APP_UID}:{APP_GID}"]

    @property
    def maps_to_other_uid(self) -> bool:
        """True when the app's files belong to :data:`APP_UID` on the host (bytenite-nb runs as root)."""
        return os.geteuid() == 0

    def image_exists(self, image: str) -> bool:
        verb = ["image", "exists", image] if self.kind == "podman" else ["image", "inspect", image]
        proc = subprocess.run([self.path, *verb], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        return proc.returncode == 0

    def pull(self, image: str) -> str:
        """Pull ``image``; return the engine's error text ("" on success)."""
        try:
            proc = subprocess.run([self.path, "pull", image], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=PULL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"the pull took more than {PULL_TIMEOUT}s"
        return "" if proc.returncode == 0 else proc.stderr.decode("utf-8", "replace")[-2000:]

    def remove(self, name: str) -> None:
        """Kill and remove a container (nothing happens if it is gone already)."""
        argv = [self.path, "rm", "-f", name] if self.kind == "docker" else [self.path, "rm", "-f", "-t", "0", "-i", name]
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def containers(self, label: str) -> list[str]:
        """Names of the containers, running or not, that carry ``label`` (``key=value``)."""
        proc = subprocess.run([self.path, "ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        return [line for line in proc.stdout.split() if line]


def find_container_tool(preferred: str | None = None) -> ContainerTool:
    """The container tool to use: ``preferred``, else the configured one, else
    podman, else docker. Raises :class:`ContainerError` when there is none.

    >>> find_container_tool("no-such-tool-here")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.ContainerError: container engine 'no-such-tool-here' (from the app spec, ...
    """
    wanted = preferred or _config.container_engine()
    candidates = [wanted] if wanted else ["podman", "docker"]
    for name in candidates:
        path = shutil.which(name)
        if path:
            kind = "docker" if "docker" in os.path.basename(os.path.realpath(path)) \
                or "docker" in os.path.basename(name) else "podman"
            return ContainerTool(path, kind)
    if wanted:
        raise ContainerError(f"container engine {wanted!r} (from the app spec, BYTENITE_NB_CONTAINER_ENGINE "
                             "or the bytenite-nb.container.engine Dask config) is not installed")
    raise ContainerError("no container engine: install podman or docker, or set BYTENITE_NB_CONTAINER_ENGINE")


def pull_policy() -> str:
    policy = _config.container_pull()
    if policy not in PULL_POLICIES:
        raise ContainerError(f"{_config.source('container.pull')}: expected one of {', '.join(PULL_POLICIES)}, got {policy!r}")
    return policy


def extra_options() -> list[str]:
    return _config.container_options()


_ready: set[tuple[str, str]] = set()
_ready_lock = threading.Lock()
#: writable mounts that stay the app user's (its cache), not given back after a run
_kept_owned: set[str] = set()


def ensure_image(tool: ContainerTool, image: str, what: str) -> None:
    """Make sure ``image`` is on this machine, pulling it once per process if the
    pull policy allows; raise :class:`ImageNotFound` naming the image otherwise."""
    key = (tool.path, image)
    if key in _ready:
        return
    with _ready_lock:
        if key in _ready:
            return
        policy = pull_policy()
        present = tool.image_exists(image)
        if policy == "always" or (not present and policy == "missing"):
            error = tool.pull(image)
            if error and not (present and policy == "always"):
                raise ImageNotFound(f"{what}: image {image!r} is not on this machine and {tool.kind} could not "
                                    f"pull it: {error.strip().splitlines()[-1] if error.strip() else 'unknown error'}")
        elif not present:
            raise ImageNotFound(f"{what}: image {image!r} is not on this machine ({tool.kind} image list) and "
                                "BYTENITE_NB_CONTAINER_PULL=never; build or load it first")
        _ready.add(key)


def forget_images() -> None:
    """Check every image again before its next use (after images were removed)."""
    with _ready_lock:
        _ready.clear()


def _container_name(job_id: str | None, label: str) -> str:
    base = re.sub(r"[^a-zA-Z0-9_.-]+", "-", f"bnb-{job_id or 'run'}-{label}")[:100].strip("-.")
    return f"{base}-{uuid.uuid4().hex[:8]}"


def _give(path: str, uid: int, gid: int) -> None:
    st = os.stat(path)
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)


def _take_back(root: str) -> None:
    """Give everything the app left under ``root`` back to this process's user, so
    outputs at the destination belong to whoever ran the job."""
    uid, gid = os.geteuid(), os.getegid()
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def run_container(image: str, argv: list[str] | None, *, mounts: list[Mount], env: dict[str, str],
                  log_dir: str, job_id: str | None, timeout: float | None, what: str,
                  workdir: str | None = None, requirements: DeviceRequirements | None = None,
                  network: bool = False, user: str | None = None, engine: str | None = None,
                  label: str = "task", max_output: int | None = None) -> None:
    """Run ``argv`` in a fresh container of ``image`` and remove it; raise
    :class:`AppError` (or a subclass) naming ``what`` if it fails.

    Writable mounts are handed to the app's user for the run and given back after.

    For example, listing a folder in a busybox image::

        run_container("localhost/tools:1", ["sh", "-c", "ls /in"], mounts=[Mount("/data", "/in")],
                      env={}, log_dir="/tmp/logs", job_id=None, timeout=60, what="listing")
    """
    tool = find_container_tool(engine)
    ensure_image(tool, image, what)
    name = _container_name(job_id, label)
    opts = [tool.path, "run", "--rm", "--name", name, "--pull", "never", "--read-only",
            "--cap-drop", "all", "--security-opt", "no-new-privileges", "--log-driver", "none",
            "--label", f"bytenite-nb.job={job_id or ''}", "--label", "bytenite-nb=1"]
    if tool.kind == "docker":
        opts += ["--tmpfs", "/tmp"]  # podman's --read-only brings its own /tmp
    if not network:
        opts += ["--network", "none"]
    opts += tool.user_options(user)
    if requirements is not None:
        opts += requirements.limit_options()
    if timeout and tool.kind == "podman":
        opts += ["--timeout", str(int(timeout) + ENGINE_TIMEOUT_MARGIN)]
    writable = [m.host for m in mounts if m.writable]
    hand_over = tool.maps_to_other_uid and not user
    if hand_over:
        for path in writable:
            _give(path, APP_UID, APP_GID)
    for mount in mounts:
        opts += mount.option()
    env = {"HOME": "/tmp", **env}
    # Names only: the engine copies the values from its own environment, so
    # params never show on a command line that any user of the host can read.
    for key in env:
        opts += ["--env", key]
    if workdir:
        opts += ["--workdir", workdir]
    opts += extra_options()
    opts += [image, *(argv or [])]
    finished = False
    try:
        run_command(opts, env={**os.environ, **env}, cwd=log_dir, job_id=job_id, timeout=timeout, log_dir=log_dir,
                    what=what, max_output=max_output)
        finished = True
    except AppError as exc:
        if type(exc) is AppError and exc.exit_code in (125, 126, 127):
            raise _tool_error(exc, tool, image, what) from exc
        raise
    finally:
        if not finished:
            # A killed client leaves its container behind: stop and remove it.
            tool.remove(name)
        if hand_over:
            for path in writable:
                if path not in _kept_owned:
                    _take_back(path)


def _tool_error(exc: AppError, tool: ContainerTool, image: str, what: str) -> AppError:
    """A clear error for the engine's own exit statuses (125: engine error,
    126: not executable, 127: no such command), told apart from an app that
    happens to exit with them by the engine's ``Error:`` line."""
    text = exc.stderr_tail
    engine_said = bool(re.search(r"^(Error: |docker: )", text, re.MULTILINE)) or "OCI runtime" in text
    if not engine_said:
        return exc
    if _IMAGE_MISSING.search(text):
        forget_images()
        return ImageNotFound(f"{what}: image {image!r} is not available to {tool.kind}", exit_code=exc.exit_code,
                             stderr_tail=text)
    if exc.exit_code == 127:
        return ContainerError(f"{what}: the command is not in image {image!r}", exit_code=127, stderr_tail=text)
    if exc.exit_code == 126:
        return ContainerError(f"{what}: the command in image {image!r} cannot be run (not executable?)",
                              exit_code=126, stderr_tail=text)
    return ContainerError(f"{what}: {tool.kind} could not run a container of {image!r}", exit_code=125,
                          stderr_tail=text)


def contract_mounts(ctx: TaskContext) -> list[Mount]:
    """The runtime contract's folders, mounted where :func:`contract_env` says they are."""
    return [
        Mount(ctx.task_dir, TASK_DIR),
        Mount(ctx.results_dir, RESULTS_DIR, writable=True),
        Mount(ctx.shared_cache_dir, SHARED_CACHE_DIR),
        Mount(ctx.user_cache_dir, USER_CACHE_DIR, writable=True),
    ]


def contract_env(ctx: TaskContext) -> dict[str, str]:
    """The runtime contract's variables, as the app sees them inside its container."""
    env = ctx.env()
    env.update({"TASK_DIR": TASK_DIR, "TASK_RESULTS_DIR": RESULTS_DIR, "SHARED_CACHE_DIR": SHARED_CACHE_DIR,
                "USER_CACHE_DIR": USER_CACHE_DIR})
    return env


def run_task_in_container(ctx: TaskContext, image: str, argv: list[str] | None, *, what: str,
                          app_dir: str | None = None, extra_env: dict[str, str] | None = None,
                          requirements: DeviceRequirements | None = None, network: bool = False,
                          user: str | None = None, engine: str | None = None, workdir: str | None = None) -> None:
    """One app attempt on one chunk in a container, under the runtime contract.

    ``app_dir`` (a ByteNite folder's ``app/``) is mounted read-only at
    ``/bytenite/app`` and the command runs from there.

    On a worker that runs in ``image`` itself (:data:`WORKER_IMAGE_ENV`), the
    command runs as a process of the worker, under the same contract.
    """
    if os.environ.get(WORKER_IMAGE_ENV) == image:
        if not argv:
            raise ContainerError(f"{what}: this worker runs in image {image!r}, so the app runs as a process in "
                                 "it, which needs the app's command (the image's own command is not known here)")
        run_process(argv, ctx, cwd=app_dir or workdir or ctx.task_dir, extra_env=extra_env, what=what)
        return
    mounts = contract_mounts(ctx)
    if app_dir:
        mounts.append(Mount(app_dir, APP_DIR))
        workdir = workdir or APP_DIR
    _kept_owned.add(ctx.user_cache_dir)
    env = {**(extra_env or {}), **contract_env(ctx)}
    run_container(image, argv, mounts=mounts, env=env, log_dir=ctx.log_dir, job_id=ctx.job_id,
                  timeout=ctx.timeout, what=what, workdir=workdir, requirements=requirements,
                  network=network, user=user, engine=engine, label=f"chunk{ctx.chunk_number}",
                  max_output=ctx.max_output)


def _spelled(spec: dict, field: str) -> tuple[dict, list[FieldError]]:
    # device_requirements may be spelled deviceRequirements, and its keys minCpu...; the rest is snake_case
    return check_spelled(spec, ContainerApp.SPEC_SCHEMA, field, nested=("device_requirements",), top_level=False)


class ContainerApp(App):
    """A container image run on every chunk (see the module docs for the contract).

    ``command`` runs in the image (default: the image's own command);
    ``device_requirements`` (``min_cpu``, ``min_memory`` in GB, ``gpu``) set
    the container's limits and the Dask resources of each task; ``network``
    turns networking on; ``env`` adds variables; ``workdir`` is where the
    command starts; ``user`` runs it as another user (``"root"``, or
    ``"uid:gid"``, which must be able to write the results folder);
    ``engine`` picks ``podman`` or ``docker`` for this app.

    >>> ContainerApp.from_spec({"image": "localhost/upper:1", "network": True}).to_spec()
    {'image': 'localhost/upper:1', 'network': True}
    """

    runtime = "image"
    runs_own_process = True
    #: other runtime keys that are fields of this one
    absorbs = ("command",)
    SPEC_SCHEMA = runtime_schema(
        "Container image",
        "A container image run on every chunk through podman or docker, one container per chunk, under the "
        "runtime contract: no network unless asked for, a read-only root filesystem, an unprivileged user.",
        {
            "image": {**IMAGE_SCHEMA, "description": "The image, such as localhost/my-app:1 or docker.io/library/python:3.12."},
            "command": {**COMMAND_SCHEMA, "description": "What runs in the image (default: the image's own command)."},
            "env": ENV_SCHEMA,
            "network": {"type": "boolean", "x-expected": "true or false",
                        "description": "Whether the container may use the network (default: false)."},
            "device_requirements": DEVICE_REQUIREMENTS_SCHEMA,
            "user": {"type": "string", "pattern": r"\S", "x-expected": "a non-empty string",
                     "description": "Who the command runs as: root, or uid:gid (which must be able to write the "
                                    "results folder); default: an unprivileged user."},
            "engine": {"type": "string", "pattern": r"\S", "x-expected": "a non-empty string",
                       "description": "The container engine for this app: podman or docker, by name or path "
                                      "(default: BYTENITE_NB_CONTAINER_ENGINE, else podman, else docker)."},
            "workdir": {"type": "string", "pattern": r"\S", "x-expected": "a non-empty string",
                        "description": "The folder inside the container the command starts in."},
            "schema": PARAMS_SCHEMA,
        },
        ["image"],
    )

    def __init__(self, image: str, command: list[str] | str | None = None, *, env: dict | None = None,
                 network: bool = False, device_requirements: dict | None = None, user: str | None = None,
                 engine: str | None = None, workdir: str | None = None, schema: dict | None = None):
        self.image = image
        self.command = command
        self.env = dict(env or {})
        self.network = network
        self.device_requirements = dict(device_requirements or {})
        self.user = user
        self.engine = engine
        self.workdir = workdir
        self.schema = schema

    @classmethod
    def checked_spec(cls, spec: Any, field: str = "app") -> dict:
        """``spec`` with ``deviceRequirements`` (any spelling of it and of its keys) read
        as ``device_requirements``, once :attr:`SPEC_SCHEMA` accepts it."""
        if not isinstance(spec, dict):
            require(spec, cls.SPEC_SCHEMA, field)
        snake, errors = _spelled(spec, field)
        raise_errors(errors)
        return snake

    def spec_errors(self, field: str = "app") -> list[FieldError]:
        return _spelled(self.to_spec(), field)[1]

    @classmethod
    def from_spec(cls, spec: dict, base_dir: str | None = None) -> "ContainerApp":
        """The app a job's ``{"image": ...}`` object describes (checked by :attr:`SPEC_SCHEMA`).

        >>> ContainerApp.from_spec({"image": "localhost/upper:1", "netwrok": True})
        Traceback (most recent call last):
        ...
        bytenite_nb.exceptions.FieldError: app.netwrok: unknown field (did you mean "network"?)
        """
        spec = cls.checked_spec(spec)
        return cls(spec["image"], spec.get("command"), env=spec.get("env"), network=spec.get("network", False),
                   device_requirements=spec.get("device_requirements"), user=spec.get("user"),
                   engine=spec.get("engine"), workdir=spec.get("workdir"), schema=spec.get("schema"))

    @property
    def name(self) -> str:
        image = str(self.image)
        last = image.rsplit("/", 1)[-1]
        return last.split("@", 1)[0].split(":", 1)[0] or "image"

    @property
    def argv(self) -> list[str] | None:
        if self.command is None:
            return None
        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)

    @property
    def requirements(self) -> DeviceRequirements:
        return DeviceRequirements.parse(self.device_requirements, "app.device_requirements")

    def check(self, field: str = "app") -> list[FieldError]:
        return self.spec_errors(field)

    def resources(self) -> dict[str, float]:
        return self.requirements.resources()

    def run(self, ctx: TaskContext) -> None:
        run_task_in_container(ctx, self.image, self.argv, what=f"app {self.name} (image {self.image})",
                              extra_env=self.env, requirements=self.requirements, network=self.network,
                              user=self.user, engine=self.engine, workdir=self.workdir)

    def to_spec(self) -> Any:
        spec: dict[str, Any] = {"image": self.image}
        if self.command is not None:
            spec["command"] = self.command
        for key in ("env", "device_requirements"):
            if getattr(self, key):
                spec[key] = getattr(self, key)
        if self.network:
            spec["network"] = self.network
        for key in ("user", "engine", "workdir", "schema"):
            if getattr(self, key) is not None:
                spec[key] = getattr(self, key)
        return spec
