"""Watching a running job: the progress widget and the state it shows.

:class:`ProgressState` is the plain model: it follows a job's events
(``state``, ``planned``, ``chunk``, ``progress``) and works out the stage,
the chunk counts (a :class:`~bytenite_nb.states.Progress`, as everywhere),
elapsed time, throughput, ETA and the details of failed and retrying chunks. :class:`JobProgress` is the widget drawing that state
for a :class:`~bytenite_nb.engine.JobHandle`, with a Cancel button, a link
to the Dask dashboard and, once the job completes, previews of its outputs.
:func:`follow_text` prints the same state as plain lines.

>>> state = ProgressState()
>>> for event in ({"type": "state", "state": "PARTITIONING"}, {"type": "planned", "chunks": 4},
...               {"type": "state", "state": "RUNNING"}, {"type": "chunk", "index": 0, "state": "DONE"}):
...     state.apply(event, now=10.0)
>>> state.stage, state.done, state.total
('running', 1, 4)
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any, Callable, TextIO

import ipywidgets as widgets

from .. import store as st
from ..chunk_grid import chunk_detail
from ..exceptions import ChunkNotFound, ProgressError
from ..states import CATEGORIES, Progress
from .chunk_grid import ChunkGridWidget

STAGES = ("planning", "running", "assembling", "done")
STDERR_MARK = "\n--- stderr (tail) ---\n"
TAIL_CHARS = 4000
MAX_FAILURES_SHOWN = 20
MIN_RATE_SECONDS = 1.0
#: the chunk states a display details, the only ones it asks the handle for
SHOWN_STATES = (st.CHUNK_RUNNING, st.RETRYING, st.CHUNK_FAILED)
#: chunks that end so are counted, and forgotten but for their state
QUIET_END_STATES = (st.DONE, st.CHUNK_CANCELLED)


def split_error(error: str | None) -> tuple[str, str]:
    """``(message, stderr tail)`` of a chunk error.

    >>> split_error("chunk 1 failed: exited with status 2\\n--- stderr (tail) ---\\nboom")
    ('chunk 1 failed: exited with status 2', 'boom')
    """
    if not error:
        return "", ""
    message, _, tail = error.partition(STDERR_MARK)
    return message.strip(), tail[-TAIL_CHARS:]


def duration_text(seconds: float | None) -> str:
    """``"1h02m"``, ``"3m05s"``, ``"12.5s"``; ``"-"`` when unknown.

    >>> duration_text(3725), duration_text(65), duration_text(2.5)
    ('1h02m', '1m05s', '2.5s')
    """
    if seconds is None:
        return "-"
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.1f}s"


class ProgressState:
    """What is known about a running job, from its events (and handle snapshots).

    ``progress`` follows the events through the same :class:`Progress` the
    runner counts with; :meth:`sync` replaces it with a handle's own (for a
    display attached after the job started). ``total``, ``done``, ``pending``...
    read it. Times are seconds since the epoch; every method that needs "now"
    takes it as an argument so that the maths can be checked.
    """

    def __init__(self, job_id: str = "", name: str = "", started: float | None = None):
        self.job_id = job_id
        self.name = name
        self.state = st.NEW
        self.progress = Progress()
        self.started = time.time() if started is None else started
        self.running_since: float | None = None
        self._finished_before = 0
        self.finished_at: float | None = None
        self.error: str | None = None
        self.reused = False
        self.result_bytes = 0
        # The chunks with something to show (running, retrying, failed); a chunk
        # that ends DONE or CANCELLED keeps only its state and worker, in ``_ended``
        # (for the chunk grid): a job of 100,000 chunks must not cost the notebook a
        # record of each.
        self.chunks: dict[int, dict] = {}
        self._ended: dict[int, tuple[str, str | None]] = {}
        self._worker_names: dict[str, str] = {}  # one string per worker, however many chunks it ran
        self._lock = threading.RLock()

    # -- following --------------------------------------------------------------------

    def apply(self, event: dict, now: float | None = None) -> None:
        """Take one job event into account."""
        now = time.time() if now is None else now
        kind = event.get("type")
        with self._lock:
            if kind == "state":
                self._set_state(event.get("state") or self.state, now)
                if event.get("error"):
                    self.error = event["error"]
                if event.get("reused"):
                    self.reused = True
            elif kind == "planned":
                self.progress = Progress(total=int(event.get("chunks") or 0))
            elif kind == "progress":
                self.progress = Progress.from_dict(event)
            elif kind == "chunk":
                self._chunk(event)

    def _set_state(self, state: str, now: float) -> None:
        self.state = state
        if state == st.RUNNING and self.running_since is None:
            self.running_since = now
            # Chunks finished before (reused from an earlier run, or missed by a late
            # display) say nothing about how fast chunks run now.
            self._finished_before = self.finished
        if state in st.FINAL_STATES and self.finished_at is None:
            self.finished_at = now
            self.progress.set_running_tasks(0)

    def _chunk(self, event: dict) -> None:
        index = event.get("index")
        if index is None:
            return
        previous = self.chunks.get(index) or self.ended_chunk(index) or {}
        new = event.get("state")
        if new is None:
            return
        try:
            if not self.progress.apply(previous.get("state"), event):
                return  # a late worker event about a chunk already finished
        except ProgressError:
            return  # an event these counts cannot take (before the plan): the next sync puts them right
        if new == st.DONE:
            self.result_bytes += int(event.get("bytes") or 0)
        merged = {**previous, **{k: v for k, v in event.items() if k != "type" and v is not None}}
        if event.get("attempt") is not None:
            merged["attempts"] = event["attempt"]
        self._keep(index, merged)

    def _keep(self, index: int, chunk: dict) -> None:
        if chunk.get("state") in QUIET_END_STATES:
            self.chunks.pop(index, None)
            worker = chunk.get("worker")
            if worker is not None:
                worker = self._worker_names.setdefault(worker, worker)
            self._ended[index] = (chunk["state"], worker)
        else:
            self.chunks[index] = chunk

    def ended_chunk(self, index: int) -> dict | None:
        """What is kept of a chunk that ended DONE or CANCELLED: its state and worker."""
        if index not in self._ended:
            return None
        state, worker = self._ended[index]
        return {"state": state, "worker": worker} if worker is not None else {"state": state}

    def grid_chunks(self) -> dict[int, dict]:
        """Every chunk known by index, for the chunk grid: the ended ones (state and
        worker) and those with something to show."""
        known = {index: {"state": state, "worker": worker} for index, (state, worker) in self._ended.items()}
        known.update(self.chunks)
        return known

    def sync(self, handle) -> None:
        """Take a handle's own counts, state and the details of its chunks with
        something to show (the authoritative ones)."""
        progress = handle.progress
        status = handle.status
        chunks = handle.chunks_in(*SHOWN_STATES)
        now = time.time()
        with self._lock:
            self.job_id = handle.job_id
            self.name = handle.name
            self.progress = progress
            if status != self.state:
                self._set_state(status, now)
            for index, chunk in chunks.items():
                self._keep(index, {**self.chunks.get(index, {}), **chunk})
            self.started = handle.started_at
            if handle.finished_at is not None:
                self.finished_at = handle.finished_at

    # -- what it means -----------------------------------------------------------------

    @property
    def total(self) -> int:
        return self.progress.total

    @property
    def pending(self) -> int:
        return self.progress.pending

    @property
    def running(self) -> int:
        return self.progress.running

    @property
    def retrying(self) -> int:
        return self.progress.retrying

    @property
    def done(self) -> int:
        return self.progress.done

    @property
    def failed(self) -> int:
        return self.progress.failed

    @property
    def cancelled(self) -> int:
        return self.progress.cancelled

    @property
    def resumed(self) -> int:
        return self.progress.resumed

    @property
    def finished(self) -> int:
        return self.progress.finished

    @property
    def final(self) -> bool:
        return self.state in st.FINAL_STATES

    @property
    def stage(self) -> str:
        """``planning``, ``running``, ``assembling`` or ``done`` (``waiting`` before anything)."""
        return {st.NEW: "waiting", st.PARTITIONING: "planning", st.RUNNING: "running",
                st.ASSEMBLING: "assembling"}.get(self.state, "done")

    def elapsed(self, now: float | None = None) -> float:
        end = self.finished_at or (time.time() if now is None else now)
        return max(0.0, end - self.started)

    def throughput(self, now: float | None = None) -> float | None:
        """Chunks finished per second since chunks began running (None until a chunk has
        finished and a second has passed: a rate over less says little)."""
        if self.running_since is None:
            return None
        ran = self.finished - self._finished_before
        end = self.finished_at or (time.time() if now is None else now)
        seconds = end - self.running_since
        if ran <= 0 or seconds < MIN_RATE_SECONDS:
            return None
        return ran / seconds

    def eta(self, now: float | None = None) -> float | None:
        """Seconds until every chunk has run, at the throughput so far (None: not known yet)."""
        if self.final:
            return 0.0
        if self.state != st.RUNNING:
            return None
        rate = self.throughput(now)
        if not rate:
            return None
        return max(0, self.total - self.finished) / rate

    def failures(self) -> list[dict]:
        """Failed chunks: ``index``, ``attempts``, ``message``, ``stderr`` (the tail)."""
        return self._details(st.CHUNK_FAILED)

    def retries(self) -> list[dict]:
        """Chunks waiting for another attempt, with the error of the last one."""
        return self._details(st.RETRYING)

    def _details(self, state: str) -> list[dict]:
        with self._lock:
            chunks = sorted((i, dict(c)) for i, c in self.chunks.items() if c.get("state") == state)
        out = []
        for index, chunk in chunks:
            message, stderr = split_error(chunk.get("error"))
            out.append({"index": index, "attempts": chunk.get("attempts"), "message": message, "stderr": stderr})
        return out

    def line(self, now: float | None = None) -> str:
        """One plain progress line: ``RUNNING 12/40 done, 1 failed, ... elapsed 3.2s, ETA 8.1s``."""
        parts = [self.progress.summary()]
        parts.append(f"elapsed {duration_text(self.elapsed(now))}")
        rate = self.throughput(now)
        if rate and not self.final:
            parts.append(f"{rate:.2f} chunks/s")
            parts.append(f"ETA {duration_text(self.eta(now))}")
        return f"{self.state:<12} " + ", ".join(parts)


# -- the widget ---------------------------------------------------------------------------


class JobProgress(widgets.VBox):
    """A live view of a running job.

    Shows the stage, a bar of finished chunks, counts (done, failed,
    retrying, running), elapsed time, ETA, throughput, a link to the Dask
    dashboard, a Cancel button, each failed chunk with its attempts and
    stderr tail, and, once the job completes, previews of its outputs.
    A background thread keeps it current; the kernel stays free.

    In a notebook, a job's handle shows as this widget by itself.

    >>> import pathlib, tempfile
    >>> import bytenite_nb as bn
    >>> scratch = tempfile.TemporaryDirectory()
    >>> folder = pathlib.Path(scratch.name)
    >>> _ = (folder / "in.txt").write_text("a\\nb\\n")
    >>> job = bn.Job(source=str(folder / "in.txt"), partitioner="split-lines", app="identity",
    ...              destination=str(folder / "out"), params={"partitioner": {"lines_per_chunk": 1}})
    >>> progress = JobProgress(job.submit(scheduler="sync"))
    >>> progress.join(60)
    >>> progress.bar.value, progress.bar.max, progress.bar.bar_style
    (2, 2, 'success')
    >>> scratch.cleanup()
    """

    REFRESH_SECONDS = 0.5

    def __init__(self, handle, *, storage_options: dict | None = None, follow: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.handle = handle
        self.storage_options = storage_options
        self.state = ProgressState(handle.job_id, handle.name)
        self.header = widgets.HTML()
        self.stages = widgets.HTML()
        self.bar = widgets.IntProgress(value=0, min=0, max=1, bar_style="info",
                                       layout=widgets.Layout(width="100%"))
        self.counts = widgets.HTML()
        self.dashboard = widgets.HTML()
        self.grid = ChunkGridWidget(on_select=self._chunk_detail)
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", button_style="warning",
                                            tooltip="Stop the job; nothing is written to the destination")
        self.cancel_button.on_click(self._cancel)
        self.failures = widgets.HTML()
        self.error = widgets.HTML()
        self.result_box = widgets.VBox()
        self.children = [
            self.header, self.stages,
            widgets.HBox([self.bar, self.cancel_button], layout=widgets.Layout(width="100%")),
            self.counts, self.dashboard, self.grid, self.failures, self.error, self.result_box,
        ]
        self.add_class("bytenite-nb-progress")
        self._wake = threading.Event()
        self._render_lock = threading.Lock()
        self._result_shown = False
        self._unsubscribe: Callable[[], None] | None = handle.subscribe(self._on_event)
        self._thread: threading.Thread | None = None
        self.refresh()
        if follow:
            self._thread = threading.Thread(target=self._follow, name=f"bytenite-nb-progress-{handle.job_id}",
                                            daemon=True)
            self._thread.start()

    # -- updates ---------------------------------------------------------------------------

    def _on_event(self, event: dict) -> None:
        self.state.apply(event)
        self._wake.set()

    def _follow(self) -> None:
        try:
            while not self.handle.done():
                self._wake.wait(self.REFRESH_SECONDS)
                self._wake.clear()
                self.refresh()
            self.refresh()
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    def join(self, timeout: float | None = None) -> None:
        """Wait until the widget has drawn the end of the job."""
        if self._thread is not None:
            self._thread.join(timeout)

    def refresh(self) -> None:
        """Redraw from the handle's current state."""
        with self._render_lock:
            self.state.sync(self.handle)
            self._render()
            if self.handle.done() and not self._result_shown:
                self._result_shown = True
                self._show_result()

    def _cancel(self, _button=None) -> None:
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling..."
        self.handle.cancel()
        self._wake.set()

    def _render(self) -> None:
        s = self.state
        colour = {st.COMPLETE: "#2e7d32", st.FAILED: "#b00020", st.CANCELLED: "#8d6e00"}.get(s.state, "#1565c0")
        self.header.value = (f"<b>{html.escape(s.name)}</b> <code>{html.escape(s.job_id)}</code> "
                             f'<b style="color:{colour}">{s.state}</b>')
        current = s.stage
        reached = STAGES.index(current) if current in STAGES else -1
        marks = []
        for i, stage in enumerate(STAGES):
            if stage == current:
                marks.append(f"<b>{stage}</b>")
            elif i < reached:
                marks.append(f'<span style="color:#2e7d32">{stage} &#10003;</span>')
            else:
                marks.append(f'<span style="color:#999">{stage}</span>')
        self.stages.value = " &rarr; ".join(marks)
        self.bar.max = max(1, s.total)
        self.bar.value = min(s.finished, self.bar.max)
        self.bar.bar_style = {st.COMPLETE: "success", st.FAILED: "danger", st.CANCELLED: "warning"}.get(
            s.state, "danger" if s.failed else "info")
        p = s.progress
        parts = [f"<b>{p.done}</b>/{p.total} done" + (f" ({p.resumed} resumed)" if p.resumed else "")]
        for category in CATEGORIES:  # every category, so that the counts visibly add up to the total
            if category != "done":
                parts.append(f"{getattr(p, category)} {category}")
        parts.append(f"elapsed {duration_text(s.elapsed())}")
        if s.final:
            ran, seconds = s.finished - s.resumed, s.elapsed()
            if ran > 0 and seconds > 0:
                parts.append(f"{ran / seconds:.2f} chunks/s overall")
        else:
            rate = s.throughput()
            parts.append(f"ETA {duration_text(s.eta())}")
            parts.append(f"{rate:.2f} chunks/s" if rate else "- chunks/s")
        if s.result_bytes and s.finished_at is None and s.running_since is not None:
            seconds = max(1e-9, time.time() - s.running_since)
            parts.append(f"{s.result_bytes / seconds / 2**20:.2f} MiB/s of results")
        self.counts.value = " &middot; ".join(parts)
        self.dashboard.value = cluster_html(self._cluster())
        self.grid.show_chunks(s.grid_chunks(), s.total)
        if s.final:
            self.cancel_button.disabled = True
            self.cancel_button.description = "Cancel"
            self.cancel_button.layout.display = "none"
        self.failures.value = failures_html(s.failures(), s.retries())
        self.error.value = (f'<pre style="color:#b00020;white-space:pre-wrap">{html.escape(s.error)}</pre>'
                            if s.error and s.final else "")

    def _cluster(self) -> dict:
        try:
            return self.handle.cluster or {}
        except Exception:  # a cluster being made or released has nothing to say yet
            return {}

    def _chunk_detail(self, index: int) -> dict:
        """One chunk for the grid's click: its records and history, with what this
        process knows of it now (the records are written in batches)."""
        store = getattr(self.handle, "store", None) or st.default_store()
        try:
            detail = chunk_detail(store, self.state.job_id, index)
        except ChunkNotFound:
            detail = {"index": index, "state": st.PENDING, "history": []}
        known = self.state.chunks.get(index) or self.state.ended_chunk(index) or {}
        detail.update({k: known[k] for k in ("state", "attempts", "error", "worker") if known.get(k) is not None})
        return json_safe(detail)

    def _show_result(self) -> None:
        from .preview import result_widget

        try:
            result = self.handle.result(raise_on_error=False)
        except Exception:
            return
        if result is None:
            return
        if result.error:
            self.state.error = result.error
            self._render()
        if result.ok:
            self.result_box.children = [result_widget(result, self.storage_options)]

    def _repr_mimebundle_(self, **kwargs) -> Any:
        # Where widgets do not render (an executed notebook), the text says where the job is.
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = f"[{self.state.job_id}] {self.state.line()}"
        return bundle


def cluster_html(cluster: dict) -> str:
    """Which cluster a job runs on (kind, name or scheduler) and its dashboard link.

    >>> cluster_html({"kind": "gateway", "name": "abc", "dashboard": "https://hub/clusters/abc/status"})
    'Cluster: gateway <b>abc</b> &middot; <a href="https://hub/clusters/abc/status" target="_blank" \
rel="noopener" style="color:#1565c0;text-decoration:underline">Dask dashboard</a>'
    """
    if not cluster:
        return ""
    which = cluster.get("name") or cluster.get("scheduler")
    text = f"Cluster: {html.escape(str(cluster.get('kind') or 'dask'))}"
    if which:
        text += f" <b>{html.escape(str(which))}</b>"
    link = cluster.get("dashboard")
    if link:
        text += (f' &middot; <a href="{html.escape(link)}" target="_blank" rel="noopener" '
                 f'style="color:#1565c0;text-decoration:underline">Dask dashboard</a>')
    return text


def json_safe(value: Any) -> Any:
    """``value`` with what JSON cannot carry (a state enum, a path) as text, for a widget's model."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def failures_html(failures: list[dict], retries: list[dict] | None = None) -> str:
    """Failed (and retrying) chunks: number, attempts, error and stderr tail."""
    parts = []
    for title, items, colour in (("failed", failures, "#b00020"), ("retrying", retries or [], "#8d6e00")):
        for item in items[:MAX_FAILURES_SHOWN]:
            attempts = f", {item['attempts']} attempt(s)" if item.get("attempts") else ""
            stderr = (f'<pre style="max-height:12em;overflow:auto;white-space:pre-wrap;background:#f7f7f7">'
                      f"{html.escape(item['stderr'])}</pre>" if item.get("stderr") else "")
            parts.append(f'<details><summary style="color:{colour}">chunk {item["index"]} {title}{attempts}: '
                         f"{html.escape(item['message'][:300])}</summary>{stderr}</details>")
        if len(items) > MAX_FAILURES_SHOWN:
            parts.append(f"<div>... and {len(items) - MAX_FAILURES_SHOWN} more {title} chunk(s)</div>")
    return "".join(parts)


def follow_text(handle, stream: TextIO, every: float = 5.0) -> ProgressState:
    """Print plain progress lines for ``handle`` until its job ends (on each state
    change, and every ``every`` seconds while chunks finish), then the failed chunks.

    >>> import pathlib, sys, tempfile
    >>> import bytenite_nb as bn
    >>> scratch = tempfile.TemporaryDirectory()
    >>> folder = pathlib.Path(scratch.name)
    >>> _ = (folder / "in.txt").write_text("a\\nb\\n")
    >>> job = bn.Job(source=str(folder / "in.txt"), app="identity", destination=str(folder / "out"))
    >>> handle = job.submit(scheduler="sync")
    >>> handle.result().state
    'COMPLETE'
    >>> state = follow_text(handle, sys.stdout)  # a job that has ended: one line
    [identity-...] COMPLETE     1/1 done, elapsed ...
    >>> state.progress.done
    1
    >>> scratch.cleanup()
    """
    state = ProgressState(handle.job_id, handle.name)
    last_state, last_time, last_finished = None, time.time(), -1
    ended = False
    while True:
        ended = handle.done()
        state.sync(handle)
        now = time.time()
        changed = state.state != last_state and state.state != st.NEW  # NEW: nothing to say yet
        if changed or ended or (now - last_time >= every and state.finished != last_finished):
            print(f"[{handle.job_id}] {state.line(now)}", file=stream, flush=True)
            last_state, last_time, last_finished = state.state, now, state.finished
        if ended:
            break
        handle.wait(0.5)
    for item in state.failures()[:MAX_FAILURES_SHOWN]:
        attempts = f" after {item['attempts']} attempt(s)" if item.get("attempts") else ""
        print(f"[{handle.job_id}] chunk {item['index']} FAILED{attempts}: {item['message']}", file=stream)
        if item["stderr"]:
            print("    " + item["stderr"].rstrip().replace("\n", "\n    "), file=stream)
    stream.flush()
    return state
