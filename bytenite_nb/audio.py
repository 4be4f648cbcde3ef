"""Audio shared by the ``audio-*`` partitioners and assemblers.

Two kinds of audio, two ways through it:

- *sample-exact* files (PCM WAV/AIFF/W64/RF64/CAF and FLAC) go through
  libsndfile (``soundfile``): a chunk is a run of whole samples,
  ``[start_sample, end_sample)``, written in the source's own format and
  sample type, so concatenating the chunks gives the samples back exactly;
- *compressed* files (AAC, MP3, Opus, Vorbis... in any container FFmpeg
  reads) go through PyAV: cuts fall on packet (codec frame) boundaries and a
  chunk is its packets, remuxed by stream copy - never re-encoded.

Planning needs samples only to find where to cut (silences, languages):
:func:`frame_energy` and :func:`mono_samples` decode for that, block by
block. Nothing here is imported by ``import bytenite_nb``.
"""

from __future__ import annotations

import math
import re
from contextlib import nullcontext
from dataclasses import dataclass, field

from .exceptions import BadRecordError, ResultFormatError
from .media import open_container
from .timed_text import is_seconds

#: libsndfile formats whose samples are stored as they are (or losslessly, FLAC)
EXACT_FORMATS = frozenset({"WAV", "WAVEX", "W64", "RF64", "AIFF", "CAF", "FLAC"})
#: the sample types copied exactly, and how they are read so that writing them back is exact
READ_DTYPE = {"PCM_S8": "int16", "PCM_U8": "int16", "PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32",
              "FLOAT": "float32", "DOUBLE": "float64", "ULAW": "int16", "ALAW": "int16"}
#: FFmpeg container names (as a demuxer reports them) -> the muxer writing the same container
MUXER = {"mov": "mp4", "aac": "adts", "matroska": "matroska", "webm": "webm", "ogg": "ogg", "mp3": "mp3"}
#: samples read or decoded at a time
BLOCK = 2**18
# libsndfile's log of a WAV whose data chunk claims more bytes than the file holds
_SHORT_DATA = re.compile(r"^data : (\d+) \(should be (\d+)\)", re.M)


@dataclass
class AudioInfo:
    """What planning knows of one audio file.

    ``frames`` counts samples per channel at ``rate``. ``exact`` files have
    ``format``/``subtype`` (libsndfile's names); compressed ones have ``muxer``
    (the FFmpeg format to remux into), ``codec`` and ``boundaries``: the sample
    positions where packets start, then the end of the last packet.
    """

    name: str
    rate: int
    channels: int
    frames: int
    exact: bool
    format: str = ""
    subtype: str = ""
    codec: str = ""
    muxer: str = ""
    boundaries: list[int] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def meta(self) -> dict:
        """The file-level part of each chunk's CHUNK_INFO."""
        out = {"source": self.name, "sample_rate": self.rate, "channels": self.channels, "exact": self.exact}
        if self.exact:
            out.update(format=self.format, subtype=self.subtype)
        else:
            out.update(codec=self.codec, container=self.muxer)
        return out


def soundfile_info(stream, name: str):
    """libsndfile's view of ``stream``, or None when libsndfile cannot read it as
    sample-exact audio (then PyAV is tried)."""
    import soundfile as sf

    try:
        info = sf.info(stream)
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError):
        return None
    finally:
        if hasattr(stream, "seek"):
            stream.seek(0)
    if info.format not in EXACT_FORMATS or info.subtype not in READ_DTYPE:
        return None  # a lossy or ADPCM sample type: PyAV reads it by packets
    short = _SHORT_DATA.search(info.extra_info or "")
    if short and int(short.group(2)) < int(short.group(1)) < 0xFFFFFF00:  # 0xFFFFFFFF: a streamed WAV
        raise BadRecordError(f"truncated: its header declares {short.group(1)} bytes of samples, the file holds "
                             f"{short.group(2)}", file=name)
    return info


def probe(source, url: str, name: str) -> AudioInfo:
    """Probe one audio file of ``source`` (a :class:`~bytenite_nb.partitioners.base.Source`):
    sample-exact through libsndfile, else through PyAV, reading packets but not decoding them.
    A file that is not audio, has no audio stream or is truncated is a
    :class:`~bytenite_nb.exceptions.BadRecordError` naming it.

    >>> import os, tempfile, numpy, soundfile
    >>> from bytenite_nb.partitioners.base import Source
    >>> from bytenite_nb.storage import parse_location
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> soundfile.write(path, numpy.zeros(800, "int16"), 8000)
    >>> info = probe(Source(parse_location(path, field="dataSource"), []), "file://" + path, "a.wav")
    >>> info.rate, info.frames, info.exact, info.subtype
    (8000, 800, True, 'PCM_16')
    """
    with source.open(url, block_size=2**20) as stream:
        sfi = soundfile_info(stream, name)
        if sfi is not None:
            if sfi.frames == 0:
                raise BadRecordError("holds no samples", file=name)
            check_exact_end(stream, name, sfi.frames)
            return AudioInfo(name=name, rate=sfi.samplerate, channels=sfi.channels, frames=sfi.frames, exact=True,
                             format=sfi.format, subtype=sfi.subtype)
        return probe_packets(stream, name)


def check_exact_end(stream, name: str, frames: int) -> None:
    """Decode the last sample of a sample-exact file: a FLAC cut short fails here,
    while planning, instead of in the chunk that holds its end."""
    import soundfile as sf

    try:
        with sf.SoundFile(stream) as f:
            f.seek(frames - 1)
            got = len(f.read(1))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise BadRecordError(f"truncated or damaged: cannot decode its last sample ({exc})", file=name) from None
    finally:
        stream.seek(0)
    if got != 1:
        raise BadRecordError(f"truncated: it declares {frames} samples and ends before the last", file=name)


def muxer_of(container) -> str:
    """The FFmpeg muxer that writes the container a demuxer read (``mov,mp4,...`` -> ``mp4``)."""
    import av

    for part in container.format.name.split(","):
        candidate = MUXER.get(part, part)
        try:
            if av.format.ContainerFormat(candidate, "w"):
                return candidate
        except (ValueError, av.error.FFmpegError):
            continue
    return "matroska"  # holds any codec


def probe_packets(stream, name: str) -> AudioInfo:
    """Probe a compressed file through PyAV: its first audio stream's packets, not decoded."""
    import av

    with open_container(stream, name) as container:
        if not container.streams.audio:
            raise BadRecordError("no audio stream in it", file=name)
        audio = container.streams.audio[0]
        rate = audio.codec_context.sample_rate or audio.rate
        if not rate:
            raise BadRecordError("its audio stream has no sample rate", file=name)
        scale = audio.time_base * rate
        starts, end = [], None
        try:
            for packet in container.demux(audio):
                if packet.pts is None or packet.size == 0:
                    continue
                start = round(packet.pts * scale)
                starts.append(start)
                end = start + round((packet.duration or 0) * scale)
        except av.error.FFmpegError as exc:
            raise BadRecordError(f"damaged after {len(starts)} packets ({exc})", file=name) from None
        if not starts:
            raise BadRecordError("its audio stream has no packets", file=name)
        boundaries = starts + [max(end, starts[-1])]
        return AudioInfo(name=name, rate=rate, channels=audio.codec_context.channels, frames=boundaries[-1],
                         exact=False, codec=audio.codec_context.name, muxer=muxer_of(container),
                         boundaries=boundaries)


def snap(info: AudioInfo, sample: int) -> int:
    """The cut nearest ``sample`` that ``info`` allows: any sample of an exact file, the
    nearest packet boundary of a compressed one.

    >>> snap(AudioInfo("a.m4a", 100, 1, 300, False, boundaries=[0, 100, 200, 300]), 140)
    100
    """
    if info.exact:
        return max(0, min(info.frames, sample))
    import bisect

    b = info.boundaries
    i = bisect.bisect_left(b, sample)
    if i == 0:
        return b[0]
    if i == len(b):
        return b[-1]
    return b[i] if b[i] - sample < sample - b[i - 1] else b[i - 1]


def chunk_metas(info: AudioInfo, cuts: list[int]) -> list[dict]:
    """CHUNK_INFO of the chunks between ``cuts`` (sample positions, snapped, increasing):
    ``source``, ``position`` (in the source), ``start``/``end`` (seconds), ``sample_rate``,
    ``start_sample``/``end_sample`` and what the file is.

    >>> info = AudioInfo("a.wav", 10, 1, 25, True, "WAV", "PCM_16")
    >>> [(m["start_sample"], m["end_sample"], m["end"]) for m in chunk_metas(info, [10, 20])]
    [(0, 10, 1.0), (10, 20, 2.0), (20, 25, 2.5)]
    """
    first = 0 if info.exact else min(0, info.boundaries[0])
    edges = [first] + [c for c in cuts if first < c < info.frames] + [info.frames]
    edges = sorted(set(edges))
    out = []
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        meta = info.meta()
        meta.update(position=i, start=max(a, 0) / info.rate, end=b / info.rate, start_sample=a, end_sample=b)
        out.append(meta)
    return out


def chunk_label(meta: dict) -> str:
    """How a plan shows an audio chunk: its source and time range.

    >>> chunk_label({"source": "talks/a.wav", "start": 1.5, "end": 3.25})
    'talks/a.wav 1.500-3.250s'
    """
    return f"{meta['source']} {meta['start']:.3f}-{meta['end']:.3f}s"


def chunk_size(info: AudioInfo, file_size: int | None, meta: dict) -> int | None:
    """About how many bytes a chunk holds: its share of the file (None when unknown).

    >>> info = AudioInfo("a.wav", 10, 1, 40, True, "WAV", "PCM_16")
    >>> chunk_size(info, 1000, {"start_sample": 10, "end_sample": 20}), chunk_size(info, None, {})
    (250, None)
    """
    if not file_size or not info.frames:
        return None
    return math.ceil(file_size * (meta["end_sample"] - meta["start_sample"]) / info.frames)


# -- samples for planning -----------------------------------------------------------------


def decoded_blocks(source, url: str, info: AudioInfo, rate: int | None = None):
    """Mono float32 blocks of the whole file, in order, at ``rate`` (the file's own by
    default; compressed files are resampled by FFmpeg, exact ones only at their rate).
    A file that stops decoding early is a :class:`BadRecordError` naming it."""
    import numpy as np

    if info.exact:
        import soundfile as sf
        from fsspec.core import url_to_fs

        got = 0
        # a local file goes to libsndfile by path: its own reads beat Python file objects severalfold
        local = url_to_fs(url)[1] if source.location.is_local else None
        with (nullcontext(local) if local else source.open(url, block_size=2**22)) as stream:
            try:
                with sf.SoundFile(stream) as f:
                    # read as stored (int16 for 16-bit PCM), then scaled: cheaper than libsndfile's float conversion
                    dtype = READ_DTYPE.get(info.subtype, "float32")
                    scale = {"int16": 2.0**-15, "int32": 2.0**-31}.get(dtype, 1.0)
                    for block in f.blocks(blocksize=BLOCK, dtype=dtype, always_2d=True):
                        got += len(block)
                        mono = block[:, 0].astype(np.float32) if block.shape[1] == 1 else \
                            block.mean(axis=1, dtype=np.float32)
                        if scale != 1.0:
                            mono *= np.float32(scale)
                        yield mono
            except (RuntimeError, sf.LibsndfileError) as exc:
                raise BadRecordError(f"damaged at sample {got} ({exc})", file=info.name) from None
        if got != info.frames:
            raise BadRecordError(f"ends at sample {got}, its header declares {info.frames}", file=info.name)
        return
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate or info.rate)
    with source.open(url, block_size=2**22) as stream, open_container(stream, info.name) as container:
        audio = container.streams.audio[0]
        try:
            for frame in container.decode(audio):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except av.error.FFmpegError as exc:
            raise BadRecordError(f"cannot decode it ({exc})", file=info.name) from None


def mono_samples(source, url: str, info: AudioInfo):
    """All samples of the file mixed to mono float32 at its own rate (a numpy array).

    >>> import os, tempfile, numpy, soundfile
    >>> from bytenite_nb.partitioners.base import Source
    >>> from bytenite_nb.storage import parse_location
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> soundfile.write(path, numpy.full((4, 2), 0.5), 8000)
    >>> src = Source(parse_location(path, field="dataSource"), [])
    >>> mono_samples(src, "file://" + path, probe(src, "file://" + path, "a.wav")).tolist()
    [0.5, 0.5, 0.5, 0.5]
    """
    import numpy as np

    blocks = list(decoded_blocks(source, url, info))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def frame_energy(source, url: str, info: AudioInfo, frame_seconds: float, analysis_rate: int = 16000):
    """The mean square of every ``frame_seconds`` frame of the file (mono), as a numpy
    array, and the frame's length in the file's samples. Exact files are read at their own
    rate; compressed ones decoded at ``analysis_rate`` at most (enough to find silences).
    Vectorised: one reshape and one sum per block.

    >>> import os, tempfile, numpy, soundfile
    >>> from bytenite_nb.partitioners.base import Source
    >>> from bytenite_nb.storage import parse_location
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> soundfile.write(path, numpy.r_[numpy.full(4, 0.5), numpy.zeros(4), [0.5]], 8, subtype="FLOAT")
    >>> src = Source(parse_location(path, field="dataSource"), [])
    >>> energy, frame = frame_energy(src, "file://" + path, probe(src, "file://" + path, "a.wav"), 0.5)
    >>> energy.tolist(), frame  # frames of 4 samples; the last, shorter one too
    ([0.25, 0.0, 0.25], 4.0)
    """
    import numpy as np

    rate = info.rate if info.exact else min(info.rate, analysis_rate)
    frame = max(1, round(rate * frame_seconds))
    sums, carry = [], np.zeros(0, np.float32)
    for block in decoded_blocks(source, url, info, rate):
        if carry.size:
            block = np.concatenate([carry, block])
        whole = len(block) - len(block) % frame
        if whole:
            framed = block[:whole].reshape(-1, frame)
            sums.append(np.einsum("ij,ij->i", framed, framed) / frame)  # float32: plenty for a loudness
        carry = block[whole:]
    if carry.size:
        sums.append(np.array([float(np.dot(carry, carry)) / carry.size]))
    energy = np.concatenate(sums) if sums else np.zeros(0)
    return energy, frame * info.rate / rate


# -- chunk results ---------------------------------------------------------------------------


def group_by_source(results, component: str) -> dict[str, list]:
    """Chunk results by the source they came from (CHUNK_INFO ``source``), in chunk order;
    a chunk without a time range fails naming it.

    >>> from bytenite_nb.assemblers import ChunkResult
    >>> chunks = [ChunkResult(i, (), {"source": s, "start": 0.0}) for i, s in enumerate(["a.wav", "b.wav", "a.wav"])]
    >>> {k: [c.index for c in v] for k, v in group_by_source(chunks, "audio-concat").items()}
    {'a.wav': [0, 2], 'b.wav': [1]}
    >>> group_by_source([ChunkResult(7, (), {"source": "a.wav", "start": True})], "audio-concat")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.ResultFormatError: chunk 7: no source and start time in its CHUNK_INFO (audio-concat ...)
    """
    groups: dict[str, list] = {}
    for chunk in results:
        if not is_seconds(chunk.info.get("start")) or "source" not in chunk.info:
            raise ResultFormatError(f"chunk {chunk.index}: no source and start time in its CHUNK_INFO ({component} "
                                    "assembles the chunks of audio-time, audio-silence or audio-language)")
        groups.setdefault(chunk.info["source"], []).append(chunk)
    return groups


def output_name_for(template: str, source_name: str, count: int, component: str) -> str:
    """``template`` with ``{name}``, ``{stem}``, ``{ext}`` and ``{dir}`` of the source filled in
    (:func:`~bytenite_nb.assemblers.base.source_output_name`).

    >>> output_name_for("{stem}.vtt", "talks/a.wav", 1, "audio-index")
    'a.vtt'
    """
    from .assemblers.base import one_name_per_source, source_output_name

    one_name_per_source(template, count, component)
    return source_output_name(template, source_name, "audio")
