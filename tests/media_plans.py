"""Media plans made of ChunkRefs with the metadata the media partitioners
document (source, start, end, position; audio: sample_rate, start_sample,
end_sample; video: fps, start_frame, end_frame, exact, scene), and audio made
with numpy: for the plan preview tests, here and in the browser (a job names
``tests.media_plans:TimeWindows`` as its partitioner)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bytenite_nb.partitioners import ChunkRef, Partitioner

RATE = 16_000


def tone_wav(path: Path, seconds=(2.0, 2.0, 2.0)) -> Path:
    """Silence, a 440 Hz tone at 0.8, silence (``seconds`` of each), 16 kHz stereo 16-bit."""
    import soundfile

    silent, loud, tail = (np.zeros(int(s * RATE)) for s in seconds)
    loud = 0.8 * np.sin(2 * np.pi * 440 * np.arange(loud.size) / RATE)
    mono = np.concatenate([silent, loud, tail])
    soundfile.write(path, np.stack([mono, mono * 0.5], axis=1), RATE, subtype="PCM_16")
    return path


def audio_ref(index: int, path: Path, start: float, end: float, position: int | None = None) -> ChunkRef:
    """Chunk ``index`` of a job: ``position`` (by default ``index``) in its source ``path``."""
    return ChunkRef(index=index, url=str(path), label=f"{path.name} {start}-{end}s",
                    meta={"source": path.name, "start": start, "end": end,
                          "position": index if position is None else position, "sample_rate": RATE,
                          "start_sample": int(start * RATE), "end_sample": int(end * RATE)})


def video_ref(index: int, path: Path, start: float, end: float, fps: float = 25.0, scene=None) -> ChunkRef:
    meta = {"source": path.name, "start": start, "end": end, "position": index, "fps": fps,
            "start_frame": round(start * fps), "end_frame": round(end * fps), "exact": True}
    if scene is not None:
        meta["scene"] = scene
    return ChunkRef(index=index, url=str(path), label=f"{path.name} {start}-{end}s", meta=meta)


class TimeWindows(Partitioner):
    """Every file cut at ``cuts`` (seconds) into time windows carrying the media
    chunk metadata (audio: sample_rate and samples; video: fps and frames)."""

    schema = {"type": "object", "properties": {"cuts": {"type": "array", "items": {"type": "number"}},
                                               "end": {"type": "number"}, "video": {"type": "boolean"}},
              "additionalProperties": False}

    def plan(self, source, params):
        edges = [0.0, *params["cuts"], params["end"]]
        for f in source.files:
            path = Path(f.url.removeprefix("file://"))
            for i, (start, end) in enumerate(zip(edges, edges[1:])):
                ref = (video_ref if params.get("video") else audio_ref)(i, path, start, end)
                yield ChunkRef(url=f.url, label=ref.label, meta=ref.meta)
