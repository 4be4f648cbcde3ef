"""What a plan shows before anything runs: the chunks, what each covers, and
the first rows of the first chunk.

:class:`Plan` is what ``job.plan()`` returns: a list of
:class:`~bytenite_nb.partitioners.ChunkRef` that also carries ``sample``,
the start of the first chunk as the app will see it (a table's first rows, a
text's first lines, an archive's names), read by the planning task, never by
the client. The builder, the JupyterLab editor and a notebook's display of
the plan all show the same thing.
"""

from __future__ import annotations

import html
import json
import os
import zipfile

from .partitioners.base import ChunkRef

SAMPLE_ROWS = 10
SAMPLE_BYTES = 64 * 2**10  # a text sample never reads more of the chunk than this
CELL_CHARS = 80
DETAILS_CHARS = 160
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                 ".parquet": "parquet", ".pq": "parquet"}


class Plan(list):
    """The chunks of a job (a list of ``ChunkRef``) and ``sample``, the start of
    the first one (see :func:`sample_file`), or None when it was not read.

    >>> plan = Plan([ChunkRef(index=0, url="file:///d/a.csv", end=8, size=8, meta={"rows": [0, 2]})],
    ...             sample={"chunk": 0, "kind": "table", "columns": ["a"], "rows": [["1"], ["2"]]})
    >>> len(plan), plan[0].size, plan.sample["rows"]
    (1, 8, [['1'], ['2']])
    >>> chunk_details(plan[0])
    'rows: [0, 2]'
    """

    def __init__(self, refs=(), sample: dict | None = None):
        super().__init__(refs)
        self.sample = sample

    def _repr_html_(self) -> str:
        return plan_html(self, self.sample)


def chunk_details(ref: ChunkRef, limit: int = DETAILS_CHARS) -> str:
    """What the partitioner says a chunk covers beyond its bytes (its ``meta``:
    rows, window, key, section title, file list), as one short line.

    >>> chunk_details(ChunkRef(meta={"window": ["2026-01-01", "2026-01-02"], "key": "b"}))
    'window: 2026-01-01 .. 2026-01-02 · key: b'
    >>> chunk_details(ChunkRef(meta={"title": "Setup", "path": ["Guide", "Install"]}))
    'title: Setup · path: Guide > Install'
    """
    parts = []
    for key, value in ref.meta.items():
        if key.startswith("_") or key in ("header_bytes", "format"):
            continue  # how to rewrite the chunk, not what it covers
        if key == "path" and isinstance(value, list):  # enclosing headings (sections), not a range
            text = " > ".join(map(str, value)) or "-"
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            text = f"{value[0]} .. {value[1]}"
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{key}: {_cut(text, CELL_CHARS)}")
    return _cut(" · ".join(parts), limit)


def sample_file(path: str, ref: ChunkRef, rows: int = SAMPLE_ROWS, *, cut: bool = False) -> dict:
    """The start of a materialised chunk at ``path``, for a preview: a table's
    columns and first ``rows`` rows (CSV, TSV, JSON Lines, Parquet, by the
    chunk's ``format`` or its name), an archive's member names, a text's first
    lines, or only the size of binary data. Every value is a short string.
    ``cut``: the file is only the start of the chunk (its last row may be cut
    short, and is left out).

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "data.bin")
    >>> _ = open(path, "w").write('id,note\\n1,"a, b"\\n2,c\\n')
    >>> sample_file(path, ChunkRef(index=0, label="t.csv"))["rows"]
    [['1', 'a, b'], ['2', 'c']]
    """
    base = {"chunk": ref.index}
    size = os.path.getsize(path)
    fmt = ref.meta.get("format") or TABLE_FORMATS.get(os.path.splitext((ref.label or ref.url or "")
                                                                       .removesuffix(".gz"))[1].lower())
    if fmt in ("csv", "tsv", "jsonl", "parquet"):
        try:
            if cut and fmt != "parquet":
                _drop_last_line(path, quoted=fmt in ("csv", "tsv"))
            columns, values = _table_sample(path, fmt, rows)
            return {**base, "kind": "table", "format": fmt, "columns": columns, "rows": values}
        except Exception as exc:  # shown as text below, with why it is not a table
            base["note"] = f"not readable as {fmt}: {_cut(str(exc), 200)}"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        return {**base, "kind": "files", "count": len(names), "names": names[:rows]}
    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a character cut by the sample's end
            return {**base, "kind": "binary", "size": size}
        text = head[:exc.start].decode("utf-8")
    lines = text.splitlines()[:rows]
    return {**base, "kind": "text", "size": size, "lines": [_cut(line, 200) for line in lines]}


def _drop_last_line(path: str, quoted: bool) -> None:
    """Cut a file after its last complete row (the rest was cut short by the
    sample): the last newline, outside double quotes for CSV and TSV."""
    import numpy as np

    with open(path, "rb+") as f:
        arr = np.frombuffer(f.read(), dtype=np.uint8)
        newlines = np.flatnonzero(arr == 0x0A)
        if quoted:  # a newline inside a quoted field has an odd number of quotes before it
            newlines = newlines[np.searchsorted(np.flatnonzero(arr == 0x22), newlines) % 2 == 0]
        if len(newlines):
            f.truncate(int(newlines[-1]) + 1)


def _table_sample(path: str, fmt: str, rows: int) -> tuple[list[str], list[list[str]]]:
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows), None)
        table = pa.Table.from_batches([batch]) if batch is not None else pq.read_schema(path).empty_table()
    elif fmt == "jsonl":
        records = []
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    records.append(json.loads(line))
                if len(records) == rows:
                    break
        columns = list(dict.fromkeys(k for r in records if isinstance(r, dict) for k in r))
        return columns, [[_cell(r.get(c)) if isinstance(r, dict) else "" for c in columns] for r in records]
    else:
        import pyarrow.csv as pcsv

        options = pcsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True)
        reader = pcsv.open_csv(path, parse_options=options,
                               convert_options=pcsv.ConvertOptions(column_types=None, strings_can_be_null=False),
                               read_options=pcsv.ReadOptions(block_size=1 << 20))
        got, taken = [], 0
        for batch in reader:
            got.append(batch.slice(0, rows - taken))
            taken += got[-1].num_rows
            if taken >= rows:
                break
        table = pa.Table.from_batches(got, schema=reader.schema)
    columns = table.column_names
    data = [table.column(c).to_pylist() for c in columns]
    return columns, [[_cell(col[i]) for col in data] for i in range(table.num_rows)]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return _cut(str(value), CELL_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sample_html(sample: dict | None) -> str:
    """The sample of a plan as HTML (a table, lines or names); empty without one.

    >>> sample_html({"chunk": 0, "kind": "text", "lines": ["a <b>"]})
    '<div>first lines of chunk 0:</div><pre>a &lt;b&gt;</pre>'
    """
    if not sample:
        return ""
    esc = html.escape
    chunk = sample.get("chunk")
    kind = sample.get("kind")
    note = f"<div><i>{esc(sample['note'])}</i></div>" if sample.get("note") else ""
    if kind == "table":
        head = "".join(f"<th>{esc(c)}</th>" for c in sample["columns"])
        body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in sample["rows"])
        return (f"<div>first rows of chunk {chunk} ({esc(sample.get('format', ''))}):</div>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    if kind == "files":
        names = "".join(f"<li><code>{esc(n)}</code></li>" for n in sample["names"])
        return f"<div>chunk {chunk}: an archive of {sample['count']} file(s):</div><ul>{names}</ul>"
    if kind == "text":
        return note + f"<div>first lines of chunk {chunk}:</div><pre>{esc(chr(10).join(sample['lines']))}</pre>"
    if kind == "media":
        return media_html(sample)
    if kind == "error":
        return f"<div>chunk {chunk} could not be read for a preview: {esc(sample.get('error', ''))}</div>"
    return f"<div>chunk {chunk}: {sample.get('size', 0)} bytes of binary data</div>"


def media_html(sample: dict) -> str:
    """A media plan's pictures (see :func:`bytenite_nb.media_preview.media_sample`)
    as HTML: the heading, then each picture with its caption. Only ``data:image/``
    URLs are shown.

    >>> page = media_html({"kind": "media", "media": "audio", "heading": "waveform of 1 source(s) of 1",
    ...     "pictures": [{"src": "data:image/png;base64,AA==", "caption": "a <b>", "width": 8, "height": 2},
    ...                  {"src": "https://example.com/x.png", "caption": "elsewhere", "width": 1, "height": 1}]})
    >>> page.split("<figure")[0]
    '<div>waveform of 1 source(s) of 1:</div><div style="display:flex;flex-wrap:wrap;gap:8px">'
    >>> page.count("<img "), '<img src="data:image/png;base64,AA==" width="8" height="2" alt="a &lt;b&gt;"' in page
    (1, True)
    """
    esc = html.escape
    figures = "".join(
        f'<figure style="margin:0" data-media="{esc(sample.get("media", ""))}"><img src="{esc(p["src"])}" '
        f'width="{int(p["width"])}" height="{int(p["height"])}" alt="{esc(p["caption"])}" '
        f'style="max-width:100%;height:auto"><figcaption>{esc(p["caption"])}</figcaption></figure>'
        for p in sample.get("pictures", []) if str(p.get("src", "")).startswith("data:image/"))
    note = f"<div><i>{esc(sample['note'])}</i></div>" if sample.get("note") else ""
    return (f"<div>{esc(sample.get('heading', 'media'))}:</div>{note}"
            f'<div style="display:flex;flex-wrap:wrap;gap:8px">{figures}</div>')


def plan_html(refs: list, sample: dict | None = None, shown: int = 10, offset: int = 0) -> str:
    """Chunk count, sizes, one page of chunks (``shown`` of them from the
    ``offset``-th) with what each covers, then the sample of the first chunk.
    Never more than a page: a plan of 100,000 chunks is shown a page at a time.

    >>> refs = [ChunkRef(url="file:///d/in.txt", start=0, end=4, size=4, index=0),
    ...         ChunkRef(url="file:///d/in.txt", start=4, end=10, size=6, index=1)]
    >>> plan_html(refs).split("<table>")[0]
    '<div><b>2</b> chunk(s), 10 B in all, 4 B to 6 B each</div>'
    >>> plan_html(refs, shown=1, offset=1).count("<tr><td>"), "chunks 2 to 2 of 2" in plan_html(refs, shown=1, offset=1)
    (1, True)
    """
    from .transfer import size_text

    sizes = [r.size for r in refs if r.size is not None]
    head = f"<b>{len(refs)}</b> chunk(s)"
    if sizes:
        head += f", {size_text(sum(sizes))} in all, {size_text(min(sizes))} to {size_text(max(sizes))} each"
    offset = max(0, min(offset, len(refs) - 1)) if refs else 0
    page = refs[offset:offset + shown]
    rows = "".join(f"<tr><td>{r.index}</td><td>{size_text(r.size)}</td><td><code>{html.escape(r.describe())}"
                   f"</code></td><td>{html.escape(chunk_details(r))}</td></tr>" for r in page)
    more = (f"<div>chunks {offset + 1} to {offset + len(page)} of {len(refs)}</div>"
            if len(refs) > len(page) else "")
    return (f"<div>{head}</div><table><thead><tr><th>chunk</th><th>size</th><th>covers</th><th>details</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>{more}{sample_html(sample)}")
