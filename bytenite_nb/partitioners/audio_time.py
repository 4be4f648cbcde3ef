"""``audio-time``: audio in fixed-length segments.

Planning reads only headers (and, for compressed codecs, the packet index:
packets are demuxed, never decoded).
"""

from __future__ import annotations

from .audio import AudioPartitioner


def time_cuts(frames: int, rate: int, seconds: float) -> list[int]:
    """Sample positions every ``seconds`` seconds of a file of ``frames`` samples at ``rate``
    (rounded to the nearest sample, measured from the start so errors never add up).

    >>> time_cuts(25, 10, 1.0), time_cuts(10, 3, 1.5)
    ([10, 20], [4, 9])
    """
    out, k = [], 1
    while True:
        at = round(k * seconds * rate)
        if at >= frames:
            return out
        out.append(at)
        k += 1


class AudioTime(AudioPartitioner):
    """Audio files in segments of seconds each (the last one shorter). PCM (WAV,
    AIFF...) and FLAC are cut at the exact sample and written in the source's
    own format and sample type; compressed codecs (AAC, MP3, Opus...) are cut
    at the packet boundary nearest each cut and stream-copied, never
    re-encoded. CHUNK_INFO gives source, position (in the source), start and end (seconds),
    sample_rate, start_sample and end_sample (exact), channels and the format
    (format and subtype, or codec and container). A file that is not audio or
    is truncated fails the job naming it."""

    schema = {
        "type": "object",
        "properties": {
            "seconds": {"type": "number", "exclusiveMinimum": 0, "default": 60,
                        "description": "Length of each segment in seconds (compressed audio: to the nearest "
                                       "packet)."},
        },
        "additionalProperties": False,
    }

    def cuts(self, source, url, info, params):
        return time_cuts(info.frames, info.rate, params.get("seconds", 60))
