"""How job handles and results show themselves in a notebook: hooks, by kind.

The engine knows nothing of widgets. A :class:`~bytenite_nb.engine.JobHandle`
or :class:`~bytenite_nb.engine.JobResult` shown in a notebook asks this
module, which calls the hook registered for its kind (``"handle"`` or
``"result"``). Hooks come from the entry point group ``bytenite_nb.display``
(bytenite-nb's own point at :mod:`bytenite_nb.widgets.display`, so another
package can replace them) and from :func:`register`, which wins over them
until :func:`unregister`. Without a hook an object shows as its ``repr``.

>>> seen = []
>>> register("result", seen.append)
>>> show("result", "a result")
>>> seen
['a result']
>>> unregister("result")
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import entry_points
from typing import Any, Callable

log = logging.getLogger(__name__)

GROUP = "bytenite_nb.display"

_hooks: dict[str, Callable[[Any], None]] = {}  # registered in code
_entry_hooks: dict[str, Callable[[Any], None]] = {}  # from the entry points
_loaded = False
_lock = threading.Lock()


def register(kind: str, hook: Callable[[Any], None]) -> None:
    """Show objects of ``kind`` with ``hook(obj)`` from now on."""
    with _lock:
        _hooks[kind] = hook


def unregister(kind: str) -> None:
    """Forget the hook :func:`register` gave ``kind`` (its entry point's, if any, serves again)."""
    with _lock:
        _hooks.pop(kind, None)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for ep in entry_points(group=GROUP):
            try:
                _entry_hooks[ep.name] = ep.load()
            except Exception as exc:  # a broken plugin must not hide the object
                log.warning("cannot load display hook %r from %s: %s", ep.name, ep.value, exc)
        _loaded = True


def show(kind: str, obj: Any) -> None:
    """Show ``obj`` with the hook for ``kind``, or print its ``repr``."""
    _load()
    hook = _hooks.get(kind) or _entry_hooks.get(kind)
    if hook is None:
        print(repr(obj))
        return
    hook(obj)
