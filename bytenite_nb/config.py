"""bytenite-nb's settings, in one place: the ``bytenite-nb`` section of Dask's config.

The defaults ship in ``bytenite_nb/bytenite-nb.yaml`` and are loaded the way
Dask's own extensions load theirs (``dask.config.update_defaults``), so
everything Dask reads overrides them: a YAML file in ``~/.config/dask/`` or
``$DASK_CONFIG``, ``DASK_BYTENITE_NB__...`` environment variables, and
``dask.config.set()`` in code. The ``BYTENITE_NB_*`` variables of earlier
versions remain aliases, and win over Dask config when set (and not empty):

==========================  ===============================  ==========================================
setting (``bytenite-nb.``)  alias                            default
==========================  ===============================  ==========================================
``home``                    ``BYTENITE_NB_HOME``             the user's data folder: job store, staging,
                                                             caches, records
``staging``                 ``BYTENITE_NB_STAGING``          ``<home>/staging``; a URL every worker
                                                             reaches for workers on several hosts
``records``                 ``BYTENITE_NB_RECORDS``          ``<home>/records`` (executed notebooks)
``templates``               ``BYTENITE_NB_TEMPLATES``        none; folders searched for ``templateId``
``apps``                    ``BYTENITE_NB_APPS``             none; folders searched for app tags
``task-dir``                ``BYTENITE_NB_TASK_DIR``         ``/dev/shm`` or beside staging
``container.engine``        ``BYTENITE_NB_CONTAINER_ENGINE`` podman, else docker
``container.pull``          ``BYTENITE_NB_CONTAINER_PULL``   ``missing``
``container.options``       ``BYTENITE_NB_CONTAINER_OPTIONS`` none
``display``                 ``BYTENITE_NB_DISPLAY``          ``auto``
``cluster``                                                  none: the resolution order of
                                                             :mod:`bytenite_nb.cluster`
``gateway.cluster-options``                                  none: options of a Gateway cluster
``gateway.minimum-workers``                                  1 (a Gateway cluster made for a job)
``gateway.idle-timeout``                                     ``30 minutes`` (a backstop for it)
``kubernetes.image``                                         ``ghcr.io/dask/dask:latest`` (:mod:`bytenite_nb.kube`)
``kubernetes.pip-packages``                                  ``bytenite-nb`` (installed by that image)
``kubernetes.namespace``                                     none: the kubeconfig's current one
``kubernetes.workers``                                       1 (the default worker group)
``kubernetes.app-workers``                                   2 (an app's own worker group, at most)
``kubernetes.idle-timeout``                                  1800 (seconds; 0: never)
``kubernetes.user``                                          none: ``JUPYTERHUB_USER`` (who owns a cluster)
``shared-disk``                                              none: judged by the workers' hosts; true,
                                                             false (:mod:`bytenite_nb.engine.travel`)
``local-cluster.workers``                                    one per core, at most 8
``local-cluster.idle-timeout``                               ``1h`` (a background cluster)
==========================  ===============================  ==========================================

List settings take a YAML list, or one string: ``os.pathsep``-separated
folders, shell-split container options. Dask is imported the first time a
setting is read, never by ``import bytenite_nb``.

>>> get("container.pull")
'missing'
>>> _home("/data/bytenite-nb")      # what home() answers for BYTENITE_NB_HOME=/data/bytenite-nb
'/data/bytenite-nb'
"""

from __future__ import annotations

import functools
import os
import shlex
import threading
from typing import Any

SECTION = "bytenite-nb"
DEFAULTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bytenite-nb.yaml")

#: setting -> the environment variable of earlier versions that still sets it
ALIASES = {
    "home": "BYTENITE_NB_HOME",
    "staging": "BYTENITE_NB_STAGING",
    "records": "BYTENITE_NB_RECORDS",
    "templates": "BYTENITE_NB_TEMPLATES",
    "apps": "BYTENITE_NB_APPS",
    "task-dir": "BYTENITE_NB_TASK_DIR",
    "container.engine": "BYTENITE_NB_CONTAINER_ENGINE",
    "container.pull": "BYTENITE_NB_CONTAINER_PULL",
    "container.options": "BYTENITE_NB_CONTAINER_OPTIONS",
    "display": "BYTENITE_NB_DISPLAY",
}

_load_lock = threading.Lock()
_loaded = False


def _dask_config():
    """``dask.config`` with bytenite-nb's defaults in it (loaded once per process)."""
    global _loaded
    import dask.config

    if not _loaded:
        with _load_lock:
            if not _loaded:
                dask.config.update_defaults(defaults())
                _loaded = True
    elif SECTION not in dask.config.config:
        # A dask.config.set block entered before the defaults were loaded removes
        # the whole section when it exits: put the defaults back.
        dask.config.update(dask.config.config, defaults(), priority="old")
    return dask.config


@functools.lru_cache(maxsize=1)
def defaults() -> dict:
    """The shipped defaults, ``{"bytenite-nb": {...}}``, as read from ``bytenite-nb.yaml``."""
    import yaml

    with open(DEFAULTS_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def get(key: str, default: Any = None) -> Any:
    """The setting ``bytenite-nb.<key>``: its ``BYTENITE_NB_*`` alias when that is
    set and not empty, else Dask config (which holds the shipped defaults).

    >>> get("local-cluster.workers") is None
    True
    """
    variable = ALIASES.get(key)
    if variable:
        value = os.environ.get(variable)
        if value:
            return value
    return _dask_config().get(f"{SECTION}.{key}", default)


def source(key: str) -> str:
    """Where the value of ``bytenite-nb.<key>`` comes from, in words (for error messages).

    >>> source("container.pull") in ("BYTENITE_NB_CONTAINER_PULL", "Dask config bytenite-nb.container.pull")
    True
    """
    variable = ALIASES.get(key)
    if variable and os.environ.get(variable):
        return variable
    return f"Dask config {SECTION}.{key}"


def _paths(value: Any) -> list[str]:
    """A folder list setting as a list: a YAML list, or one ``os.pathsep``-separated string."""
    if not value:
        return []
    if isinstance(value, str):
        return [d for d in value.split(os.pathsep) if d]
    return [os.path.expanduser(str(d)) for d in value if d]


def _words(value: Any) -> list[str]:
    """An options setting as a list: a YAML list, or one string split like a shell would."""
    if not value:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def home() -> str:
    """The folder of the job store, staging, caches and records (``bytenite-nb.home``)."""
    return _home(get("home"))


@functools.lru_cache(maxsize=16)
def _home(configured: str | None) -> str:
    # Cached per value: every chunk asks, and the answer only changes with the setting.
    if not configured:
        import platformdirs

        configured = platformdirs.user_data_dir("bytenite-nb")
    return os.path.abspath(os.path.expanduser(configured))


def staging_url() -> str:
    """Where chunk results are staged until assembly (``bytenite-nb.staging``)."""
    return get("staging") or "file://" + os.path.join(home(), "staging")


def records_url() -> str:
    """Where notebook apps keep executed notebooks (``bytenite-nb.records``), without a trailing slash."""
    configured = get("records")
    return configured.rstrip("/") if configured else "file://" + os.path.join(home(), "records")


def store_path() -> str:
    return os.path.join(home(), "jobs.sqlite")


def shared_cache_dir() -> str:
    return os.path.join(home(), "cache", "shared")


def user_cache_dir() -> str:
    return os.path.join(home(), "cache", "user")


def task_dir() -> str | None:
    """Where task folders are made, when set (``bytenite-nb.task-dir``); None: chosen per chunk."""
    return get("task-dir") or None


def template_dirs(base_dir: str | None = None) -> list[str]:
    """Folders searched for ``template.json`` files, nearest first."""
    dirs = []
    if base_dir:
        dirs += [os.path.join(base_dir, "templates"), base_dir]
    dirs += _paths(get("templates"))
    dirs.append(os.path.join(home(), "templates"))
    return dirs


def app_dirs() -> list[str]:
    """The configured folders searched for app and engine folders by tag (``bytenite-nb.apps``)."""
    return _paths(get("apps"))


def container_engine() -> str | None:
    """The container engine asked for (``bytenite-nb.container.engine``), or None to find one."""
    return get("container.engine") or None


def container_pull() -> str:
    """When a container image is pulled: ``missing``, ``never`` or ``always`` (``bytenite-nb.container.pull``)."""
    return str(get("container.pull") or "missing")


def container_options() -> list[str]:
    """Options added to every container run (``bytenite-nb.container.options``)."""
    return _words(get("container.options"))


def display() -> str:
    """How notebooks show progress and results: ``auto``, ``widget`` or ``text`` (``bytenite-nb.display``)."""
    return str(get("display") or "auto").strip().lower()


def cluster() -> str | None:
    """Where jobs run when the caller names nothing (``bytenite-nb.cluster``): None, ``local``,
    ``sync``, a scheduler address, ``gateway``, ``gateway:NAME``, ``kubernetes`` or ``kubernetes:NAME``."""
    value = get("cluster")
    return str(value) if value else None


def local_workers() -> int | None:
    """Worker processes of a local cluster (``bytenite-nb.local-cluster.workers``); None: by cores."""
    value = get("local-cluster.workers")
    return int(value) if value else None


def idle_timeout() -> str | None:
    """How long a background cluster waits without work before it stops; None: until stopped."""
    value = get("local-cluster.idle-timeout")
    return str(value) if value else None


def gateway_cluster_options() -> dict:
    """Options of every Gateway cluster made for a job (``bytenite-nb.gateway.cluster-options``);
    a job's ``config.clusterOptions`` win over them."""
    return dict(get("gateway.cluster-options") or {})


def gateway_minimum_workers() -> int:
    """The fewest workers a Gateway cluster made for a job keeps (``bytenite-nb.gateway.minimum-workers``).

    >>> gateway_minimum_workers()
    1
    """
    value = get("gateway.minimum-workers")
    return max(0, int(value)) if value is not None else 1


def gateway_idle_timeout() -> float | None:
    """Seconds a Gateway cluster made for a job may sit idle before the Gateway
    stops it (``bytenite-nb.gateway.idle-timeout``); None: not set.

    >>> gateway_idle_timeout()
    1800.0
    """
    from dask.utils import parse_timedelta

    value = get("gateway.idle-timeout")
    return float(parse_timedelta(value)) if value else None
