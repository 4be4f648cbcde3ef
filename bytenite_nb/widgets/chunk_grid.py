"""A job's chunks at a glance in a notebook: one cell per chunk on a canvas,
coloured by state, with the chunk a click picks shown below (its attempts,
error, the worker that ran it and its history) and how many chunks each
worker ran.

The widget's model holds compact arrays only (:mod:`bytenite_nb.chunk_grid`):
``states``, a letter per chunk, ``workers``, an index per chunk into
``worker_names``; never the job's plan. A click sets ``selected``; the kernel
answers with that chunk's ``detail``. The canvas is drawn in the browser by a
small script (through anywidget), ten thousand cells in one pass.

>>> grid = ChunkGridWidget()
>>> grid.show_chunks({0: {"state": "DONE", "worker": "tcp://w:1"}, 2: {"state": "FAILED"}}, total=4)
>>> grid.states, grid.workers, grid.worker_names
('DPFP', [0, -1, -1, -1], ['tcp://w:1'])
"""

from __future__ import annotations

from typing import Callable

import anywidget
import traitlets

from ..chunk_grid import STATE_LETTERS, compact_workers, encode_states
from ..states import ChunkState

#: the colour of each state's letter, as the JupyterLab job panel draws them
COLOURS = {STATE_LETTERS[ChunkState.PENDING]: "#c8c8c8", STATE_LETTERS[ChunkState.RUNNING]: "#2f80ed",
           STATE_LETTERS[ChunkState.RETRYING]: "#f2994a", STATE_LETTERS[ChunkState.DONE]: "#27ae60",
           STATE_LETTERS[ChunkState.FAILED]: "#eb5757", STATE_LETTERS[ChunkState.CANCELLED]: "#828282"}
CELL = 6
COLUMNS = 100

_ESM = """
function text(tag, value, cls) {
  const node = document.createElement(tag);
  node.textContent = value;
  if (cls) node.className = cls;
  return node;
}

function render({ model, el }) {
  const legend = document.createElement("div");
  legend.className = "bnb-grid-legend";
  const canvas = document.createElement("canvas");
  canvas.className = "bnb-grid-canvas";
  canvas.style.cursor = "pointer";
  canvas.title = "Click a chunk for its attempts and error";
  const detail = document.createElement("div");
  detail.className = "bnb-grid-detail";
  const workers = document.createElement("div");
  workers.className = "bnb-grid-workers";
  el.append(legend, canvas, detail, workers);

  function draw() {
    const states = model.get("states"), colours = model.get("colours"), names = model.get("state_names");
    const columns = model.get("columns"), cell = model.get("cell"), selected = model.get("selected");
    canvas.dataset.columns = columns;
    canvas.dataset.cell = cell;
    canvas.dataset.cells = states.length;
    canvas.width = columns * cell;
    canvas.height = Math.max(1, Math.ceil(states.length / columns)) * cell;
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    for (const [letter, colour] of Object.entries(colours)) {
      context.fillStyle = colour;
      for (let i = states.indexOf(letter); i >= 0; i = states.indexOf(letter, i + 1)) {
        context.fillRect((i % columns) * cell, Math.floor(i / columns) * cell, cell - 1, cell - 1);
      }
    }
    if (selected >= 0 && selected < states.length) {
      context.strokeStyle = "#000";
      context.strokeRect((selected % columns) * cell - 0.5, Math.floor(selected / columns) * cell - 0.5, cell, cell);
    }
    legend.replaceChildren(...Object.entries(colours).map(([letter, colour]) => {
      const key = text("span", " " + (names[letter] || letter).toLowerCase() + "  ");
      const swatch = text("span", "\\u25a0");
      swatch.style.color = colour;
      key.prepend(swatch);
      return key;
    }));
  }

  function showDetail() {
    const chunk = model.get("detail");
    if (!chunk || chunk.index === undefined) { detail.replaceChildren(); return; }
    detail.dataset.chunk = chunk.index;
    detail.dataset.state = chunk.state;
    const parts = [text("b", "Chunk " + chunk.index + ": " + chunk.state),
                   text("div", "attempts: " + (chunk.attempts ?? "-"), "bnb-grid-attempts"),
                   text("div", "worker: " + (chunk.worker || "none recorded"), "bnb-grid-worker")];
    if (chunk.covers) parts.push(text("div", "covers: " + chunk.covers));
    if (chunk.error) {
      const error = text("pre", chunk.error, "bnb-grid-error");
      error.style.whiteSpace = "pre-wrap";
      error.style.color = "#b00020";
      parts.push(error);
    }
    const history = document.createElement("ol");
    history.className = "bnb-grid-history";
    for (const h of chunk.history || []) {
      const item = text("li", h.state + (h.attempt != null ? " (attempt " + h.attempt + ")" : "") +
                        (h.worker ? " on " + h.worker : "") + (h.error ? ": " + h.error.split("\\n")[0] : ""));
      item.dataset.state = h.state;
      history.append(item);
    }
    parts.push(history);
    detail.replaceChildren(...parts);
  }

  function showWorkers() {
    const names = model.get("worker_names"), per = model.get("workers");
    const counts = names.map(() => 0);
    for (const w of per) if (w >= 0) counts[w]++;
    const rows = names.map((name, i) => [name, counts[i]]).sort((a, b) => b[1] - a[1]);
    workers.replaceChildren(...rows.map(([name, n]) => text("div", name + ": " + n + " chunk" + (n === 1 ? "" : "s"),
                                                             "bnb-grid-worker-count")));
  }

  canvas.addEventListener("click", event => {
    const box = canvas.getBoundingClientRect();
    const columns = model.get("columns"), cell = model.get("cell");
    const column = Math.floor((event.clientX - box.left) / cell), row = Math.floor((event.clientY - box.top) / cell);
    const at = row * columns + column;
    if (column < columns && at >= 0 && at < model.get("states").length) {
      model.set("selected", at);
      model.save_changes();
    }
  });
  model.on("change:states", draw);
  model.on("change:selected", draw);
  model.on("change:detail", showDetail);
  model.on("change:workers", showWorkers);
  model.on("change:worker_names", showWorkers);
  draw();
  showDetail();
  showWorkers();
}
export default { render };
"""


class ChunkGridWidget(anywidget.AnyWidget):
    """The chunk grid. :meth:`show_chunks` (or :meth:`show_page`) fills it;
    ``on_select`` answers a click with the chunk's detail (a dict as
    :func:`bytenite_nb.chunk_grid.chunk_detail` makes)."""

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    states = traitlets.Unicode("").tag(sync=True)
    workers = traitlets.List(traitlets.Int()).tag(sync=True)
    worker_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    colours = traitlets.Dict(COLOURS).tag(sync=True)
    state_names = traitlets.Dict({letter: str(state) for state, letter in STATE_LETTERS.items()}).tag(sync=True)
    columns = traitlets.Int(COLUMNS).tag(sync=True)
    cell = traitlets.Int(CELL).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    detail = traitlets.Dict({}).tag(sync=True)

    def __init__(self, on_select: Callable[[int], dict] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.on_select = on_select
        self.observe(self._selected, names="selected")

    def show_chunks(self, chunks: dict[int, dict], total: int) -> None:
        """Show ``total`` chunks, those in ``chunks`` (index -> ``{"state", "worker"...}``)
        in their state, the others pending; the model changes only where something did."""
        known = [chunks.get(i) or {} for i in range(total)]
        self.show_page([c.get("state", ChunkState.PENDING) for c in known], [c.get("worker") for c in known])

    def show_page(self, states: list[str], workers: list[str | None]) -> None:
        """Show chunks in ``states``, run by ``workers`` (None: none known)."""
        letters = encode_states(states)
        indexes, names = compact_workers(workers)
        with self.hold_sync():
            if letters != self.states:
                self.states = letters
            if names != self.worker_names:
                self.worker_names = names
            if indexes != self.workers:
                self.workers = indexes
        if self.selected >= 0:
            self._selected({"new": self.selected})

    def _selected(self, change) -> None:
        index = change["new"]
        if index < 0 or self.on_select is None:
            return
        try:
            detail = self.on_select(index)
        except Exception as exc:  # a chunk the store has not recorded yet: say so in the detail
            detail = {"index": index, "state": "?", "error": str(exc)}
        if detail != self.detail:
            self.detail = detail
