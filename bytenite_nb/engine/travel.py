"""What a job needs when its workers are on other hosts, checked and sent before any work.

Workers on other hosts share no disk with the client, so:

- **data**: staging, the source and the destination must be URLs every worker
  reaches (an object store), not this machine's folders. A job that breaks this
  fails before anything runs, with a :class:`~bytenite_nb.exceptions.JobValidationError`
  naming each field (``config.staging``, ``dataSource``, ``dataDestination``).
  A Gateway or Kubernetes job whose staging is the default (neither
  ``config.staging`` nor the ``bytenite-nb.staging`` setting) stages next to its
  destination when that is an object store: ``s3://bucket/out/`` stages under
  ``s3://bucket/.bytenite-nb-staging/<job id>/`` (removed when the job completes).
- **code**: a Python function app defined in a notebook (``__main__``) travels
  by value (cloudpickle, as Dask sends it); an app, partitioner or assembler from
  a local module or package (one no installed distribution provides, or an
  editable install's) is zipped and registered as a worker plugin
  (:class:`ShippedCode`) that unpacks it into each worker's local directory
  and puts it first on ``sys.path``, on the workers there and on those that
  join later; a module file beside the job (``app.py:fn``) goes the same way.
  A package travels whole, as a directory (its data files too).
- **versions**: bytenite-nb, dask, distributed and cloudpickle must be the same
  on the client, the scheduler and every worker; a difference is a
  :class:`~bytenite_nb.exceptions.VersionMismatch` naming each package, where it
  differs, and both versions.

"Other hosts": every Gateway and Kubernetes cluster; for any other cluster,
one whose scheduler or workers have an address that is not one of this
machine's. The ``bytenite-nb.shared-disk`` setting overrides the data side:
true says the workers see this machine's files at the same paths (a network
home mounted everywhere), so local folders are allowed; false says they never
do (workers in containers or namespaces of this machine), so every cluster
but ``sync`` and workers in this very process needs URLs. Code is shipped
whenever the workers count as elsewhere by these rules.

>>> staging_beside("s3://bucket/out/")
's3://bucket/.bytenite-nb-staging'
>>> staging_beside("gs://bucket/team/results")
'gs://bucket/team/.bytenite-nb-staging'
>>> staging_beside("/data/out") is None
True
>>> staging_beside("s3://bucket/")
Traceback (most recent call last):
...
bytenite_nb.exceptions.JobValidationError: invalid job: config.staging: the destination s3://bucket/ is a \
bucket root: staging beside it would be inside it; set config.staging (or the bytenite-nb.staging setting) \
to a URL outside the destination, such as s3://bucket-staging/jobs/
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import io
import ipaddress
import os
import socket
import sys
import zipfile
from functools import lru_cache

from distributed.diagnostics.plugin import WorkerPlugin

from .. import config
from ..exceptions import CodeNotShipped, FieldError, JobValidationError, VersionMismatch

#: the distributions that must match everywhere (by the names the Python packages have)
VERSIONED = {"bytenite_nb": "bytenite-nb", "dask": "dask", "distributed": "distributed",
             "cloudpickle": "cloudpickle"}
STAGING_FOLDER = ".bytenite-nb-staging"
#: protocols of data only this process or this machine sees
MACHINE_PROTOCOLS = ("file", "local", "memory")
SKIPPED_NAMES = ("__pycache__", ".git", ".pytest_cache", ".ipynb_checkpoints")
#: partitioner params that name a function as module:function, whose module the workers import
FUNCTION_PARAMS = ("detector",)


# -- where the workers are ---------------------------------------------------------------


@lru_cache(maxsize=1)
def this_machine() -> frozenset[str]:
    """The names and addresses of this machine (every interface's)."""
    import psutil

    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    try:
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    for addresses in psutil.net_if_addrs().values():
        names.update(a.address.split("%")[0] for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6))
    return frozenset(names)


def other_hosts(addresses) -> list[str]:
    """The hosts of Dask ``addresses`` that are not this machine, in order, once each.

    >>> other_hosts(["tcp://127.0.0.1:8786", "inproc://10.1.2.3/7/1", "tcp://192.0.2.7:40000",
    ...              "tls://192.0.2.7:40001", "tcp://[::1]:9000"])
    ['192.0.2.7']
    """
    from distributed.comm.addressing import get_address_host, parse_address

    found: list[str] = []
    for address in addresses:
        if parse_address(address)[0] == "inproc":
            continue  # this very process
        host = get_address_host(address)
        try:
            if ipaddress.ip_address(host).is_loopback:
                continue
        except ValueError:
            pass
        if host not in this_machine() and host not in found:
            found.append(host)
    return found


def shared_disk() -> bool | None:
    """Whether the workers see this machine's files at the same paths
    (``bytenite-nb.shared-disk``): True, False, or None (judged by their hosts)."""
    value = config.get("shared-disk", None)
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return None if text in ("", "null", "none", "auto") else text in ("1", "true", "yes", "on")


def workers_elsewhere(executor) -> list[str]:
    """Why the Dask executor's workers are taken to share no disk with this process, in
    words (empty: they do): a Gateway or Kubernetes cluster, whose workers
    always count as elsewhere; the other hosts among the scheduler's and the
    workers' addresses; or ``bytenite-nb.shared-disk`` set to false."""
    cluster = getattr(executor, "cluster", None)
    if cluster is not None:
        reasons = [f"a {cluster.describe().get('kind')} cluster"]
    else:
        info = executor.client.scheduler_info(n_workers=-1)
        addresses = [info.get("address") or executor.address or "inproc://", *info.get("workers", {})]
        if all(address.startswith("inproc://") for address in addresses):
            return []  # workers of this very process
        reasons = [f"host {host}" for host in other_hosts(addresses)]
    if not reasons and shared_disk() is False:
        reasons = ["bytenite-nb.shared-disk is false"]
    return reasons


# -- data every worker reaches ---------------------------------------------------------------


def staging_beside(destination: str | None) -> str | None:
    """The staging root next to an object-store ``destination``, never under it
    (None for a local one). Raises :class:`JobValidationError` on ``config.staging``
    for a bucket root, which has no place beside it."""
    if not destination or "://" not in destination:
        return None
    protocol, rest = destination.split("://", 1)
    if protocol.lower() in MACHINE_PROTOCOLS:
        return None
    rest = rest.strip("/")
    if "/" not in rest:  # the staging would be inside the destination, seen as job output
        raise JobValidationError([FieldError("config.staging", (
            f"the destination {destination} is a bucket root: staging beside it would be inside it; set "
            f"config.staging (or the bytenite-nb.staging setting) to a URL outside the destination, such as "
            f"{protocol}://{rest or 'bucket'}-staging/jobs/"))])
    return f"{protocol}://{rest.rsplit('/', 1)[0]}/{STAGING_FOLDER}"


def _on_this_machine(url: str | None) -> bool:
    if not url:
        return False
    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    return protocol in MACHINE_PROTOCOLS


def fit_data(spec, elsewhere: list[str], *, cluster_kind: str | None = None):
    """``spec`` for workers ``elsewhere`` (:func:`workers_elsewhere`): on a
    Gateway or Kubernetes cluster (``cluster_kind``), its default staging moved
    next to an object-store destination; then every location checked to be a
    URL the workers reach (unless ``bytenite-nb.shared-disk`` is true).

    Raises :class:`JobValidationError` naming each field that is a folder of this machine.
    """
    if not elsewhere or shared_disk() is True:
        return spec
    if cluster_kind in ("gateway", "kubernetes") and spec.staging_default and spec.destination is not None:
        beside = staging_beside(spec.destination.url) \
            if spec.destination.storage_options == spec.storage_options else None
        if beside:
            spec = dataclasses.replace(spec, config={**spec.config, "staging": beside}, staging_default=False)
    where = ", ".join(elsewhere[:3])
    errors = []
    if _on_this_machine(spec.staging_url):
        errors.append(FieldError("config.staging", (
            f"{spec.staging_url} is a folder of this machine, and the workers run elsewhere ({where}): they share "
            f"no disk with it. Set config.staging (or the bytenite-nb.staging setting) to a URL every worker "
            f"reaches, such as s3://bucket/staging/")))
    if spec.source is not None and _on_this_machine(spec.source.url):
        errors.append(FieldError("dataSource", (
            f"{spec.source.url} is on this machine, and the workers run elsewhere ({where}): put the source in "
            f"an object store (s3://, gs://, az://...) or at a URL they reach")))
    if spec.destination is not None and _on_this_machine(spec.destination.url):
        errors.append(FieldError("dataDestination", (
            f"{spec.destination.url} is on this machine, and the workers run elsewhere ({where}): give an "
            f"object-store URL (s3://, gs://, az://...) as the destination")))
    if errors:
        raise JobValidationError(errors)
    return spec


# -- the same versions everywhere --------------------------------------------------------------


#: (scheduler, its workers) found to match: a later job on the same processes is not checked again
_matched: set[tuple[str, frozenset]] = set()


def check_versions(client) -> None:
    """Raise :class:`VersionMismatch` when the scheduler or a worker of ``client``
    has other versions of bytenite-nb, dask, distributed or cloudpickle than this
    process (as each one's installed packages report them).

    Once per set of processes: a restarted or new worker has a new address."""
    info = client.scheduler_info(n_workers=-1)
    scheduler = str(info.get("address") or info.get("id"))
    if (scheduler, frozenset(info.get("workers") or ())) in _matched:
        return
    found = client.get_versions(packages=["bytenite_nb"])
    mine = found["client"]["packages"]
    places = [("the scheduler", found.get("scheduler"))]
    places += [(f"worker {address}", report) for address, report in sorted((found.get("workers") or {}).items())]
    differences = []
    for where, report in places:
        theirs = report.get("packages") if isinstance(report, dict) else None
        if theirs is None:
            continue  # it did not answer (gone since): it runs nothing of the job
        for package, distribution in VERSIONED.items():
            if theirs.get(package) != mine.get(package):
                differences.append(f"{distribution} {theirs.get(package) or 'not installed'} on {where} "
                                   f"({mine.get(package) or 'not installed'} here)")
    if differences:
        shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
        raise VersionMismatch(
            f"the cluster runs other versions than this process: {shown}. Install the same versions of "
            f"{', '.join(VERSIONED.values())} on the client, the scheduler and every worker; nothing of the job ran")
    if len(_matched) > 64:
        _matched.clear()  # a long-lived process joining many clusters keeps no unbounded record
    answered = [address for address, report in (found.get("workers") or {}).items()
                if isinstance(report, dict) and "packages" in report]
    _matched.add((scheduler, frozenset(answered)))


# -- code the workers lack ----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _installed() -> frozenset[str]:
    """Top-level names an installed distribution provides, but for editable
    installs (``pip install -e``): their code is a local folder, like any other."""
    import json

    editable = set()
    for dist in importlib.metadata.distributions():
        try:
            if json.loads(dist.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable"):
                editable.add(dist.metadata["Name"])
        except (ValueError, AttributeError):
            continue
    return frozenset(top for top, dists in importlib.metadata.packages_distributions().items()
                     if not set(dists) <= editable)


def local_top_level(module_name: str) -> str | None:
    """The top-level module of ``module_name`` when it is local code (imported
    here from a folder no installed distribution covers); None otherwise.

    >>> local_top_level("os.path"), local_top_level("dask.array"), local_top_level("__main__")
    (None, None, None)
    """
    top = module_name.split(".")[0]
    if (not top or top == "__main__" or top in sys.stdlib_module_names or top in sys.builtin_module_names
            or top in _installed() or top == "bytenite_nb"):
        return None
    module = sys.modules.get(top)
    if module is None:
        try:
            module = importlib.import_module(top)
        except ImportError:
            return None
    return top if (getattr(module, "__file__", None) or list(getattr(module, "__path__", []) or [])) else None


def _source_of(top: str) -> str:
    """The file or package folder of top-level module ``top``."""
    module = sys.modules[top]
    paths = list(getattr(module, "__path__", []) or [])
    if paths:
        return paths[0]
    return module.__file__


def _modules_of(spec) -> list[str]:
    """The modules the job's components come from."""
    from ..apps.python import PythonApp, module_file_name

    names = []
    app = spec.app
    if isinstance(app, PythonApp):
        if isinstance(app.fn, str):
            module_ref = app.fn.rpartition(":")[0]
            path = app.module_file(module_ref)
            names.append(module_file_name(path) if path else module_ref)
        else:
            names.append(getattr(app.fn, "__module__", None) or "__main__")
            if names[-1] == "__main__":  # by value: what it refers to must be on the workers
                names += referenced_modules(app.fn)
    else:
        names.append(type(app).__module__)
    names += [type(spec.partitioner).__module__, type(spec.assembler).__module__]
    # a partitioner's param naming a function of the user's (audio-language's detector)
    for param in FUNCTION_PARAMS:
        ref = (spec.partitioner_params or {}).get(param)
        if isinstance(ref, str) and ":" in ref:
            names.append(ref.rpartition(":")[0])
    return names


def referenced_modules(fn) -> list[str]:
    """The modules a function defined in a notebook or script refers to: the
    modules among the globals its code names (its nested functions' too), the
    modules of the functions and classes it names, holds in its closure or has
    as defaults, followed through the other functions and classes of the
    notebook it uses. cloudpickle sends those by value but the rest by name,
    so the local modules among them must travel too.

    >>> import json, os
    >>> from textwrap import dedent
    >>> def clean(text):
    ...     return dedent(text)
    >>> def app(chunk, results, params):
    ...     return json.dumps(clean(os.path.basename(chunk)))
    >>> app.__module__ = clean.__module__ = "__main__"  # as if defined in a notebook
    >>> referenced_modules(app)
    ['json', 'os', 'textwrap']
    """
    import types

    found, seen, todo = set(), set(), [fn]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for value in _referenced_values(obj):
            if isinstance(value, types.ModuleType):
                found.add(value.__name__)
            elif isinstance(getattr(value, "__module__", None), str):
                if value.__module__ != "__main__":
                    found.add(value.__module__)
                elif isinstance(value, (types.FunctionType, type)):
                    todo.append(value)  # the notebook's own: sent by value, so what it uses counts
    return sorted(found)


def _referenced_values(obj) -> list:
    """What a function (its code's globals, closure, defaults, wrapped function) or a
    class (its bases and attributes) refers to."""
    import types

    if isinstance(obj, type):
        values = list(obj.__bases__)
        for value in vars(obj).values():
            values.append(getattr(value, "__func__", value))  # staticmethod, classmethod
        return values
    names, codes = set(), [getattr(obj, "__code__", None)]
    while codes:
        code = codes.pop()
        if code is not None:
            names.update(code.co_names)
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    scope = getattr(obj, "__globals__", {})
    values = [scope[name] for name in names if name in scope]
    values += [cell.cell_contents for cell in getattr(obj, "__closure__", None) or () if _filled(cell)]
    values += list(getattr(obj, "__defaults__", None) or ())
    values += list((getattr(obj, "__kwdefaults__", None) or {}).values())
    if getattr(obj, "__wrapped__", None) is not None:
        values.append(obj.__wrapped__)
    return values


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a closure cell not assigned yet
        return False
    return True


def local_modules(names) -> list[str]:
    """The local top-level modules among ``names`` and among what those import in
    turn (a local helper that imports another local helper needs both).

    >>> local_modules(["json", "dask.array"])
    []
    """
    import types

    found, todo = [], [top for top in (local_top_level(n) for n in names if n) if top]
    while todo:
        top = todo.pop()
        if top in found:
            continue
        found.append(top)
        for name, module in list(sys.modules.items()):
            if module is None or (name != top and not name.startswith(top + ".")):
                continue
            for value in list(vars(module).values()):
                other = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
                other_top = local_top_level(other) if isinstance(other, str) else None
                if other_top and other_top not in found:
                    todo.append(other_top)
    return sorted(found)


def code_to_ship(spec) -> dict[str, str]:
    """What the workers need of this machine's code for ``spec``: top-level name -> file or package folder."""
    return {top: _source_of(top) for top in local_modules(_modules_of(spec))}


def _left_out(full: str, package: str) -> str | None:
    """Why the file or folder ``full`` of the package folder ``package`` is not
    shipped (None: it is): a dot name (``.env``, ``.aws``: credentials live
    there), or a link to outside the package (the workers need no file of this
    machine beyond the package, and a link may reach secrets)."""
    if os.path.basename(full).startswith("."):
        return "a dot name"
    if os.path.islink(full):
        root = os.path.realpath(package)
        if os.path.commonpath([root, os.path.realpath(full)]) != root:
            return "a link to outside the package"
        if os.path.isdir(full):
            return "a link to a folder (not followed)"
    return None


def _zip(sources: dict[str, str]) -> tuple[bytes, list[str]]:
    """A zip of the modules (a file as ``<name>.py``, a package as its folder),
    and what of the packages was left out, each ``"<path in the zip>: <why>"``
    (see :func:`_left_out`).

    >>> import os, tempfile
    >>> package = tempfile.mkdtemp()
    >>> for name in ("__init__.py", ".env"):
    ...     open(os.path.join(package, name), "w").close()
    >>> _zip({"pkg": package})[1]
    ['pkg/.env: a dot name']
    """
    buffer, left_out = io.BytesIO(), []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for top, path in sorted(sources.items()):
            if os.path.isfile(path):
                z.write(path, f"{top}.py")
                continue
            for root, dirs, files in os.walk(path):
                kept = []
                for name in sorted(d for d in dirs if d not in SKIPPED_NAMES):
                    why = _left_out(os.path.join(root, name), path)
                    if why:
                        left_out.append(f"{top}/{os.path.relpath(os.path.join(root, name), path)}/: {why}")
                    else:
                        kept.append(name)
                dirs[:] = kept
                for name in sorted(files):
                    if name.endswith((".pyc", ".pyo")):
                        continue
                    full = os.path.join(root, name)
                    inside = os.path.join(top, os.path.relpath(full, path))
                    why = _left_out(full, path)
                    if why:
                        left_out.append(f"{inside}: {why}")
                    else:
                        z.write(full, inside)
    return buffer.getvalue(), left_out


class ShippedCode(WorkerPlugin):
    """Local modules and packages for the workers: unpacked into the worker's
    local directory, first on ``sys.path``, with older copies of the same modules
    forgotten so the next import takes these."""

    #: named by its content: registered again (a later job, the same code), it is not sent again
    idempotent = True

    def __init__(self, names: list[str], data: bytes):
        self.names = list(names)
        self.data = data
        self.name = "bytenite-nb-code-" + hashlib.sha256(data).hexdigest()[:16]

    def setup(self, worker) -> None:
        folder = os.path.join(worker.local_directory, self.name)
        if not os.path.isdir(folder):
            partial = f"{folder}.partial-{os.getpid()}"
            with zipfile.ZipFile(io.BytesIO(self.data)) as z:
                z.extractall(partial)  # names made by _zip: relative, no '..'
            os.replace(partial, folder)
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
        for loaded in [m for m in sys.modules if m.split(".")[0] in self.names]:
            del sys.modules[loaded]


def ship_code(client, spec) -> dict:
    """Send the job's local modules and packages to every worker of ``client``
    (and to those that join later); returns ``{"modules": [top-level names]}``,
    with ``"left-out"`` (files not sent, and why) when some were; empty when
    nothing was sent."""
    sources = code_to_ship(spec)
    if not sources:
        return {}
    try:
        _by_value(spec)
        data, left_out = _zip(sources)
        plugin = ShippedCode(sorted(sources), data)
        client.register_plugin(plugin, name=plugin.name)
    except Exception as exc:
        raise CodeNotShipped(f"could not send {', '.join(f'{n} ({p})' for n, p in sorted(sources.items()))} "
                             f"to the workers: {type(exc).__name__}: {exc}") from exc
    return {"modules": sorted(sources), **({"left-out": left_out} if left_out else {})}


def _by_value(spec) -> None:
    """Let the local modules a notebook function refers to travel inside it: the
    scheduler unpickles the task graph too, and it gets no shipped code."""
    import cloudpickle

    from ..apps.python import PythonApp

    fn = getattr(spec.app, "fn", None) if isinstance(spec.app, PythonApp) else None
    if fn is None or isinstance(fn, str) or getattr(fn, "__module__", None) not in (None, "__main__"):
        return
    for top in local_modules(referenced_modules(fn)):
        cloudpickle.register_pickle_by_value(sys.modules[top])


def prepare_workers(executor, spec, elsewhere: list[str]) -> dict:
    """Before any work (on a Dask cluster): the versions compared, and (for
    workers ``elsewhere``) the job's local code sent. Returns what was shipped
    (:func:`ship_code`)."""
    client = executor.client
    check_versions(client)
    return ship_code(client, spec) if elsewhere else {}
