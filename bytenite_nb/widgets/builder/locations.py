"""The Source and Destination tabs: where a job reads and where it writes.

Each is a URL box. A location the job gives as a ByteNite descriptor shows as
its URL, with the descriptor as given in a note; the job keeps the
descriptor until the URL is edited. The source also lists what its URL
matches and previews the first file.

>>> destination = LocationSection("Destination", "dataDestination",
...                               {"dataSourceDescriptor": "file", "params": {"path": "/tmp/out/"}})
>>> destination.url.value
'file:///tmp/out/'
>>> destination.value["dataSourceDescriptor"]
'file'
>>> destination.url.value = "s3://results/run/"
>>> destination.value
's3://results/run/'
"""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as widgets

from ...exceptions import ByteniteNBError
from ...storage import list_source, parse_location
from ..preview import preview_widget, size_text
from .sections import Section

LISTED_FILES = 20

PLACEHOLDERS = {"dataSource": "data/*.txt, s3://bucket/prefix/, ...",
                "dataDestination": "out/, s3://bucket/results/, ..."}


class LocationSection(Section):
    """A data location of the job (``field``: ``dataSource`` or ``dataDestination``)
    as a URL box, and the descriptor as given in a note."""

    def __init__(self, title: str, field: str, given: Any, *, base_dir: str | None = None,
                 beside_url: tuple[widgets.Widget, ...] = (), below: tuple[widgets.Widget, ...] = ()):
        self.title, self.fields = title, (field,)
        self.given = given
        self.base_dir = base_dir
        self.url = widgets.Text(description="URL", placeholder=PLACEHOLDERS.get(field, ""),
                                layout=widgets.Layout(width="640px"), continuous_update=False)
        self.note = widgets.HTML("")
        super().__init__([widgets.HBox([self.url, *beside_url]), self.note, *below])
        with self.quietly():
            self._show(given)
        self.on_edit(self.url, self._url_edited)

    def _show(self, given: Any) -> None:
        if given is None or isinstance(given, str):
            self.url.value = given or ""
            return
        try:
            self.url.value = parse_location(given, field="", base_dir=self.base_dir).url or ""
        except ByteniteNBError:
            self.url.value = ""
        spec = given.to_spec() if hasattr(given, "to_spec") else given
        self.note.value = (f'<span style="color:#666">as given: <code>{html.escape(json.dumps(spec, default=str))}'
                           "</code> (editing the URL replaces it)</span>")

    def _url_edited(self) -> None:
        self.note.value = ""  # the descriptor it described is gone

    @property
    def value(self) -> Any:
        """The location as the job will say it: the URL as edited, or the job's own value."""
        return (self.url.value.strip() or None) if self.touched else self.given


class SourceSection(LocationSection):
    """The source: its URL, and, on List or whenever the URL is edited, the files
    it matches and a preview of the first."""

    def __init__(self, given: Any, *, base_dir: str | None = None, storage_options: dict | None = None):
        self.storage_options = storage_options
        self.list_button = widgets.Button(description="List", icon="folder-open",
                                          tooltip="List the files the source matches")
        self.listing = widgets.HTML("")
        self.preview = widgets.VBox()
        super().__init__("Source", "dataSource", given, base_dir=base_dir, beside_url=(self.list_button,),
                         below=(self.listing, self.preview))
        self.list_button.on_click(lambda _: self.list_files())

    def _url_edited(self) -> None:
        super()._url_edited()
        if self.url.value.strip():
            self.list_files()

    def list_files(self) -> list:
        """List what the source matches and preview its first file; return the files
        (none when the source cannot be listed: the error line says why)."""
        self.show([])
        self.listing.value = ""
        self.preview.children = []
        if not self.url.value.strip():
            return []
        try:
            location = parse_location(self.value, field="dataSource", base_dir=self.base_dir,
                                      storage_options=self.storage_options)
            files = list_source(location)
        except ByteniteNBError as exc:
            self.show([str(exc)])
            return []
        self.listing.value = listing_html(files)
        if files:
            first = files[0]
            self.preview.children = [
                widgets.HTML(f"<b>{html.escape(first.name)}</b>"),
                preview_widget({"name": first.name, "url": first.url, "size": first.size},
                               location.storage_options, text_limit=1024, rows=10),
            ]
        return files


def listing_html(files: list) -> str:
    """How many files, their total size, and the first :data:`LISTED_FILES` of them.

    >>> from bytenite_nb.storage import FileInfo
    >>> print(listing_html([FileInfo(url="file:///d/a.txt", name="a.txt", size=2048)]))
    <div><b>1</b> file(s), 2.0 KiB in all</div><table><tr><td><code>a.txt</code></td><td>2.0 KiB</td></tr></table>
    """
    total = sum(f.size or 0 for f in files)
    rows = "".join(f"<tr><td><code>{html.escape(f.name)}</code></td><td>{size_text(f.size)}</td></tr>"
                   for f in files[:LISTED_FILES])
    more = f"<div>... {len(files) - LISTED_FILES} more</div>" if len(files) > LISTED_FILES else ""
    return f"<div><b>{len(files)}</b> file(s), {size_text(total)} in all</div><table>{rows}</table>{more}"
