"""``json-objects``: JSON documents put back together around their results."""

from __future__ import annotations

import os

from ..exceptions import AssemblyError
from ..schema import SAFE_NAME
from ..transfer import BUFFER, current_checksum, new_checksum
from .base import Assembler, output_path

WHITESPACE = b" \t\r\n"
PROBE = 65536


def inside(f, brackets: bytes) -> tuple[int, int]:
    """The byte range inside the outer brackets (``b"[]"`` or ``b"{}"``) of the
    JSON array or object in result file ``f``, whitespace around them allowed.

    >>> import os, tempfile
    >>> from bytenite_nb.assemblers.base import ResultFile
    >>> path = os.path.join(tempfile.mkdtemp(), "r.json")
    >>> _ = open(path, "wb").write(b' [1, 2]\\n')
    >>> inside(ResultFile(name="r.json", size=8, url="file://" + path, local_path=path), b"[]")
    (2, 6)
    """
    with f.open() as src:
        head = src.read(PROBE)
        src.seek(max(0, f.size - PROBE))
        tail = src.read(PROBE)
    start = len(head) - len(head.lstrip(WHITESPACE))
    end = f.size - (len(tail) - len(tail.rstrip(WHITESPACE)))
    last = tail[end - 1 - (f.size - len(tail)):][:1] if end > 0 else b""
    if head[start:start + 1] != brackets[:1] or end < start + 2 or last != brackets[1:]:
        kind = "array" if brackets == b"[]" else "object"
        raise AssemblyError(f"{f.name}: not a JSON {kind} (the json-objects assembler puts the elements of each "
                            f"result's {kind} back into the document)")
    return start + 1, end - 1


class JsonObjects(Assembler):
    """Put the JSON documents that ``json-objects`` fanned out back together:
    the text of each document before and after the array (or object) at the
    pointer, and between, the elements of every chunk's result, a JSON array
    (or object), in chunk order. ``json-objects`` -> ``identity`` ->
    ``json-objects`` gives back the documents byte for byte; an app may change,
    add or drop elements. One output per source document, named after it
    (``output_name`` for a single document). ``pattern`` picks the result file
    of each chunk when there are several."""

    schema = {
        "type": "object",
        "properties": {
            "output_name": {**SAFE_NAME, "description": "Name of the output (one source document)."},
            "pattern": {"type": "string", "description": "The result file of each chunk (a glob)."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        import fnmatch

        documents: dict[int, list] = {}
        for chunk in results:
            info = chunk.info
            if info.get("format") != "json" or info.get("output") != "json" or "document" not in info:
                raise AssemblyError(f"chunk {chunk.index}: not a chunk of a JSON document made by the json-objects "
                                    "partitioner with output json (for JSON Lines, use concat)")
            files = [f for f in sorted(chunk.files, key=lambda f: f.name)
                     if not params.get("pattern") or fnmatch.fnmatch(f.name, params["pattern"])]
            if len(files) > 1:
                raise AssemblyError(f"chunk {chunk.index}: {len(files)} result files; pick one with pattern")
            documents.setdefault(info["document"], []).append((chunk, files[0] if files else None))
        # Named as in the source (its relative name; output_path refuses one that leaves the folder).
        names = {n: chunks[0][0].info.get("label") or os.path.basename(chunks[0][0].info.get("url") or f"{n}.json")
                 for n, chunks in documents.items()}
        if params.get("output_name"):
            if len(documents) > 1:
                raise AssemblyError(f"output_name is for one document; the results hold {len(documents)}")
            names = {n: params["output_name"] for n in documents}
        sums = {}
        for n, chunks in sorted(documents.items()):
            sums[names[n]] = self._write(chunks, output_path(output_dir, names[n]))
        return sums

    def _write(self, chunks, path: str) -> str:
        first, last = chunks[0][0].info, chunks[-1][0].info
        if "prefix" not in first and "prefix_url" not in first or "suffix" not in last and "suffix_url" not in last:
            raise AssemblyError(f"chunk {chunks[0][0].index}: the results do not hold the whole document (its first "
                                "and last chunks carry the text around the elements)")
        brackets = b"{}" if first.get("kind") == "object" else b"[]"
        digest = new_checksum(current_checksum())

        def write(data: bytes) -> None:
            out.write(data)
            digest.update(data)

        with open(path, "wb") as out:
            # Text kept in the job's workspace is in staging, as the results are.
            options = next((f.storage_options for _, f in chunks if f is not None), {})
            _text(first, "prefix", write, options)
            ranges = [(f, *inside(f, brackets)) for _, f in chunks if f is not None]
            filled = [(f, a, b) for f, a, b in ranges if not _blank(f, a, b)]
            for n, (f, a, b) in enumerate(filled or ranges):
                if n and filled:
                    write(b",")
                with f.open() as src:
                    src.seek(a)
                    left = b - a
                    while left > 0:
                        data = src.read(min(BUFFER, left))
                        if not data:
                            raise AssemblyError(f"{f.name}: shorter than its size")
                        write(data)
                        left -= len(data)
            _text(last, "suffix", write, options)
        return digest.hexdigest()


def _blank(f, start: int, end: int) -> bool:
    """Only whitespace in the range (reads up to the first other byte)."""
    with f.open() as src:
        src.seek(start)
        while start < end:
            data = src.read(min(PROBE, end - start))
            if not data:
                return True
            if data.strip(WHITESPACE):
                return False
            start += len(data)
    return True


def _text(info: dict, key: str, write, storage_options: dict) -> None:
    if key in info:
        write(info[key].encode("utf-8"))
        return
    import fsspec

    with fsspec.open(info[key + "_url"], "rb", **storage_options) as src:
        while data := src.read(BUFFER):
            write(data)
