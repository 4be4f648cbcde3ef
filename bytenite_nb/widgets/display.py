"""How job handles and results show themselves in a notebook.

Outside an interactive kernel (papermill, plain Python) progress is printed as
plain lines instead, so nothing is lost in an executed notebook.
"""

from __future__ import annotations


def display_handle(handle) -> None:
    """Show a running job: plain progress lines until it ends."""
    import sys

    from ..progress import show_progress

    show_progress(handle, stream=sys.stdout)


def display_result(result) -> None:
    print(repr(result))
