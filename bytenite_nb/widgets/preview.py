"""Previews of a job's outputs: tables, images, audio, video, capped text.

What a file is comes from its name: ``.csv``/``.tsv``/``.json``/``.jsonl``/
``.parquet`` become a table of the first rows, images show inline, audio
and video get players, anything that decodes as text shows its beginning
(at most :data:`TEXT_LIMIT` bytes). Only the head of a file is read, except
for a ``.json`` document (read whole up to :data:`JSON_LIMIT`) and media
(up to :data:`MEDIA_LIMIT`), so previewing a large output stays cheap.

>>> preview_kind("stats.csv"), preview_kind("chunk_0000/frame.png"), preview_kind("log.txt")
('table', 'image', 'text')
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import posixpath
from dataclasses import dataclass
from typing import Any

import fsspec

from ..redact import redact_text
from ..transfer import size_text

TEXT_LIMIT = 64 * 1024
MEDIA_LIMIT = 20 * 2**20
JSON_LIMIT = 5 * 2**20
TABLE_ROWS = 20
TABLE_HEAD = 2**20  # bytes read to find the first rows of a CSV or JSON lines file
MAX_PREVIEWS = 8

TABLE_EXTS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}
IMAGE_EXTS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp",
              ".bmp": "bmp", ".svg": "svg+xml"}
# the audio/<format> media type a browser plays each as (Opus in Ogg is audio/ogg; raw ADTS AAC audio/aac)
AUDIO_EXTS = {".wav": "wav", ".mp3": "mpeg", ".ogg": "ogg", ".oga": "ogg", ".opus": "ogg", ".flac": "flac",
              ".m4a": "mp4", ".aac": "aac", ".weba": "webm"}
VIDEO_EXTS = {".mp4": "mp4", ".webm": "webm", ".ogv": "ogg", ".mov": "quicktime", ".m4v": "mp4"}
ARCHIVE_EXTS = {".zip"}


def _ext(name: str) -> str:
    return os.path.splitext(name.split("?", 1)[0])[1].lower()


def preview_kind(name: str) -> str:
    """``table``, ``image``, ``audio``, ``video``, ``archive`` or ``text`` (the fallback)."""
    ext = _ext(name)
    if ext in TABLE_EXTS:
        return "table"
    if ext in IMAGE_EXTS:
        return "image"
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in ARCHIVE_EXTS:
        return "archive"
    return "text"


@dataclass
class Table:
    """The first rows of a table output."""

    columns: list[str]
    rows: list[list[Any]]
    more: bool  # rows beyond the ones shown (or not known to be none)

    def to_html(self) -> str:
        th = 'style="padding:2px 10px;text-align:left;border-bottom:1px solid #999"'
        td = 'style="padding:2px 10px;text-align:left"'
        head = "".join(f"<th {th}>{html.escape(str(c))}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td {td}>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                       for row in self.rows)
        note = f'<div style="color:#666">first {len(self.rows)} rows</div>' if self.more else ""
        return (f'<table class="bytenite-nb-table" style="border-collapse:collapse">'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}")

    def to_text(self) -> str:
        cells = [[str(c) for c in self.columns]] + [[_cell(v) for v in row] for row in self.rows]
        widths = [min(30, max(len(r[i]) if i < len(r) else 0 for r in cells)) for i in range(len(self.columns))]
        lines = ["  ".join(v[:30].ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
        if self.more:
            lines.append(f"... (first {len(self.rows)} rows)")
        return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _open(url: str, storage_options: dict | None):
    return fsspec.open(url, "rb", **(storage_options or {})).open()


def read_head(url: str, limit: int, storage_options: dict | None = None) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of ``url`` and whether there is more."""
    with _open(url, storage_options) as f:
        data = f.read(limit + 1)
    return data[:limit], len(data) > limit


def read_table(url: str, storage_options: dict | None = None, rows: int = TABLE_ROWS) -> Table:
    """The first ``rows`` rows of a CSV, TSV, JSON, JSON lines or Parquet file.

    >>> import fsspec; fsspec.filesystem("memory").pipe("/t.csv", b"a,b\\n1,2\\n")
    >>> read_table("memory://t.csv").rows
    [['1', '2']]
    """
    fmt = TABLE_EXTS[_ext(url)]
    if fmt == "parquet":
        return _parquet_table(url, storage_options, rows)
    if fmt == "json":
        data, more = read_head(url, JSON_LIMIT, storage_options)
        if more:
            raise ValueError(f"a JSON document over {JSON_LIMIT // 2**20} MiB is not previewed")
        return _records_table(json.loads(data.decode("utf-8")), rows)
    data, _ = read_head(url, TABLE_HEAD, storage_options)
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    if fmt == "jsonl":
        records = [json.loads(line) for line in lines[:rows + 1] if line.strip()]
        table = _records_table(records[:rows], rows)
        table.more = len(records) > rows
        return table
    head = "\n".join(lines[:rows + 2])
    reader = csv.reader(io.StringIO(head), delimiter="\t" if fmt == "tsv" else ",")
    parsed = list(reader)
    if not parsed:
        return Table([], [], False)
    if not _has_header(head, parsed):
        width = max(len(r) for r in parsed)
        return Table([str(i + 1) for i in range(width)], parsed[:rows], len(parsed) > rows or len(lines) > rows + 2)
    return Table(parsed[0], parsed[1:rows + 1], len(parsed) > rows + 1 or len(lines) > rows + 2)


def _has_header(sample: str, parsed: list[list[str]]) -> bool:
    """Whether the first row names the columns (apps often write CSV/TSV without a header)."""
    if len(parsed) < 3:  # too few rows to tell: the usual case is a header
        return True
    try:
        return csv.Sniffer().has_header(sample)
    except csv.Error:
        return True


def _records_table(data: Any, rows: int) -> Table:
    if isinstance(data, dict):
        # {"column": [values...]} or one record
        if data and all(isinstance(v, list) for v in data.values()):
            columns = list(data)
            n = max(len(v) for v in data.values())
            body = [[data[c][i] if i < len(data[c]) else None for c in columns] for i in range(min(n, rows))]
            return Table(columns, body, n > rows)
        return Table(["key", "value"], [[k, v] for k, v in list(data.items())[:rows]], len(data) > rows)
    if isinstance(data, list):
        columns: list[str] = []
        for item in data[:rows]:
            if isinstance(item, dict):
                columns += [k for k in item if k not in columns]
        if not columns:
            return Table(["value"], [[v] for v in data[:rows]], len(data) > rows)
        body = [[item.get(c) if isinstance(item, dict) else None for c in columns] for item in data[:rows]]
        return Table(columns, body, len(data) > rows)
    return Table(["value"], [[data]], False)


def _parquet_table(url: str, storage_options: dict | None, rows: int) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValueError("install pyarrow to preview Parquet files") from exc
    with _open(url, storage_options) as f:
        pf = pq.ParquetFile(f)
        total = pf.metadata.num_rows
        batch = next(pf.iter_batches(batch_size=rows), None)
        columns = pf.schema_arrow.names
        records = batch.to_pylist() if batch is not None else []
    return Table(columns, [[r.get(c) for c in columns] for r in records], total > len(records))


def read_text(url: str, storage_options: dict | None = None, limit: int = TEXT_LIMIT) -> str | None:
    """The beginning of a text file (capped at ``limit`` bytes), or None if it is not text."""
    data, more = read_head(url, limit, storage_options)
    if b"\x00" in data[:8192]:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 4:  # not just a character cut at the cap
            return None
        text = data[:exc.start].decode("utf-8")
    if more:
        text += f"\n... (shown: the first {limit // 1024} KiB)"
    return text


def _name(output: dict | str) -> str:
    if isinstance(output, dict):
        return output.get("name") or posixpath.basename(output["url"])
    return posixpath.basename(output.rstrip("/"))


def _url(output: dict | str) -> str:
    return output["url"] if isinstance(output, dict) else output


def _size(output: dict | str) -> int | None:
    return output.get("size") if isinstance(output, dict) else None


# -- widgets ----------------------------------------------------------------------------


def preview_widget(output: dict | str, storage_options: dict | None = None, *,
                   text_limit: int = TEXT_LIMIT, rows: int = TABLE_ROWS):
    """A widget previewing one output (``{"name", "url", "size"}`` of a result, or a URL).

    A file that cannot be previewed says why instead of raising.

    >>> import fsspec; fsspec.filesystem("memory").pipe("/hello.txt", b"hello")
    >>> preview_widget("memory://hello.txt").value
    '<pre style="max-height:24em;overflow:auto;white-space:pre-wrap">hello</pre>'
    """
    import ipywidgets as widgets

    url, name, size = _url(output), _name(output), _size(output)
    kind = preview_kind(name)
    try:
        if kind == "table":
            return widgets.HTML(read_table(url, storage_options, rows=rows).to_html())
        if kind in ("image", "audio", "video"):
            if size is not None and size > MEDIA_LIMIT:
                return _note(f"{name}: {size_text(size)}, too large to show inline")
            data, more = read_head(url, MEDIA_LIMIT, storage_options)
            if more:
                return _note(f"{name}: over {size_text(MEDIA_LIMIT)}, too large to show inline")
            ext = _ext(name)
            if kind == "image":
                return widgets.Image(value=data, format=IMAGE_EXTS[ext], layout=widgets.Layout(max_width="100%"))
            if kind == "audio":
                return widgets.Audio(value=data, format=AUDIO_EXTS[ext], autoplay=False, loop=False)
            return widgets.Video(value=data, format=VIDEO_EXTS[ext], autoplay=False, loop=False,
                                 layout=widgets.Layout(max_width="100%"))
        if kind == "archive":
            return widgets.HTML("<pre>" + html.escape(archive_listing(url, storage_options)) + "</pre>")
        text = read_text(url, storage_options, limit=text_limit)
        if text is None:
            return _note(f"{name}: binary data, {size_text(size)}")
        return widgets.HTML(f'<pre style="max-height:24em;overflow:auto;white-space:pre-wrap">'
                            f"{html.escape(text)}</pre>")
    except Exception as exc:  # a preview must never break the display of a result
        return _note(f"{name}: no preview ({type(exc).__name__}: {redact_text(str(exc))})")


def _note(text: str):
    import ipywidgets as widgets

    return widgets.HTML(f'<span style="color:#666">{html.escape(text)}</span>')


def archive_listing(url: str, storage_options: dict | None = None, limit: int = 50) -> str:
    """The first member names of a zip archive, one a line."""
    import zipfile

    with _open(url, storage_options) as f, zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        lines = [f"{i.filename}  {size_text(i.file_size)}" for i in infos[:limit]]
    if len(infos) > limit:
        lines.append(f"... {len(infos) - limit} more")
    return "\n".join(lines)


def preview_text(output: dict | str, storage_options: dict | None = None, limit: int = 2048) -> str:
    """A plain-text preview of one output, for places without widgets (an executed notebook)."""
    url, name, size = _url(output), _name(output), _size(output)
    kind = preview_kind(name)
    try:
        if kind == "table":
            return read_table(url, storage_options, rows=10).to_text()
        if kind in ("image", "audio", "video"):
            return f"({kind}, {size_text(size)})"
        if kind == "archive":
            return archive_listing(url, storage_options, limit=20)
        text = read_text(url, storage_options, limit=limit)
        return f"(binary data, {size_text(size)})" if text is None else text
    except Exception as exc:
        return f"(no preview: {type(exc).__name__}: {redact_text(str(exc))})"


def result_summary_html(result) -> str:
    """The head of a result: state, chunks, duration and the outputs with sizes."""
    colour = {"COMPLETE": "#2e7d32", "FAILED": "#b00020", "CANCELLED": "#8d6e00"}.get(result.state, "#333")
    head = (f'<b>{html.escape(result.name)}</b> <code>{html.escape(result.job_id)}</code> '
            f'<b style="color:{colour}">{result.state}</b> &middot; {result.n_chunks} chunk(s) '
            f"&middot; {result.duration:.1f}s")
    if result.reused:
        head += " &middot; complete already: nothing was run"
    if result.test_job:
        head += " &middot; test job (first chunk only)"
    rows = "".join(f"<tr><td><code>{html.escape(o['url'])}</code></td><td>{size_text(o.get('size'))}</td></tr>"
                   for o in result.outputs[:50])
    more = f"<div>... {len(result.outputs) - 50} more</div>" if len(result.outputs) > 50 else ""
    table = f'<table style="border-collapse:collapse">{rows}</table>{more}' if rows else ""
    error = (f'<pre style="color:#b00020;white-space:pre-wrap">{html.escape(result.error)}</pre>'
             if result.error else "")
    return f"<div>{head}</div>{error}{table}"


def result_widget(result, storage_options: dict | None = None, max_previews: int = MAX_PREVIEWS):
    """A widget for a finished job: its summary and a tab of previews, one per output."""
    import ipywidgets as widgets

    summary = widgets.HTML(result_summary_html(result))
    if not result.ok or not result.outputs:
        return widgets.VBox([summary])
    shown = [o for o in result.outputs if o.get("name") != "_SUCCESS"][:max_previews]
    tabs = widgets.Tab(children=[preview_widget(o, storage_options) for o in shown])
    for i, o in enumerate(shown):
        tabs.set_title(i, _name(o))
    return widgets.VBox([summary, tabs])


def result_text(result, storage_options: dict | None = None, max_previews: int = 3) -> str:
    """A plain-text rendering of a finished job with the beginning of its first outputs."""
    lines = [f"{result.job_id} {result.state}: {result.n_chunks} chunk(s) in {result.duration:.1f}s"
             + (" (complete already: nothing was run)" if result.reused else "")]
    if result.error:
        lines.append(result.error)
    for o in result.outputs:
        lines.append(f"  {o['url']}  {size_text(o.get('size'))}")
    if result.ok:
        for o in result.outputs[:max_previews]:
            lines.append(f"--- {_name(o)} ---")
            lines.append(preview_text(o, storage_options))
    return "\n".join(lines)
