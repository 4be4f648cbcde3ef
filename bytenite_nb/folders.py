"""ByteNite app and engine folders, found by path or by tag.

A job or a ``template.json`` may name a folder by its manifest's name and
version instead of its path:

- ``name``: the highest version of it;
- ``name@1``: the highest ``1.x``;
- ``name@1.2``: exactly version ``1.2``.

Folders are searched nearest first, in:

1. the folders the component is named near: the job's folder, or, for a
   component a template names, the template's folder, its parent, then the
   job's folder (ByteNite's repositories keep app and engine folders at the
   top and templates in ``templates/``);
2. the ``apps/`` and ``engines/`` subfolders of each of those;
3. the configured app folders (``BYTENITE_NB_APPS``), the template folders
   (:func:`bytenite_nb.config.template_dirs`) and ``$BYTENITE_NB_HOME/apps``.

In each, the folder itself and its immediate subfolders count when they hold
a ``manifest.json``. The highest matching version wins; between folders with
the same name and version, the nearer one.

>>> parse_tag("resize@1.2")
('resize', 1, 2)
>>> parse_tag("resize")
('resize', None, None)
"""

from __future__ import annotations

import os
import re

from . import config as _config
from .apps.manifest import Manifest
from .exceptions import FieldError, ManifestError

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


def search_dirs(near: str | list[str] | None = None) -> list[str]:
    """The folders searched for app and engine folders, nearest first.

    ``near``: the folder (or folders, nearest first) a component is named in.

    >>> search_dirs(["/repo/templates", "/repo"])[:4]
    ['/repo/templates', '/repo', '/repo/templates/apps', '/repo/templates/engines']
    """
    if isinstance(near, str):
        near = [near]
    near = [d for d in (near or []) if d]
    dirs: list[str] = list(near)
    for d in near:
        dirs += [os.path.join(d, "apps"), os.path.join(d, "engines")]
    dirs += _config.app_dirs()
    dirs += _config.template_dirs(near[-1] if near else None)
    dirs.append(os.path.join(_config.home(), "apps"))
    seen: set[str] = set()
    out = []
    for d in dirs:
        d = os.path.abspath(d)
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def folders(near: str | list[str] | None = None, broken: list[tuple[str, ManifestError]] | None = None
            ) -> list[Manifest]:
    """Every readable app or engine folder in the search folders, nearest first.

    A folder whose manifest is broken is left out; ``broken``, when given,
    receives ``(folder, error)`` for each.
    """
    found: list[Manifest] = []
    seen: set[str] = set()
    for root in search_dirs(near):
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
            except ManifestError as exc:
                if broken is not None:
                    broken.append((folder, exc))
    return found


def find_folder(tag: str, kind: str, near: str | list[str] | None = None, *, field: str = "app") -> Manifest | None:
    """The folder of type ``kind`` that ``tag`` names, highest version first;
    None when no folder has that name. A name whose versions do not match
    raises :class:`FieldError` listing the versions there are.

    >>> find_folder("no-such-app@1", "app", []) is None
    True
    """
    name, major, minor = parse_tag(tag)
    broken: list[tuple[str, ManifestError]] = []
    same_name = [m for m in folders(near, broken) if m.name == name and m.type == kind]
    if not same_name:
        # A folder of that name whose manifest does not load: say why, not "unknown".
        for folder, exc in broken:
            if os.path.basename(os.path.normpath(folder)) == name:
                raise FieldError(field, str(exc))
        return None
    matching = [m for m in same_name
                if (major is None or m.version_key[0] == major) and (minor is None or m.version_key[1] == minor)]
    if not matching:
        versions = ", ".join(sorted({m.version for m in same_name}, key=lambda v: tuple(map(int, v.split(".")))))
        raise FieldError(field, f"no version of {kind} {name!r} matches {tag!r}; found {versions}")
    best = max(m.version_key for m in matching)
    return next(m for m in matching if m.version_key == best)  # nearest of the highest
