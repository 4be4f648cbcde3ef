"""``audio-concat``: chunk results joined back into one audio file per source.

Three ways, the most faithful the results allow:

- every result sample-exact (PCM or FLAC, as ``audio-time`` and
  ``audio-silence`` write them): the samples are copied block by block
  through libsndfile, so ``audio-time`` -> ``identity`` -> ``audio-concat``
  gives the samples back exactly;
- every result compressed with the same codec, rate and channels: the
  packets are remuxed in order by stream copy (PyAV), timestamps made
  continuous;
- anything else: FFmpeg decodes and concatenates, encoding once.
"""

from __future__ import annotations

import os
import tempfile

from ..audio import (BLOCK, EXACT_FORMATS, READ_DTYPE, group_by_source, muxer_of, open_container, output_name_for,
                     soundfile_info)
from ..exceptions import BadRecordError, ResultFormatError
from ..media import run_ffmpeg
from ..schema import SAFE_NAME
from .base import Assembler, names_by_source, output_path

DEFAULT_OUTPUT_NAME = "{name}"


def local_copy(result, folder: str) -> str:
    """A local path holding ``result`` (its staging path when staging is local)."""
    if result.local_path:
        return result.local_path
    dest = os.path.join(folder, f"{len(os.listdir(folder))}.bin")
    result.copy_to(dest)
    return dest


def audio_result(chunk, folder: str):
    """The chunk's one audio result: (local path, soundfile info or None, PyAV codec key or None)."""
    for f in sorted(chunk.files, key=lambda f: f.name):
        path = local_copy(f, folder)
        with open(path, "rb") as stream:
            try:
                sfi = soundfile_info(stream, f.name)
            except BadRecordError as exc:
                raise ResultFormatError(f"chunk {chunk.index}: {exc}") from None
        if sfi is not None:
            return path, sfi, None
        try:
            with open_container(path, f.name) as container:
                if container.streams.audio:
                    cc = container.streams.audio[0].codec_context
                    return path, None, (cc.name, cc.sample_rate, cc.channels)
        except BadRecordError:
            continue
    names = ", ".join(f.name for f in chunk.files) or "no result files"
    raise ResultFormatError(f"chunk {chunk.index}: no audio among its results ({names})")


class AudioConcat(Assembler):
    """Chunk results joined in chunk order into one audio file per source
    (output_name, by default the source's own name; {name}, {stem}, {ext} and {dir}
    are the source's). Sample-exact results (PCM, FLAC) are copied sample for
    sample through libsndfile, in the output's format (from its extension,
    else the results'); compressed results of one codec are remuxed by stream
    copy; anything else is decoded and encoded once by FFmpeg. A chunk without
    an audio result, or results of different sample rates or channels, fail
    the job naming the chunk."""

    schema = {
        "type": "object",
        "properties": {
            "output_name": {**SAFE_NAME, "default": DEFAULT_OUTPUT_NAME,
                            "description": "Name of each output file; {name}, {stem}, {ext} and {dir} (its folder) are the source's."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results, output_dir, params):
        groups = group_by_source(results, "audio-concat")
        template = params.get("output_name", DEFAULT_OUTPUT_NAME)
        names = names_by_source(groups, lambda s: output_name_for(template, s, len(groups), "audio-concat"),
                                "audio-concat")
        for source_name, chunks in groups.items():
            name = names[source_name]
            with tempfile.TemporaryDirectory(prefix="audio-concat-") as folder:
                parts = [(chunk, *audio_result(chunk, folder)) for chunk in chunks]
                dest = output_path(output_dir, name)
                if all(sfi is not None for _, _, sfi, _ in parts) and exact_format(name, parts[0][2].format):
                    concat_samples(parts, dest, name)
                elif all(key is not None and key == parts[0][3] for _, _, _, key in parts):
                    concat_packets(parts, dest, name)
                else:
                    concat_decoded(parts, dest, name)


def exact_format(name: str, fallback: str) -> str | None:
    """The sample-exact libsndfile format an output name asks for (by its extension; none:
    ``fallback``), or None when the name asks for another (``.mp3``, ``.m4a``...).

    >>> exact_format("a.flac", "WAV"), exact_format("a", "FLAC"), exact_format("a.mp3", "WAV")
    ('FLAC', 'FLAC', None)
    """
    ext = os.path.splitext(name)[1].lstrip(".").upper()
    if not ext:
        return fallback
    ext = {"AIF": "AIFF", "AIFC": "AIFF"}.get(ext, ext)
    return ext if ext in EXACT_FORMATS else None


def concat_samples(parts, dest: str, name: str) -> None:
    """Copy the samples of every part in order (block by block, exact)."""
    import soundfile as sf

    first = parts[0][2]
    fmt = exact_format(name, first.format)
    subtype = first.subtype if sf.check_format(fmt, first.subtype) else sf.default_subtype(fmt)
    dtype = READ_DTYPE.get(first.subtype, "int32")
    with sf.SoundFile(dest, "w", samplerate=first.samplerate, channels=first.channels, format=fmt,
                      subtype=subtype) as out:
        for chunk, path, sfi, _ in parts:
            if (sfi.samplerate, sfi.channels) != (first.samplerate, first.channels):
                raise ResultFormatError(f"chunk {chunk.index}: {sfi.samplerate} Hz x {sfi.channels} channels, the "
                                        f"first chunk {first.samplerate} Hz x {first.channels}")
            try:
                with sf.SoundFile(path) as src:
                    for block in src.blocks(blocksize=BLOCK, dtype=dtype, always_2d=True):
                        out.write(block)
            except (RuntimeError, sf.LibsndfileError) as exc:
                raise ResultFormatError(f"chunk {chunk.index}: cannot read its audio ({exc})") from None


def concat_packets(parts, dest: str, name: str) -> None:
    """Remux every part's packets in order (stream copy), timestamps made continuous:
    each part starts where the previous one's last packet ended."""
    import av

    next_sample = None
    try:
        out_container = av.open(dest, "w")
    except (ValueError, av.error.FFmpegError):
        with open_container(parts[0][1], name) as c:
            out_container = av.open(dest, "w", format=muxer_of(c))
    with out_container as out:
        ost = None
        for chunk, path, _, _ in parts:
            with open_container(path, f"chunk {chunk.index}") as src:
                audio = src.streams.audio[0]
                if ost is None:
                    ost = out.add_stream_from_template(audio)
                scale = audio.time_base * audio.codec_context.sample_rate
                first_pts = None
                for packet in src.demux(audio):
                    if packet.pts is None or packet.size == 0:
                        continue
                    if first_pts is None:
                        first_pts = packet.pts
                        if next_sample is None:
                            next_sample = round(first_pts * scale)
                        offset = round(next_sample / scale) - first_pts
                    end = round((packet.pts + (packet.duration or 0)) * scale) + round(offset * scale)
                    packet.pts += offset
                    packet.dts = packet.pts
                    packet.stream = ost
                    out.mux(packet)
                if first_pts is not None:
                    next_sample = end


def concat_decoded(parts, dest: str, name: str) -> None:
    """Decode every part and encode them once into ``dest`` (FFmpeg's concat filter)."""
    args = []
    for _, path, _, _ in parts:
        args += ["-i", path]
    inputs = "".join(f"[{i}:a:0]" for i in range(len(parts)))
    run_ffmpeg([*args, "-filter_complex", f"{inputs}concat=n={len(parts)}:v=0:a=1[a]", "-map", "[a]", dest],
               name=name)
