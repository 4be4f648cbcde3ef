"""The Jupyter server extension of bytenite-nb: REST handlers under ``/bytenite-nb/``.

Enabled by the ``jupyter-config`` file the package installs
(``etc/jupyter/jupyter_server_config.d/bytenite_nb.json``); the JupyterLab
extension (built into ``bytenite_nb/labextension``) talks to it.
"""

from __future__ import annotations


def _jupyter_server_extension_points() -> list[dict]:
    """Where Jupyter finds the server extension (this module)."""
    return [{"module": "bytenite_nb.server"}]


def _jupyter_labextension_paths() -> list[dict]:
    """Where ``jupyter labextension develop`` finds the built JupyterLab extension."""
    # For `jupyter labextension develop`: the built extension sits beside this package.
    return [{"src": "../labextension", "dest": "bytenite-nb"}]


def _load_jupyter_server_extension(server_app) -> None:
    """Register the handlers over a :class:`~.manager.JobManager` for the server's
    root dir, and run its reaper of job processes in the background."""
    from .handlers import setup_handlers, supervise_in_background
    from .manager import JobManager

    manager = JobManager(server_app.root_dir, log=server_app.log)
    setup_handlers(server_app.web_app, manager)
    supervise_in_background(server_app.io_loop, manager)
    server_app.log.info("bytenite-nb: REST handlers registered under /bytenite-nb/")
