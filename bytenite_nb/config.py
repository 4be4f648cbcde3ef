"""Where bytenite-nb keeps things, from the environment.

- ``BYTENITE_NB_HOME``: job store, staging, caches (default: the user data dir);
- ``BYTENITE_NB_STAGING``: where chunk results are staged until assembly; must
  be reachable from every worker (default: ``$BYTENITE_NB_HOME/staging``,
  right for a local cluster; use a bucket URL for a cluster spread over hosts);
- ``BYTENITE_NB_TEMPLATES``: extra folders searched for ``templateId``
  (``os.pathsep``-separated).

>>> _home("/data/bytenite-nb")      # what home() answers for BYTENITE_NB_HOME=/data/bytenite-nb
'/data/bytenite-nb'
"""

from __future__ import annotations

import functools
import os

import platformdirs


def home() -> str:
    return _home(os.environ.get("BYTENITE_NB_HOME"))


@functools.lru_cache(maxsize=16)
def _home(configured: str | None) -> str:
    # Cached per value: every chunk asks, and the answer only changes with the variable.
    path = configured or platformdirs.user_data_dir("bytenite-nb")
    return os.path.abspath(os.path.expanduser(path))


def staging_url() -> str:
    url = os.environ.get("BYTENITE_NB_STAGING")
    return url or "file://" + os.path.join(home(), "staging")


def store_path() -> str:
    return os.path.join(home(), "jobs.sqlite")


def shared_cache_dir() -> str:
    return os.path.join(home(), "cache", "shared")


def user_cache_dir() -> str:
    return os.path.join(home(), "cache", "user")


def app_dirs() -> list[str]:
    """Configured folders of ByteNite app and engine folders (``BYTENITE_NB_APPS``)."""
    return [d for d in os.environ.get("BYTENITE_NB_APPS", "").split(os.pathsep) if d]


def template_dirs(base_dir: str | None = None) -> list[str]:
    """Folders searched for ``template.json`` files, nearest first."""
    dirs = []
    if base_dir:
        dirs += [os.path.join(base_dir, "templates"), base_dir]
    extra = os.environ.get("BYTENITE_NB_TEMPLATES", "")
    dirs += [d for d in extra.split(os.pathsep) if d]
    dirs.append(os.path.join(home(), "templates"))
    return dirs
