"""How job handles and results show themselves in a notebook.

In an interactive kernel (JupyterLab, Notebook, VS Code) a handle shows as a
live :class:`~bytenite_nb.widgets.progress.JobProgress` widget and a result as
its summary with output previews. Outside one - papermill, ``jupyter
nbconvert --execute``, plain Python, a terminal IPython - the same calls
print plain progress lines and a text preview instead, so nothing is lost in
an executed notebook. ``BYTENITE_NB_DISPLAY=widget`` or ``=text`` overrides the
choice.
"""

from __future__ import annotations

import sys


def interactive_kernel() -> bool:
    """Does a person watch this kernel through a frontend that draws widgets?

    True in a Jupyter kernel whose current request came from a frontend that
    takes input: batch runners (papermill, nbclient, nbconvert) tell the
    kernel they cannot (``allow_stdin`` false), which is how they are told apart.

    >>> interactive_kernel()   # plain Python
    False
    """
    from .. import config

    forced = config.display()
    if forced in ("widget", "widgets"):
        return True
    if forced in ("text", "plain"):
        return False
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return False
    shell = ipython_module.get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:  # terminal IPython: no widgets there
        return False
    try:
        parent = kernel.get_parent("shell")
    except Exception:
        parent = getattr(kernel, "_parent_header", None) or {}
    content = (parent or {}).get("content") or {}
    return bool(content.get("allow_stdin", False))


def display_handle(handle) -> None:
    """Show a running job: a live widget, or plain progress lines until it ends."""
    if interactive_kernel():
        from IPython.display import display

        from .progress import JobProgress

        display(JobProgress(handle))
        return
    from .progress import follow_text

    follow_text(handle, sys.stdout)


def display_result(result) -> None:
    """Show a finished job: its summary with output previews (text outside a kernel)."""
    if interactive_kernel():
        from IPython.display import display

        from .preview import result_widget

        display(result_widget(result))
        return
    from .preview import result_text

    print(result_text(result))
