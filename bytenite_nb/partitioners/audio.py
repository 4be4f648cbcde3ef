"""What the ``audio-*`` partitioners share: one plan loop over the source's
audio files and one way a worker writes its chunk.

A subclass says where to cut (:meth:`AudioPartitioner.cuts`, sample
positions in the file); this module probes each file, snaps the cuts to what
the file allows (any sample of PCM/FLAC, packet boundaries of compressed
codecs), writes the chunks' CHUNK_INFO and materialises a chunk: the
samples ``[start_sample, end_sample)`` in the source's format for
sample-exact files, the chunk's packets remuxed by stream copy otherwise.
"""

from __future__ import annotations

import os

from ..audio import (BLOCK, READ_DTYPE, AudioInfo, chunk_label, chunk_metas, chunk_size, open_container, probe,
                     snap)
from ..exceptions import BadRecordError, PartitionError
from ..media import media_input, whole_output
from .base import ChunkRef, Partitioner, Source


class AudioPartitioner(Partitioner):
    """Base of the audio partitioners: subclasses implement :meth:`cuts`."""

    def cuts(self, source: Source, url: str, info: AudioInfo, params: dict) -> list[int]:
        """Where to cut ``info``'s file: sample positions (snapped afterwards)."""
        raise NotImplementedError

    def check_params(self, params: dict) -> None:
        """Refuse params that do not fit together, naming the field."""

    def segments(self, source: Source, url: str, info: AudioInfo, params: dict) -> list[dict]:
        """The CHUNK_INFO of each chunk of one file: by default the stretches between
        :meth:`cuts`, snapped to what the file allows."""
        return chunk_metas(info, sorted({snap(info, c) for c in self.cuts(source, url, info, params)}))

    def plan(self, source: Source, params: dict):
        self.check_params(params)
        for f in source.files:
            info = probe(source, f.url, f.name)
            for meta in self.segments(source, f.url, info, params):
                yield ChunkRef(url=f.url, size=chunk_size(info, f.size, meta), label=chunk_label(meta), meta=meta)

    def materialise(self, ref: ChunkRef, dest: str, storage_options: dict | None = None) -> int:
        """Write the chunk's samples (PCM/FLAC, in the source's format) or packets
        (compressed, stream copy into the source's container) to ``dest``."""
        # written under a temporary name, so a chunk that fails part-way leaves no half
        # file at dest (nor writes through a link an earlier attempt left)
        with media_input(ref.url, storage_options) as stream, whole_output(dest) as out:
            if ref.meta["exact"]:
                write_samples(stream, ref, out)
            else:
                write_packets(stream, ref, out)
        return os.path.getsize(dest)


def write_samples(stream, ref: ChunkRef, dest: str) -> None:
    """Copy samples ``[start_sample, end_sample)`` into a file of the source's format and type."""
    import soundfile as sf

    meta, name = ref.meta, ref.meta["source"]
    start, end = meta["start_sample"], meta["end_sample"]
    dtype = READ_DTYPE.get(meta["subtype"], "int32")
    try:
        with sf.SoundFile(stream) as src:
            if src.samplerate != meta["sample_rate"] or src.channels != meta["channels"] or src.frames < end:
                raise PartitionError(f"chunk {ref.index}: {name} is now {src.frames} samples at {src.samplerate} Hz "
                                     f"x {src.channels}, planned with samples up to {end} at {meta['sample_rate']} "
                                     "Hz (did the source change after planning?)")
            src.seek(start)
            with sf.SoundFile(dest, "w", samplerate=src.samplerate, channels=src.channels, format=meta["format"],
                              subtype=meta["subtype"]) as out:
                at = start
                while at < end:
                    block = src.read(min(BLOCK, end - at), dtype=dtype, always_2d=True)
                    if not len(block):
                        raise BadRecordError(f"ends at sample {at}, before {end}", file=name, chunk=ref.index)
                    out.write(block)
                    at += len(block)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise BadRecordError(f"cannot read samples {start}..{end} ({exc})", file=name, chunk=ref.index) from None


def write_packets(stream, ref: ChunkRef, dest: str) -> None:
    """Remux the packets that start in ``[start_sample, end_sample)`` into ``dest`` (stream copy).
    The first chunk keeps its timestamps (a negative start is the encoder's priming,
    which players skip); later chunks start at zero."""
    import av

    meta, name = ref.meta, ref.meta["source"]
    start, end = meta["start_sample"], meta["end_sample"]
    with open_container(stream, name) as src:
        audio = src.streams.audio[0]
        scale = audio.time_base * meta["sample_rate"]
        shift, wrote = None, 0
        try:
            with av.open(dest, "w", format=meta["container"]) as out:
                ost = out.add_stream_from_template(audio)
                for packet in packets_from(src, audio, start, scale):
                    at = round(packet.pts * scale)
                    if at < start:
                        continue
                    if at >= end:
                        break
                    if shift is None:
                        shift = max(packet.pts, 0)
                    packet.pts -= shift
                    packet.dts = packet.pts
                    packet.stream = ost
                    out.mux(packet)
                    wrote += 1
        except av.error.FFmpegError as exc:
            raise BadRecordError(f"cannot copy packets {start}..{end} ({exc})", file=name, chunk=ref.index) from None
    if not wrote:
        raise PartitionError(f"chunk {ref.index}: {name} has no packets from sample {start} to {end} "
                             "(did the source change after planning?)")


def packets_from(container, audio, start: int, scale):
    """The packets of ``audio`` from about sample ``start`` on (earlier ones may come first):
    a seek, then a read from the beginning if the seek went past ``start`` (FFmpeg seeks
    an MP3 without an index by estimate)."""
    def demux():
        return (p for p in container.demux(audio) if p.pts is not None and p.size)

    if start > 0:
        container.seek(int(start / scale), stream=audio, backward=True, any_frame=True)
        packets = demux()
        first = next(packets, None)
        if first is not None and round(first.pts * scale) <= start:
            yield first
            yield from packets
            return
        container.seek(0, backward=True, any_frame=True)
    yield from demux()
