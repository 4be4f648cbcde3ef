"""``audio-language``: audio in segments by spoken language, through a
detector the user supplies.

No detector is bundled (so no model is downloaded): ``detector`` names a
function ``module:function`` taking ``(samples, rate)`` - mono float32
samples of the whole file as a numpy array, and their rate - and returning
``(start, end, language)`` spans in seconds. The planning task imports and
calls it, so its module must be importable where planning runs (the
workers).
"""

from __future__ import annotations

import importlib
import math

from ..audio import chunk_metas, mono_samples, snap
from ..exceptions import BadRecordError, FieldError
from .audio import AudioPartitioner

FIELD = "params.partitioner.detector"


def load_detector(ref: str):
    """The function ``module:function`` names; anything wrong is a FieldError on ``detector``.

    >>> load_detector("math:hypot")(3, 4)
    5.0
    >>> load_detector("math")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.FieldError: params.partitioner.detector: 'math' is not of the form module:function
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise FieldError(FIELD, f"{ref!r} is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FieldError(FIELD, f"cannot import module {module_name!r} ({exc})") from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise FieldError(FIELD, f"module {module_name!r} has no {attr!r}")
    if not callable(fn):
        raise FieldError(FIELD, f"{ref} is not a function")
    return fn


def clean_spans(raw, duration: float, name: str) -> list[tuple[float, float, str]]:
    """The detector's spans checked (numbers, start < end) and clipped to the file, in time
    order; a malformed span is a BadRecordError naming the file and the span."""
    spans = []
    for i, span in enumerate(raw or []):
        try:
            start, end, language = span
            start, end, language = float(start), float(end), str(language)
        except (TypeError, ValueError):
            raise BadRecordError(f"the detector's span {i} is {span!r}, not (start, end, language)",
                                 file=name) from None
        if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
            raise BadRecordError(f"the detector's span {i} ({start}, {end}, {language!r}) does not end after it "
                                 "starts", file=name)
        start, end = max(0.0, start), min(duration, end)
        if end > start:
            spans.append((start, end, language))
    return sorted(spans)


def merge_spans(spans: list[tuple[float, float, str]], min_segment: float) -> list[tuple[float, float, str]]:
    """Spans shorter than ``min_segment`` merged into the span before (the one after, for
    the first); neighbours of one language joined (across gaps between them too).

    >>> merge_spans([(0, 5, "en"), (5, 5.5, "fr"), (5.5, 9, "en"), (9, 15, "fr")], 1)
    [(0, 9, 'en'), (9, 15, 'fr')]
    >>> merge_spans([(0, 0.4, "de"), (0.4, 3, "en")], 1)
    [(0, 3, 'en')]
    """
    out: list[list] = []
    for start, end, language in spans:
        if out and (out[-1][2] == language or end - start < min_segment):
            out[-1][1] = end
        elif out and out[-1][1] - out[-1][0] < min_segment and len(out) == 1:
            out[-1] = [out[-1][0], end, language]  # a short first span joins the one after
        else:
            out.append([start, end, language])
    return [tuple(s) for s in out]


class AudioLanguage(AudioPartitioner):
    """Audio files in segments by spoken language, through a detector you
    supply: detector names a function module:function that takes (samples,
    rate) - the whole file mixed to mono float32, at its own rate - and
    returns (start, end, language) spans in seconds; none is bundled, so no
    model is downloaded. Spans shorter than min_segment seconds join their
    neighbour, neighbours of one language are joined, and only the languages
    listed in languages are kept (all by default); stretches no span covers
    are left out. Cuts are sample-exact for PCM and FLAC, at the nearest
    packet for compressed codecs. CHUNK_INFO is that of audio-time plus
    language."""

    schema = {
        "type": "object",
        "properties": {
            "detector": {"type": "string", "pattern": r"^[\w.]+:[\w.]+$",
                         "x-message": "must name a function as module:function",
                         "description": "The language detector, module:function taking (samples, rate) and "
                                        "returning (start, end, language) spans in seconds."},
            "languages": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                          "description": "Keep only the segments of these languages (all by default)."},
            "min_segment": {"type": "number", "minimum": 0, "default": 1,
                            "description": "Spans shorter than this (seconds) join their neighbour."},
        },
        "required": ["detector"],
        "additionalProperties": False,
    }

    def check_params(self, params):
        load_detector(params["detector"])

    def segments(self, source, url, info, params):
        """One chunk per span of a language asked for; stretches in no span left out."""
        detector = load_detector(params["detector"])
        raw = detector(mono_samples(source, url, info), info.rate)
        spans = merge_spans(clean_spans(raw, info.duration, info.name), params.get("min_segment", 1))
        wanted = set(params.get("languages") or [])
        edges = sorted({snap(info, round(s * info.rate)) for start, end, _ in spans for s in (start, end)})
        kept = []
        for meta in chunk_metas(info, edges):
            middle = (meta["start"] + meta["end"]) / 2
            language = next((lang for start, end, lang in spans if start <= middle < end), None)
            if language is None or (wanted and language not in wanted):
                continue
            kept.append({**meta, "language": language, "position": len(kept)})
        return kept
