"""The job model: ByteNite-shaped job files in and out, and their validation.

A job file (JSON or YAML)::

    {
      "name": "uppercase",
      "partitioner": "split-lines",
      "app": {"command": ["python3", "app.py"]},
      "assembler": "concat",
      "dataSource": {"dataSourceDescriptor": "file", "params": {"path": "in.txt"}},
      "dataDestination": "out/",
      "params": {"partitioner": {"chunk_size": 1048576}, "app": {}, "assembler": {}},
      "config": {"taskTimeout": 60, "jobTimeout": 3600, "maxTaskRetries": 2}
    }

The same job in Python:

>>> job = Job(source="in.txt", partitioner="split-lines", app={"command": ["python3", "app.py"]},
...           assembler="concat", destination="out/", params={"partitioner": {"chunk_size": 1048576}})
>>> job.to_dict()["partitioner"]
'split-lines'

Relative paths resolve against the job file's folder. Validation happens
before any work and reports every problem, each naming its field.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from . import config as _config
from . import registry
from .apps import App
from .assemblers import Assembler
from .exceptions import ComponentNotFound, FieldError, JobValidationError, StorageError
from .ids import JOB_ID_RULE, new_job_id, valid_job_id  # noqa: F401 (public here too)
from .partitioners import Partitioner
from .redact import drop_secrets
from .schema import check, show, suggest, with_defaults
from .storage import FileInfo, Location, check_destination, list_source, parse_location

CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "taskTimeout": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                        "description": "Seconds one attempt of the app may run on one chunk."},
        "jobTimeout": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                       "description": "Seconds the whole job may run; then it is cancelled."},
        "maxTaskRetries": {"type": "integer", "minimum": 0, "default": 2,
                           "description": "Retries of a failed chunk before the chunk fails."},
        "isTestJob": {"type": "boolean", "default": False,
                      "description": "Run the whole pipeline on the first chunk only."},
        "retryBackoff": {"type": "number", "minimum": 0, "default": 1.0,
                         "description": "Seconds before the first retry; doubles each retry (max 60)."},
        "failFast": {"type": "boolean", "default": False,
                     "description": "Stop the job at the first chunk that fails for good."},
        "minSuccessRatio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1,
                            "description": "Share of chunks that must succeed for the job to complete: below 1, "
                                           "the failed chunks are left out of the output and listed in _SUCCESS."},
        "staging": {"type": "string", "minLength": 1,
                    "description": "URL where chunk results wait for assembly (every worker must reach it)."},
        "maxAppOutput": {"type": "number", "exclusiveMinimum": 0, "default": 256,
                         "description": "MiB an app may print (stdout and stderr) per attempt before it is stopped."},
        "checksum": {"enum": ["crc32c", "sha256"], "default": "crc32c",
                     "description": "Checksum of every output in _SUCCESS."},
        "keepStaging": {"type": "boolean", "default": False,
                        "description": "Keep staged chunk results after the job completes."},
        "clusterOptions": {"type": "object",
                           "description": "Options of a Dask Gateway cluster made for the job (cluster "
                                          "'gateway'), as the Gateway offers them."},
        "maxWorkers": {"type": ["integer", "null"], "minimum": 1, "default": None,
                       "description": "Most workers a cluster made for the job grows to (it adapts to "
                                      "the chunk count)."},
    },
    "additionalProperties": False,
}

TEXT_LIMITS = {"name": 200, "id": 128, "description": 10_000, "templateId": 200}
FIELDS = ("name", "id", "description", "templateId", "partitioner", "app", "assembler",
          "dataSource", "dataDestination", "params", "config", "storageOptions")
#: ByteNite job fields that mean nothing here but are kept as they are
PASSTHROUGH_FIELDS = ("priority", "regions", "startAt")
PARAM_KINDS = ("partitioner", "app", "assembler")


@dataclass
class JobSpec:
    """A validated job with every component resolved: what the engine runs.

    Sent to the workers as it is (pickled), so it holds objects, not names:
    a component registered in a notebook reaches workers that never saw it.
    """

    name: str
    source: Location
    destination: Location
    partitioner: Partitioner
    partitioner_name: str
    partitioner_params: dict
    app: App
    app_params: dict
    assembler: Assembler
    assembler_name: str
    assembler_params: dict
    config: dict
    files: list[FileInfo] = field(default_factory=list)
    storage_options: dict = field(default_factory=dict)
    #: staging is the default one (neither config.staging nor the bytenite-nb.staging setting):
    #: a job on a Gateway or Kubernetes cluster may stage next to its destination instead
    staging_default: bool = False

    @property
    def fingerprint(self) -> str:
        """What must not change for a resumed run to reuse staged chunks."""
        parts = {
            "source": self.source.url,
            "partitioner": [self.partitioner_name, self.partitioner_params],
            "app": [self.app.fingerprint(), self.app_params],
            "assembler": [self.assembler_name],
            "test": self.config.get("isTestJob", False),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()[:24]

    @property
    def output_fingerprint(self) -> str:
        """What must not change for a completed job to count as done already:
        the chunks' work (:attr:`fingerprint`), and how and where it was assembled."""
        parts = [self.fingerprint, self.destination.url, self.assembler_name, self.assembler_params,
                 self.config.get("checksum", "crc32c")]
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()[:24]

    @property
    def staging_url(self) -> str:
        return self.config["staging"]


def component_spec(value: Any) -> Any:
    """How a component given as an object is written back to a job file.

    >>> component_spec("split-lines"), component_spec(len)
    ('split-lines', 'builtins:len')
    """
    if isinstance(value, (str, dict)) or value is None:
        return value
    if isinstance(value, App):
        return value.to_spec()
    target = value if isinstance(value, type) or callable(value) and not hasattr(value, "plan") else type(value)
    return f"{getattr(target, '__module__', '__main__')}:{getattr(target, '__qualname__', repr(target))}"


class Job:
    """A job: source -> partitioner -> app -> assembler -> destination.

    >>> job = Job(source="data/*.txt", app="identity", assembler="concat", destination="out/")
    >>> job.config["maxTaskRetries"]
    2
    """

    def __init__(self, source: Any = None, partitioner: Any = None, app: Any = None,
                 assembler: Any = None, destination: Any = None, params: dict | None = None,
                 config: dict | None = None, *, name: str | None = None, id: str | None = None,
                 description: str | None = None, template_id: str | None = None,
                 storage_options: dict | None = None, base_dir: str | None = None,
                 extra: dict | None = None):
        self.name = name
        self.id = id
        self.description = description
        self.template_id = template_id
        self.source = source
        self.destination = destination
        self.partitioner = partitioner
        self.app = app
        self.assembler = assembler
        self.params = {k: dict(v or {}) for k, v in (params or {}).items()}
        self.user_config = dict(config or {})
        self.storage_options = dict(storage_options or {})
        # Relative paths resolve against the job file's folder, or where the job was made.
        self.base_dir = os.path.abspath(base_dir) if base_dir else os.getcwd()
        self.extra = dict(extra or {})  # ByteNite fields kept for round trips
        self._template: dict | None = None
        self._load_errors: list[FieldError] = []

    # -- building ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict, *, base_dir: str | None = None, source_name: str | None = None) -> "Job":
        """A job from a ByteNite-shaped dict (the job file's content).

        Problems found while reading (an unknown field, params that are not
        objects) are reported by :meth:`validate`, together with all others.

        >>> job = Job.from_dict({"app": "identity", "dataSource": "in.txt", "dataDestination": "out/"})
        >>> job.to_dict()["app"]
        'identity'
        """
        if not isinstance(data, dict):
            raise JobValidationError(FieldError("", f"a job must be an object, got {show(data)}"), source_name)
        errors: list[FieldError] = []
        for key in data:
            if key not in FIELDS and key not in PASSTHROUGH_FIELDS and key != "storage_options":
                errors.append(FieldError(key, "unknown field" + suggest(key, FIELDS)))
        params = data.get("params") or {}
        if not isinstance(params, dict):
            errors.append(FieldError("params", f"expected object, got {show(params)}"))
            params = {}
        params = {kind: component_params(value) for kind, value in params.items()}
        for kind, value in params.items():
            if kind == "preset":
                continue
            if kind not in PARAM_KINDS:
                errors.append(FieldError(f"params.{kind}", "unknown field" + suggest(kind, PARAM_KINDS)))
            elif value is not None and not isinstance(value, dict):
                errors.append(FieldError(f"params.{kind}", f"expected object, got {show(value)}"))
        cfg = data.get("config") or {}
        if not isinstance(cfg, dict):
            errors.append(FieldError("config", f"expected object, got {show(cfg)}"))
            cfg = {}
        for key in ("name", "id", "description", "templateId"):
            if key in data and data[key] is not None and not isinstance(data[key], str):
                errors.append(FieldError(key, f"expected string, got {show(data[key])}"))
            elif isinstance(data.get(key), str) and len(data[key]) > TEXT_LIMITS[key]:
                errors.append(FieldError(key, f"is {len(data[key])} characters long; at most {TEXT_LIMITS[key]}"))
        job = cls(
            source=data.get("dataSource"),
            destination=data.get("dataDestination"),
            partitioner=data.get("partitioner"),
            app=data.get("app"),
            assembler=data.get("assembler"),
            params={k: v for k, v in params.items() if k in PARAM_KINDS and isinstance(v, dict)},
            config=cfg,
            name=data.get("name") if isinstance(data.get("name"), str) else None,
            id=data.get("id") if isinstance(data.get("id"), str) else None,
            description=data.get("description") if isinstance(data.get("description"), str) else None,
            template_id=data.get("templateId") if isinstance(data.get("templateId"), str) else None,
            storage_options=data.get("storageOptions") or data.get("storage_options"),
            base_dir=base_dir,
            extra={k: data[k] for k in PASSTHROUGH_FIELDS if k in data},
        )
        # Kept, not raised: validation reports them with every other problem at once.
        job._load_errors = errors
        job._source_name = source_name
        return job

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Job":
        """Load a job file (``.json``, ``.yaml`` or ``.yml``).

        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "job.json")
        >>> _ = open(path, "w").write(json.dumps({"app": "identity", "dataSource": "in.txt", "dataDestination": "out/"}))
        >>> Job.from_file(path).base_dir == os.path.dirname(path)
        True
        """
        path = os.path.abspath(os.fspath(path))
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise JobValidationError(FieldError("", f"cannot read job file: {exc.strerror}"), path) from exc
        except UnicodeDecodeError as exc:
            raise JobValidationError(FieldError("", f"not UTF-8 text: byte {exc.object[exc.start]:#04x} at offset "
                                                    f"{exc.start} ({exc.reason})"), path) from None
        data = parse_job_text(text, path)
        return cls.from_dict(data, base_dir=os.path.dirname(path), source_name=path)

    # -- writing back --------------------------------------------------------------

    def to_dict(self) -> dict:
        """The ByteNite-shaped job (``Job.from_dict(job.to_dict())`` gives the same job).

        Secrets in ``storageOptions`` are left out: credentials come from the
        environment, never from a saved file.
        """
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.id:
            out["id"] = self.id
        if self.description:
            out["description"] = self.description
        if self.template_id:
            out["templateId"] = self.template_id
        for key, value in (("partitioner", self.partitioner), ("app", self.app), ("assembler", self.assembler)):
            if value is None:
                continue
            if key == "app" and callable(value) and not isinstance(value, App):
                from .apps.python import function_ref

                out[key] = {"python": function_ref(value)}
            else:
                out[key] = component_spec(value)
        if self.source is not None:
            out["dataSource"] = _location_spec(self.source)
        if self.destination is not None:
            out["dataDestination"] = _location_spec(self.destination)
        out["params"] = {k: copy.deepcopy(self.params.get(k, {})) for k in PARAM_KINDS}
        if self.user_config:
            out["config"] = copy.deepcopy(self.user_config)
        options = drop_secrets(self.storage_options)
        if options:
            out["storageOptions"] = options
        out.update(copy.deepcopy(self.extra))
        return out

    def to_json(self, indent: int = 2) -> str:
        """The job file's text (JSON), as :meth:`to_dict` gives it."""
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | os.PathLike) -> str:
        """Write the job file (JSON, or YAML for ``.yaml``/``.yml``)."""
        import yaml

        path = os.fspath(path)
        data = self.to_dict()
        text = yaml.safe_dump(data, sort_keys=False) if path.endswith((".yaml", ".yml")) else json.dumps(data, indent=2) + "\n"
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def copy(self, **changes) -> "Job":
        """A copy with some constructor arguments changed: ``job.copy(id="x")``."""
        new = copy.copy(self)
        new.params = copy.deepcopy(self.params)
        new.user_config = copy.deepcopy(self.user_config)
        for key, value in changes.items():
            if key == "config":
                new.user_config = dict(value)
            elif not hasattr(new, key):
                raise TypeError(f"Job has no field {key!r}")
            else:
                setattr(new, key, value)
        return new

    # -- resolution ----------------------------------------------------------------

    @property
    def config(self) -> dict:
        """The job's config with defaults filled in."""
        base = with_defaults({}, CONFIG_SCHEMA)
        base.update((self.template or {}).get("config") or {})
        base.update(self.user_config)
        return base

    @property
    def template(self) -> dict | None:
        """The template named by ``templateId`` (None if there is none, or it cannot be found:
        :meth:`resolve` reports that)."""
        if self.template_id and self._template is None:
            try:
                self._template = find_template(self.template_id, self.base_dir)
            except FieldError:
                return None
        return self._template

    def _component(self, kind: str) -> Any:
        value = getattr(self, kind)
        if value is None and self.template_id:
            value = (self.template or {}).get(kind)
        return value

    def component_dir(self, kind: str) -> str | None:
        """The folder a component's relative path resolves from: the
        template's folder when the component comes from the template."""
        if getattr(self, kind) is None and self.template_id:
            return (self.template or {}).get("_dir", self.base_dir)
        return self.base_dir

    def component_near(self, kind: str) -> list[str]:
        """Where a component's tag is searched, nearest first: the template's
        folder and its parent, then the job's folder, for a component the
        template names; the job's folder otherwise."""
        if getattr(self, kind) is None and self.template_id and (self.template or {}).get("_dir"):
            template_dir = self.template["_dir"]
            return [template_dir, os.path.dirname(template_dir), self.base_dir]
        return [self.base_dir]

    def resolve_component(self, kind: str) -> Any:
        """The runnable partitioner, app or assembler this job names (after its
        template), through :func:`bytenite_nb.registry.resolve`.

        >>> type(Job(app="identity").resolve_component("assembler")).__name__
        'Passthrough'
        """
        spec = self._component(kind)
        if spec is None and kind != "app":
            spec = "passthrough"
        return registry.resolve(kind, spec, base_dir=self.component_dir(kind), field=kind,
                                near=self.component_near(kind))

    def _params(self, kind: str) -> dict:
        base = dict(component_params(((self.template or {}).get("params") or {}).get(kind)) or {})
        base.update(self.params.get(kind) or {})
        return base

    def resolve(self, *, check_storage: bool = True) -> JobSpec:
        """Validate everything and resolve components; raise :class:`JobValidationError`
        listing every problem found, each naming its field."""
        errors: list[FieldError] = list(self._load_errors) + number_errors(
            {"params": self.params, "config": self.user_config, "dataSource": self.source,
             "dataDestination": self.destination})

        def collect(fn: Callable[[], Any], fld: str) -> Any:
            try:
                return fn()
            except FieldError as exc:
                errors.append(exc)
            except JobValidationError as exc:
                errors.extend(exc.errors)
            except (StorageError, ComponentNotFound) as exc:
                message = str(exc)  # storage errors already name their field: say it once
                errors.append(FieldError(fld, message.removeprefix(f"{fld}: ")))
            except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
                # A value of a shape no check foresaw: still an error of this field, not a crash.
                errors.append(FieldError(fld, f"cannot be used: {type(exc).__name__}: {str(exc)[:300]}"))
            return None

        if self.template_id and self.template is None:
            collect(lambda: find_template(self.template_id, self.base_dir), "templateId")
        # data
        source = destination = None
        if self.source is None:
            errors.append(FieldError("dataSource", "is required (use {\"dataSourceDescriptor\": \"bypass\"} for none)"))
        else:
            source = collect(lambda: parse_location(self.source, field="dataSource", base_dir=self.base_dir,
                                                    storage_options=self.storage_options), "dataSource")
        if self.destination is None:
            errors.append(FieldError("dataDestination", "is required"))
        else:
            destination = collect(lambda: parse_location(self.destination, field="dataDestination",
                                                         base_dir=self.base_dir, storage_options=self.storage_options,
                                                         destination=True), "dataDestination")
        # components
        part_spec = self._component("partitioner") or "passthrough"
        asm_spec = self._component("assembler") or "passthrough"
        partitioner = collect(lambda: self.resolve_component("partitioner"), "partitioner")
        assembler = collect(lambda: self.resolve_component("assembler"), "assembler")
        app = collect(lambda: self.resolve_component("app"), "app")
        # params
        resolved_params = {}
        for kind, comp in (("partitioner", partitioner), ("app", app), ("assembler", assembler)):
            params = self._params(kind)
            schema = None
            if comp is not None:
                try:
                    schema = comp.schema
                except Exception as exc:  # e.g. a broken schema.json
                    errors.append(FieldError(kind, str(exc)))
            errors.extend(check(params, schema, f"params.{kind}"))
            resolved_params[kind] = with_defaults(params, schema)
        cfg = self.config
        staging_default = not (cfg.get("staging") or _config.get("staging"))
        cfg["staging"] = cfg.get("staging") or _config.staging_url()
        errors.extend(check(self.user_config, CONFIG_SCHEMA, "config"))
        if self.id is not None and not valid_job_id(self.id):
            errors.append(FieldError("id", JOB_ID_RULE + f", got {show(self.id)}"))
        files: list[FileInfo] = []
        if not errors and check_storage:
            files = collect(lambda: list_source(source), "dataSource") or []
            collect(lambda: check_destination(destination), "dataDestination")
        if errors:
            raise JobValidationError(errors, getattr(self, "_source_name", None))
        return JobSpec(
            name=self.name or _default_name(app),
            source=source,
            destination=destination,
            partitioner=partitioner,
            partitioner_name=component_spec(part_spec) if not isinstance(part_spec, str) else part_spec,
            partitioner_params=resolved_params["partitioner"],
            app=app,
            app_params=resolved_params["app"],
            assembler=assembler,
            assembler_name=component_spec(asm_spec) if not isinstance(asm_spec, str) else asm_spec,
            assembler_params=resolved_params["assembler"],
            config=cfg,
            files=files,
            storage_options=dict(self.storage_options),
            staging_default=staging_default,
        )

    def validate(self, *, check_storage: bool = True) -> "Job":
        """Raise :class:`JobValidationError` if anything is wrong; return the job.

        >>> Job(source="in.txt", app="identity", destination="out/",
        ...     params={"partitioner": {"x": 1}}).validate(check_storage=False)
        Traceback (most recent call last):
        ...
        bytenite_nb.exceptions.JobValidationError: invalid job: params.partitioner.x: unknown field
        """
        self.resolve(check_storage=check_storage)
        return self

    # -- running (the engine does the work) ---------------------------------------

    def plan(self, **kwargs):
        """The chunk references the partitioner makes, without running the app.

        Planning runs as a Dask task (``client=``, ``scheduler=`` as in :meth:`run`).

        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "in.txt"), "w").write("a\\nb\\nc\\n")
        >>> job = Job(source="in.txt", partitioner="split-lines", app="identity", assembler="concat",
        ...           destination="out/", params={"partitioner": {"lines_per_chunk": 2}}, base_dir=folder)
        >>> [(r.index, r.size) for r in job.plan(scheduler="sync")]
        [(0, 4), (1, 2)]
        """
        from .engine import plan_job

        return plan_job(self, **kwargs)

    def submit(self, **kwargs):
        """Start the job and return a :class:`~bytenite_nb.engine.JobHandle` at once
        (same keyword arguments as :meth:`run`).

        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "in.txt"), "w").write("a\\nb\\n")
        >>> handle = Job(source="in.txt", app="identity", assembler="concat", destination="out/",
        ...              base_dir=folder).submit(scheduler="sync")
        >>> handle.result().state, handle.progress.done
        ('COMPLETE', 1)
        """
        from .engine import submit_job

        return submit_job(self, **kwargs)

    def run(self, **kwargs):
        """Run the job to the end and return its :class:`~bytenite_nb.engine.JobResult`.

        Keyword arguments: ``client`` (a ``distributed.Client``), ``cluster``
        (``"local"``, ``"sync"`` to run in this process for debugging, a scheduler
        address, ``"gateway"`` for a Dask Gateway cluster made for the job,
        ``"gateway:NAME"`` for a running one: :mod:`bytenite_nb.cluster`),
        ``scheduler`` (the same as ``cluster``), ``workers`` (size of the local
        cluster), ``id`` (resume or name the run), ``force`` (run again even if
        complete), ``rerun_failed`` (with ``id``: run only the chunks an earlier
        run did not complete, then publish the whole output), ``progress`` (a
        callback, or ``True`` for a bar). Raises
        :class:`~bytenite_nb.exceptions.JobFailed` if the job fails.

        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "in.txt"), "w").write("a\\nb\\nc\\n")
        >>> result = Job(source="in.txt", partitioner="split-lines", app="identity", assembler="concat",
        ...              destination="out/", params={"partitioner": {"lines_per_chunk": 1}},
        ...              base_dir=folder).run(scheduler="sync")
        >>> result.n_chunks, open(os.path.join(folder, "out", "output.bin")).read()
        (3, 'a\\nb\\nc\\n')
        """
        from .engine import run_job

        return run_job(self, **kwargs)

    def __repr__(self) -> str:
        return f"<Job {self.name or ''} {self.to_dict().get('partitioner')} -> {self.to_dict().get('app')} -> {self.to_dict().get('assembler')}>"


def _default_name(app: App | None) -> str:
    if app is None:
        return "job"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(app.name)).strip("-") or "job"


def _location_spec(value: Any) -> Any:
    """A source or destination as a job file writes it: secrets left out."""
    if isinstance(value, Location):
        value = value.to_spec()
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        for key in ("storageOptions", "storage_options"):
            if isinstance(value.get(key), dict):
                value[key] = drop_secrets(value[key])
    return value


#: the keys of ByteNite's params wrapper: {"app_id": ..., "version": ..., "parameters": {...}}
PARAMS_WRAPPER = {"app_id", "appId", "version", "parameters"}


def component_params(value: Any) -> Any:
    """A component's params, out of ByteNite's ``{"app_id", "version", "parameters"}``
    wrapper when a template or job uses it.

    >>> component_params({"app_id": "fanout-urls", "version": "0.2", "parameters": {"chunk_size": 1}})
    {'chunk_size': 1}
    >>> component_params({"chunk_size": 1})
    {'chunk_size': 1}
    """
    if (isinstance(value, dict) and "parameters" in value and ({"app_id", "appId"} & set(value))
            and set(value) <= PARAMS_WRAPPER):
        return value["parameters"] if value["parameters"] is not None else {}
    return value


#: a job file is small: more values than this (YAML aliases can multiply them) or deeper nesting is refused
MAX_JOB_VALUES = 100_000
MAX_JOB_DEPTH = 64


def parse_job_text(text: str, path: str = "<job>") -> dict:
    """Parse a job file's text: JSON, or YAML for ``.yaml``/``.yml`` names.

    YAML is read with the safe loader only (plain data, no Python objects), and
    a document of more than :data:`MAX_JOB_VALUES` values, counting each
    alias again, or nested deeper than :data:`MAX_JOB_DEPTH` is refused.

    >>> parse_job_text('app: !!python/name:os.system', "job.yaml")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.JobValidationError: invalid job job.yaml: not valid YAML at line 1, column 6: could not determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'
    """
    try:
        data = _parse_text(text, path)
    except RecursionError:
        raise JobValidationError(FieldError("", f"nested more than {MAX_JOB_DEPTH} levels deep"), path) from None
    _check_shape(data, path)
    if not isinstance(data, dict):
        raise JobValidationError(FieldError("", f"a job file must hold an object, got {show(data)}"), path)
    return data


MAX_EXACT_INTEGER = 2**53  # the largest a JSON reader anywhere keeps exactly


def number_errors(data: Any, prefix: str = "") -> list[FieldError]:
    """A field error for every number no job means: beyond ±2**53 or not finite.

    >>> [str(e) for e in number_errors({"params": {"app": {"n": 10**100}, "x": [1.5, float("inf")]}})]
    ['params.app.n: 1e+100 is too large (at most 9007199254740992)', 'params.x[1]: inf is not a finite number']
    """
    import math

    found: list[FieldError] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found += number_errors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += number_errors(value, f"{prefix}[{i}]")
    elif isinstance(data, bool):
        pass
    elif isinstance(data, int) and abs(data) > MAX_EXACT_INTEGER:
        digits = int(abs(data).bit_length() * 0.30103) + 1  # never str(): it refuses over 4300 digits
        text = f"{float(data):.0e}" if digits < 300 else f"a number of about {digits} digits"
        found.append(FieldError(prefix, f"{text} is too large (at most {MAX_EXACT_INTEGER})"))
    elif isinstance(data, float) and not math.isfinite(data):
        found.append(FieldError(prefix, f"{data} is not a finite number"))
    elif isinstance(data, float) and abs(data) > MAX_EXACT_INTEGER:
        found.append(FieldError(prefix, f"{data:.0e} is too large (at most {MAX_EXACT_INTEGER})"))
    return found


def _check_shape(data: Any, path: str) -> None:
    """Refuse a document too large or too deep to be a job (before anything walks it)."""
    stack, seen = [(data, 1, "")], 0
    while stack:
        value, depth, where = stack.pop()
        seen += 1
        if seen > MAX_JOB_VALUES:
            raise JobValidationError(FieldError("", f"holds more than {MAX_JOB_VALUES} values (YAML aliases "
                                                    "count each time they are used): too large for a job"), path)
        if depth > MAX_JOB_DEPTH:
            raise JobValidationError(FieldError("", f"nested more than {MAX_JOB_DEPTH} levels deep"), path)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):  # YAML allows any key; a job, like JSON, names its fields
                    raise JobValidationError(FieldError(where, f"field names must be strings, got {show(key)}"),
                                             path)
                stack.append((item, depth + 1, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(value))


def _parse_text(text: str, path: str) -> Any:
    if path.endswith((".yaml", ".yml")):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise JobValidationError(FieldError("", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"), path) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobValidationError(
            FieldError("", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"), path) from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise JobValidationError(FieldError("", f"not valid JSON: {exc}"), path) from None


def find_template(template_id: str, base_dir: str | None = None) -> dict:
    """The ``template.json`` whose ``id`` is ``template_id``, from the template folders.

    Looks for ``<dir>/<id>.json``, ``<dir>/<id>/template.json``, any
    ``template.json`` one level down and, in a ``templates/`` folder, any
    ``*.json``, whose ``id`` matches. A template's params may be given as
    ``params`` or, as ByteNite's templates do, ``default_params``.
    """
    looked = []
    for folder in _config.template_dirs(base_dir):
        looked.append(folder)
        candidates = [os.path.join(folder, f"{template_id}.json"), os.path.join(folder, template_id, "template.json")]
        candidates += sorted(glob.glob(os.path.join(folder, "*", "template.json")))
        if os.path.basename(os.path.normpath(folder)) == "templates":
            # ByteNite's repositories: templates/<any name>.json
            candidates += sorted(glob.glob(os.path.join(folder, "*.json")))
        candidates += [os.path.join(folder, "template.json")]
        for path in candidates:
            if not os.path.isfile(path):
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, json.JSONDecodeError) as exc:
                raise FieldError("templateId", f"{path}: not a valid template: {exc}") from exc
            if isinstance(data, dict) and data.get("id") == template_id:
                for key in ("app", "partitioner", "assembler"):
                    data.setdefault(key, None)
                # ByteNite's templates give their params as default_params
                for key in ("default_params", "defaultParams"):
                    if "params" not in data and isinstance(data.get(key), dict):
                        data["params"] = data[key]
                data["_dir"] = os.path.dirname(path)  # its relative paths resolve from here
                return data
    raise FieldError("templateId", f"no template {template_id!r} in {', '.join(looked)}")
