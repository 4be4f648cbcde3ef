"""``audio-index``: every chunk's timestamped results on one timeline.

An app that transcribes (or labels) its chunk writes times relative to the
chunk's own start; this assembler adds the chunk's ``start`` (CHUNK_INFO,
seconds in the source) to every cue and writes the cues of all chunks of a
source, in time order, into one SRT, WebVTT or JSON file: transcribe in
parallel, get one subtitle file.
"""

from __future__ import annotations

from ..audio import group_by_source, output_name_for
from ..exceptions import AssemblyError, ResultFormatError
from ..schema import SAFE_NAME
from ..timed_text import FORMATS, format_of, read_cues, write_cues
from .base import Assembler, names_by_source, output_path


def output_format(name: str | None, fmt: str | None) -> tuple[str, str]:
    """(output name template, format) from the ``output_name`` and ``format`` params.

    >>> output_format(None, None), output_format("all.srt", None), output_format(None, "json")
    (('{stem}.vtt', 'vtt'), ('all.srt', 'srt'), ('{stem}.json', 'json'))
    """
    if fmt is None:
        fmt = format_of(name) if name else "vtt"
        if fmt is None:
            raise AssemblyError(f"audio-index: cannot tell the format of {name!r}: give format (srt, vtt or json) "
                                "or a name ending in .srt, .vtt or .json")
    return name or "{stem}." + fmt, fmt


class AudioIndex(Assembler):
    """Timestamped results of every chunk (SRT, WebVTT or JSON segments, the
    kind by the file's extension) shifted by the chunk's start (CHUNK_INFO
    start, seconds) into one timeline per source: output_name ({stem}.vtt by
    default; {name}, {stem}, {ext} and {dir} are the source's) in format srt, vtt or
    json (by default from output_name's extension). Cues are in time order;
    SRT is renumbered; JSON segments keep their other fields (the start and end
    of their words shifted too) and gain chunk. Where a chunk has results of
    the output's format, only those are read (a chunk with nothing to say
    writes an empty file). A chunk without a start or without any timed-text
    result, or a result that does not parse, fails the job naming the chunk
    and file."""

    schema = {
        "type": "object",
        "properties": {
            "output_name": {**SAFE_NAME, "description": "Name of each timeline file ({stem}.vtt by default); "
                                                        "{name}, {stem}, {ext} and {dir} (its folder) are the source's."},
            "format": {"enum": list(FORMATS),
                       "description": "srt, vtt or json; by default from the extension of output_name."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        template, fmt = output_format(params.get("output_name"), params.get("format"))
        groups = group_by_source(results, "audio-index")
        names = names_by_source(groups, lambda s: output_name_for(template, s, len(groups), "audio-index"),
                                "audio-index")
        for source_name, chunks in groups.items():
            cues = []
            for chunk in chunks:
                timed = [(f, format_of(f.name)) for f in sorted(chunk.files, key=lambda f: f.name)]
                timed = [(f, kind) for f, kind in timed if kind]
                if not timed:
                    names = ", ".join(f.name for f in chunk.files) or "no result files"
                    raise ResultFormatError(f"chunk {chunk.index}: no .srt, .vtt or .json among its results ({names}); "
                                            "a chunk with nothing to say writes an empty one")
                if any(kind == fmt for _, kind in timed):
                    timed = [(f, kind) for f, kind in timed if kind == fmt]
                for f, kind in timed:
                    with f.open() as stream:
                        data = stream.read()
                    for cue in read_cues(data, f"chunk {chunk.index}: {f.name}", kind):
                        shifted = cue.shifted(chunk.info["start"])
                        if fmt == "json":
                            shifted.extra["chunk"] = chunk.index
                        cues.append(shifted)
            cues.sort(key=lambda c: c.start)  # stable: a chunk's own order kept for equal starts
            with open(output_path(output_dir, names[source_name]), "w", encoding="utf-8", newline="\n") as out:
                out.write(write_cues(cues, fmt))
