"""``image-package``: result images into one zip or tar, with an index.

The index has one row per image - chunk, source name, result name, size in
bytes, width, height - and is written as ``index.csv`` and ``index.json``
both inside the archive and beside it. Width and height come from each
image's header: no image is decoded.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import tarfile
import zipfile

from ..exceptions import BadRecordError, ResultFormatError
from ..images import matches, open_image
from ..schema import SAFE_NAME
from ..transfer import BUFFER
from .base import Assembler, chunk_folder, output_path

INDEX_COLUMNS = ("chunk", "source", "result", "bytes", "width", "height")


def source_of(info: dict, result_name: str) -> str:
    """The source image a result comes from, by its chunk's ``CHUNK_INFO``: the tiled
    ``image``, the chunk's one name, or the name whose stem the result's stem starts
    with (``cat.jpg`` for ``cat.mask.png``); empty when that cannot be told.

    >>> source_of({"names": ["a/cat.jpg", "a/dog.jpg"]}, "a/dog.mask.png")
    'a/dog.jpg'
    """
    if info.get("image"):
        return info["image"]
    names = info.get("names") or []
    if len(names) == 1:
        return names[0]
    stem = posixpath.basename(result_name).split(".")[0]
    for name in names:
        if posixpath.basename(name).split(".")[0] == stem:
            return name
    return ""


def index_text(rows: list[dict]) -> tuple[bytes, bytes]:
    """The index as CSV and as JSON (a list of objects).

    >>> csv_bytes, json_bytes = index_text([{"chunk": 0, "source": "a.png", "result": "chunk_0000/a.png",
    ...                                     "bytes": 10, "width": 2, "height": 3}])
    >>> csv_bytes.decode().splitlines()
    ['chunk,source,result,bytes,width,height', '0,a.png,chunk_0000/a.png,10,2,3']
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(), (json.dumps(rows, indent=1) + "\n").encode()


class ImagePackage(Assembler):
    """Every result image (by default the result files with an image extension;
    pattern chooses others) into one zip or tar (archive), under a folder per
    chunk (chunk_0000/...), with an index - chunk, source (the source image,
    from the chunk's CHUNK_INFO), result (the name in the archive), bytes,
    width, height (from each image's header) - as index.csv and index.json
    inside the archive and beside it. A result Pillow cannot read fails the
    job naming the chunk and the file."""

    schema = {
        "type": "object",
        "properties": {
            "archive": {"enum": ["zip", "tar"], "default": "zip", "description": "Kind of archive."},
            "output_name": {**SAFE_NAME, "description": "Name of the archive (images.zip or images.tar)."},
            "pattern": {"type": "string", "description": "Only result files whose name matches this glob; "
                                                         "by default those with an image extension."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        kind = params.get("archive", "zip")
        name = params.get("output_name") or f"images.{kind}"
        pattern = params.get("pattern")
        count = len(results)
        rows: list[dict] = []
        path = output_path(output_dir, name)
        archive = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) if kind == "zip" \
            else tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
        with archive:
            for chunk in results:
                folder = chunk_folder(chunk.index, count)
                for f in sorted(chunk.files, key=lambda f: f.name):
                    if not matches(f.name, pattern):
                        continue
                    with f.open() as stream:
                        try:
                            with open_image(stream, f.name) as image:
                                width, height = image.size
                        except BadRecordError as exc:  # an assembler's error, naming the chunk too
                            raise ResultFormatError(f"chunk {chunk.index}: {exc}") from None
                    member = f"{folder}/{f.name}"
                    _add(archive, member, f)
                    rows.append({"chunk": chunk.index, "source": source_of(chunk.info, f.name), "result": member,
                                 "bytes": f.size, "width": width, "height": height})
            csv_bytes, json_bytes = index_text(rows)
            for index_name, data in (("index.csv", csv_bytes), ("index.json", json_bytes)):
                if isinstance(archive, zipfile.ZipFile):
                    archive.writestr(index_name, data)
                else:
                    info = tarfile.TarInfo(index_name)
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
        folder = os.path.dirname(name)
        for index_name, data in (("index.csv", csv_bytes), ("index.json", json_bytes)):
            with open(output_path(output_dir, posixpath.join(folder, index_name)), "wb") as out:
                out.write(data)


def _add(archive, member: str, f) -> None:
    """Copy one result file into the archive, streamed."""
    with f.open() as src:
        if isinstance(archive, zipfile.ZipFile):
            with archive.open(member, "w", force_zip64=f.size > 2**31) as dst:
                while data := src.read(BUFFER):
                    dst.write(data)
        else:
            info = tarfile.TarInfo(member)
            info.size = f.size
            archive.addfile(info, src)
