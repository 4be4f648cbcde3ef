"""Papermill reads and writes notebooks on any fsspec URL.

Installed with bytenite-nb, :data:`handler` is registered through papermill's
``papermill.io`` entry point group for ``s3://``, ``gs://``, ``gcs://``,
``az://``, ``abfs://``, ``abfss://``, ``memory://``, ``file://`` and the
other fsspec schemes listed in ``pyproject.toml``, so that
``papermill s3://bucket/in.ipynb az://container/out.ipynb`` and
``bytenite-nb notebook run`` work on every store fsspec reaches.
Credentials come from each backend's standard environment (``AWS_*``,
``AZURE_STORAGE_*``, ``GOOGLE_APPLICATION_CREDENTIALS``...); paths shown in
logs have any embedded credentials masked.

:func:`register` adds the handler for every scheme fsspec knows at run time
(for a scheme the entry points do not list).

>>> import fsspec, nbformat
>>> fsspec.filesystem("memory").pipe("/nb.ipynb", nbformat.writes(nbformat.v4.new_notebook()).encode())
>>> handler.read("memory://nb.ipynb").startswith("{")
True
"""

from __future__ import annotations

import fsspec
from fsspec.core import url_to_fs

from .redact import redact_text

#: schemes papermill handles itself and better (http downloads, GitHub links, stdin/stdout)
PAPERMILL_OWN = ("http", "https", "github", "local", "-")


class FsspecHandler:
    """A papermill I/O handler over fsspec: ``read``, ``write``, ``listdir``, ``pretty_path``."""

    def read(self, path: str) -> str:
        """The notebook at ``path`` as text."""
        with fsspec.open(path, "rb") as f:
            return f.read().decode("utf-8")

    def write(self, buf: str, path: str) -> None:
        """Write the notebook text ``buf`` to ``path`` (folders are made on a local disk)."""
        fs, target = url_to_fs(path)
        if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
            fs.makedirs(fs._parent(target), exist_ok=True)
        # One PUT on object stores: readers never see half a notebook there.
        fs.pipe_file(target, buf.encode("utf-8"))

    def listdir(self, path: str) -> list[str]:
        """Full URLs of the entries of the folder ``path``, in the scheme ``path`` has."""
        from .storage import Location

        fs, target = url_to_fs(path)
        return [Location(path).url_of(fs, p) for p in fs.ls(target, detail=False)]

    def pretty_path(self, path: str) -> str:
        return redact_text(path)


handler = FsspecHandler()


def register(protocols: list[str] | None = None) -> list[str]:
    """Make papermill use :data:`handler` for ``protocols`` (default: every fsspec scheme
    not handled by papermill itself). Returns the schemes registered.

    >>> "memory://" in register(["memory"])
    True
    """
    from papermill.iorw import papermill_io

    if protocols is None:
        from fsspec.registry import known_implementations

        protocols = sorted(known_implementations)
    schemes = []
    registered = {scheme for scheme, h in papermill_io._handlers if h is handler}
    for protocol in protocols:
        if protocol in PAPERMILL_OWN:
            continue
        scheme = f"{protocol}://"
        if scheme not in registered:
            papermill_io.register(scheme, handler)
        schemes.append(scheme)
    return schemes
