"""``audio-silence``: audio cut in the middle of its silences.

Finding silences is vectorised numpy on frame energies: the planner reads
the file block by block (PCM/FLAC at their own rate, compressed codecs
decoded at 16 kHz mono at most), sums the squares of every 5 ms frame with
one ``einsum`` per block, and finds runs of quiet frames with ``diff``/
``flatnonzero``: no Python loop per frame or per sample.
"""

from __future__ import annotations

from ..audio import frame_energy
from ..exceptions import FieldError
from .audio import AudioPartitioner

#: length of an analysis frame: a silence's edges are found to within one frame
FRAME_SECONDS = 0.005


def silences(energy, threshold_db: float, min_frames: int):
    """Runs of frames quieter than ``threshold_db`` (dBFS of their RMS; full scale = 1.0),
    at least ``min_frames`` long, that do not touch either end: ``(first, end)`` frame
    indices (end excluded), as two numpy arrays.

    >>> import numpy as np
    >>> e = np.array([1, 1, 0, 0, 0, 1, 0, 1, 0, 0], float)
    >>> [a.tolist() for a in silences(e, -40, 2)]
    [[2], [5]]
    """
    import numpy as np

    quiet = energy < 10 ** (threshold_db / 10)  # mean square vs the threshold's square: no log per frame
    edges = np.diff(np.concatenate(([0], quiet.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = (ends - starts >= min_frames) & (starts > 0) & (ends < len(energy))
    return starts[keep], ends[keep]


def choose_cuts(candidates: list[int], total: int, min_len: int, max_len: int, quietest) -> list[int]:
    """Cut points (samples) from silence middles ``candidates``: at every candidate that
    leaves a chunk of at least ``min_len``; where a chunk would grow past ``max_len``
    with no candidate, at ``quietest(lo, hi)`` (the quietest point of that stretch); a
    last chunk shorter than ``min_len`` joins the one before when that stays within
    ``max_len``.

    >>> choose_cuts([10, 12, 30], 40, 5, 100, None)
    [10, 30]
    >>> choose_cuts([], 25, 5, 10, lambda lo, hi: hi)
    [10, 20]
    >>> choose_cuts([10, 38], 40, 5, 100, None)
    [10]
    """
    cuts, last = [], 0

    def force_until(limit: int) -> None:
        nonlocal last
        while limit - last > max_len:
            at = quietest(last + min_len, last + max_len)
            cuts.append(at)
            last = at

    for c in candidates:
        force_until(c)
        if c - last >= min_len:
            cuts.append(c)
            last = c
    force_until(total)
    if cuts and total - cuts[-1] < min_len and total - (cuts[-2] if len(cuts) > 1 else 0) <= max_len:
        cuts.pop()
    return cuts


class AudioSilence(AudioPartitioner):
    """Audio files cut in the middle of their silences: stretches quieter than
    threshold_db (dBFS of the RMS of 5 ms frames, mixed to mono) lasting at
    least min_silence seconds. A cut is made at every such silence that
    leaves a chunk of at least min_chunk seconds; where no silence comes
    within max_chunk seconds, the cut goes to the quietest 5 ms of the
    allowed stretch. PCM and FLAC are cut at the exact sample, compressed
    codecs at the nearest packet and stream-copied. CHUNK_INFO is that of
    audio-time (source, position, start, end, sample_rate, start_sample,
    end_sample...)."""

    schema = {
        "type": "object",
        "properties": {
            "threshold_db": {"type": "number", "maximum": 0, "default": -40,
                             "description": "Frames quieter than this (dBFS, full scale 0) are silent."},
            "min_silence": {"type": "number", "exclusiveMinimum": 0, "default": 0.3,
                            "description": "Shortest silence (seconds) to cut in."},
            "min_chunk": {"type": "number", "minimum": 0, "default": 1,
                          "description": "Shortest chunk (seconds): silences closer than this to the last cut are "
                                         "skipped."},
            "max_chunk": {"type": "number", "exclusiveMinimum": 0, "default": 120,
                          "description": "Longest chunk (seconds): without a silence, cut at the quietest point."},
        },
        "additionalProperties": False,
    }

    def check_params(self, params):
        if params.get("min_chunk", 1) * 2 > params.get("max_chunk", 120):
            raise FieldError("params.partitioner.max_chunk", f"{params.get('max_chunk', 120)} must be at least twice "
                                                             f"min_chunk ({params.get('min_chunk', 1)})")

    def cuts(self, source, url, info, params):
        import numpy as np

        energy, frame = frame_energy(source, url, info, FRAME_SECONDS)
        min_frames = max(1, round(params.get("min_silence", 0.3) / FRAME_SECONDS))
        starts, ends = silences(energy, params.get("threshold_db", -40), min_frames)
        middles = np.rint((starts + ends) * (frame / 2)).astype(np.int64).tolist()

        def quietest(lo: int, hi: int) -> int:
            a, b = int(lo // frame), max(int(lo // frame) + 1, int(hi // frame))
            return round((a + int(np.argmin(energy[a:b])) + 0.5) * frame)

        return choose_cuts(middles, info.frames, round(params.get("min_chunk", 1) * info.rate),
                           round(params.get("max_chunk", 120) * info.rate), quietest)
