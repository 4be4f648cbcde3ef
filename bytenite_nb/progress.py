"""Progress of a running job in a terminal: a bar on a TTY, plain lines otherwise.

The same handle also drives the notebook widgets; this module is for the CLI
and for plain Python (e.g. an executed notebook, where a bar would be lost).
The counts are the handle's :class:`~bytenite_nb.states.Progress`, said the
way every display says them (:meth:`~bytenite_nb.states.Progress.summary`).
"""

from __future__ import annotations

import sys
import time


def _line(handle) -> str:
    return f"{handle.status:<12} {handle.progress.summary()}, {handle.elapsed:.1f}s"


def show_progress(handle, stream=None, interval: float = 0.2, line_every: float = 5.0) -> None:
    """Follow ``handle`` until the job ends."""
    stream = stream or sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        _bar(handle, stream, interval)
    else:
        _lines(handle, stream, line_every)


def _bar(handle, stream, interval: float) -> None:
    import shutil

    from tqdm import tqdm

    # A terminal that reports no size (some ptys, CI runners) still gets a bar:
    # tqdm hides bars below a height of 0.
    size = shutil.get_terminal_size((100, 20))
    with tqdm(total=0, unit="chunk", file=stream, ncols=size.columns or 100, nrows=size.lines or 20,
              desc=handle.job_id) as bar:
        while True:
            finished = handle.wait(interval)
            p = handle.progress
            if bar.total != p.total:
                bar.total = p.total
            bar.n = p.finished
            post = {"state": handle.status}
            for category in ("failed", "cancelled", "retrying", "running"):  # done and pending: the bar itself
                if getattr(p, category):
                    post[category] = getattr(p, category)
            bar.set_postfix(post, refresh=False)
            bar.refresh()
            if finished:
                break


def _lines(handle, stream, every: float) -> None:
    last_state, last_time, last_done = None, 0.0, -1
    while True:
        finished = handle.wait(0.5)
        now = time.time()
        p = handle.progress
        if handle.status != last_state or (now - last_time >= every and p.finished != last_done) or finished:
            print(f"[{handle.job_id}] {_line(handle)}", file=stream, flush=True)
            last_state, last_time, last_done = handle.status, now, p.finished
        if finished:
            break
