"""ByteNite app and engine folders found by tag in local folders.

A job or a ``template.json`` may name a folder by its manifest's name and
version instead of its path:

- ``name``: the highest version of it;
- ``name@1``: the highest ``1.x``;
- ``name@1.2``: exactly version ``1.2``.

Folders are looked for, nearest first, in: the job's (or template's) folder
and its ``apps/`` and ``engines/`` subfolders, the folders of
``BYTENITE_NB_APPS`` (``os.pathsep``-separated), the template folders
(:func:`bytenite_nb.config.template_dirs`) and ``$BYTENITE_NB_HOME/apps``.
In each, the folder itself and its immediate subfolders count when they hold
a ``manifest.json``. When two folders have the same name and version, the
nearer one wins.

>>> parse_tag("resize@1.2")
('resize', 1, 2)
>>> parse_tag("resize")
('resize', None, None)
"""

from __future__ import annotations

import os
import re

from .. import config as _config
from ..exceptions import FieldError, ManifestError
from .manifest import Manifest

TAG = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:@(?P<major>\d+)(?:\.(?P<minor>\d+))?)?$")


def is_tag(text: str) -> bool:
    """Whether ``text`` reads as ``name``, ``name@1`` or ``name@1.2``."""
    return bool(TAG.match(text))


def parse_tag(tag: str) -> tuple[str, int | None, int | None]:
    """``(name, major, minor)``; the version parts are None when not given."""
    m = TAG.match(tag)
    if not m:
        raise ValueError(f"not a tag: {tag!r} (expected name, name@1 or name@1.2)")
    major = None if m["major"] is None else int(m["major"])
    minor = None if m["minor"] is None else int(m["minor"])
    return m["name"], major, minor


def search_dirs(base_dir: str | None = None) -> list[str]:
    """The folders searched for app and engine folders, nearest first."""
    dirs: list[str] = []
    if base_dir:
        dirs += [base_dir, os.path.join(base_dir, "apps"), os.path.join(base_dir, "engines")]
    dirs += _config.app_dirs()
    dirs += _config.template_dirs(base_dir)
    dirs.append(os.path.join(_config.home(), "apps"))
    seen: set[str] = set()
    out = []
    for d in dirs:
        d = os.path.abspath(d)
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def folders(base_dir: str | None = None) -> list[Manifest]:
    """Every readable app or engine folder in the search folders, nearest first.

    A folder whose manifest is broken is left out here; naming it by path
    reports what is wrong with it.
    """
    found: list[Manifest] = []
    seen: set[str] = set()
    for root in search_dirs(base_dir):
        if not os.path.isdir(root):
            continue
        try:
            children = sorted(e.path for e in os.scandir(root) if e.is_dir())
        except OSError:
            continue
        for folder in [root, *children]:
            real = os.path.realpath(folder)
            if real in seen or not os.path.isfile(os.path.join(folder, "manifest.json")):
                continue
            seen.add(real)
            try:
                found.append(Manifest.load(folder))
            except ManifestError:
                continue
    return found


def find_folder(tag: str, kind: str, base_dir: str | None = None, *, field: str = "app") -> Manifest | None:
    """The folder of type ``kind`` that ``tag`` names, highest version first;
    None when no folder has that name. A name whose versions do not match
    raises :class:`FieldError` listing the versions there are.

    >>> # find_folder("resize@1", "app", "/path/to/job").version
    >>> # '1.3'
    """
    name, major, minor = parse_tag(tag)
    same_name = [m for m in folders(base_dir) if m.name == name and m.type == kind]
    if not same_name:
        return None
    matching = [m for m in same_name
                if (major is None or m.version_key[0] == major) and (minor is None or m.version_key[1] == minor)]
    if not matching:
        versions = ", ".join(sorted({m.version for m in same_name}, key=lambda v: tuple(map(int, v.split(".")))))
        raise FieldError(field, f"no version of {kind} {name!r} matches {tag!r}; found {versions}")
    best = max(m.version_key for m in matching)
    return next(m for m in matching if m.version_key == best)  # nearest of the highest
