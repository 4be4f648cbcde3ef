"""log-merge: log results merged into one timeline, stable, with optional
removal of exact duplicates; bad results are reported."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers.log_merge import LogMerge
from bytenite_nb.bad_records import collecting, summary
from bytenite_nb.exceptions import BadRecordError, ResultFormatError


def results(tmp_path, chunks: list[dict[str, bytes]], infos: list[dict] | None = None) -> list[ChunkResult]:
    out = []
    for index, files in enumerate(chunks):
        made = []
        for name, data in files.items():
            path = tmp_path / f"r{index}-{name}"
            path.write_bytes(data)
            made.append(ResultFile(name, len(data), "file://" + str(path), str(path)))
        out.append(ChunkResult(index, tuple(made), (infos or [{}] * len(chunks))[index]))
    return out


def merge(tmp_path, chunks, params=None, infos=None) -> bytes:
    LogMerge().assemble(results(tmp_path, chunks, infos), str(tmp_path), params or {})
    return (tmp_path / (params or {}).get("output_name", "output.log")).read_bytes()


def test_equal_times_keep_chunk_order_then_file_order_then_position(tmp_path):
    chunks = [{"b.log": b"2026-01-01T00:00:02 c0b\n", "a.log": b"2026-01-01T00:00:01 c0a-1\n2026-01-01T00:00:02 c0a-2\n"},
              {"x.log": b"2026-01-01T00:00:00 c1\n  trace \xc3\xa9\n2026-01-01T00:00:02 c1-2\n"}]
    assert merge(tmp_path, chunks) == (b"2026-01-01T00:00:00 c1\n  trace \xc3\xa9\n2026-01-01T00:00:01 c0a-1\n"
                                       b"2026-01-01T00:00:02 c0a-2\n2026-01-01T00:00:02 c0b\n"
                                       b"2026-01-01T00:00:02 c1-2\n")


STAMP = hs.integers(0, 30).map(lambda s: f"2026-01-01T00:00:{s:02d}")
ENTRY = hs.tuples(STAMP, hs.sampled_from(["x", "y", "é"]), hs.lists(hs.sampled_from(["  at f()", ""]), max_size=2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=hs.lists(hs.lists(ENTRY, max_size=8), max_size=5), dedupe=hs.booleans())
def test_the_merge_is_a_stable_sort_and_dedupe_drops_exact_duplicates(tmp_path_factory, chunks, dedupe):
    tmp_path = tmp_path_factory.mktemp("lm")
    chunks = [sorted(c, key=lambda e: e[0]) for c in chunks]
    as_bytes = [[("\n".join([f"{ts} {m}", *trace]) + "\n").encode() for ts, m, trace in c] for c in chunks]
    out = merge(tmp_path, [{"part.log": b"".join(c)} for c in as_bytes], {"dedupe": dedupe})
    flat = sorted(((ts, b) for c, bs in zip(chunks, as_bytes) for (ts, *_), b in zip(c, bs)), key=lambda t: t[0])
    if dedupe:
        seen, kept = set(), []
        for _, b in flat:
            if b not in seen:
                seen.add(b)
                kept.append(b)
        assert out == b"".join(kept)
    else:
        assert out == b"".join(b for _, b in flat)


def test_a_result_out_of_order_is_an_error_naming_chunk_file_and_line(tmp_path):
    with pytest.raises(ResultFormatError) as e:
        merge(tmp_path, [{"r.log": b"2026-01-01T00:00:05 a\n  more\n2026-01-01T00:00:01 b\n"}])
    assert "chunk 0, file 'r.log': line 3" in str(e.value)


def test_bad_timestamps_fail_or_are_skipped_and_counted(tmp_path):
    data = b"orphan line\n2026-01-01T00:00:05 a\n2026-02-30T00:00:00 not a day\n  its trace\n2026-01-01T00:00:06 b\n"
    with pytest.raises(BadRecordError) as e:
        merge(tmp_path, [{"r.log": data}])
    assert "r.log: line 1" in str(e.value)
    with collecting() as found:
        out = merge(tmp_path, [{"r.log": data}], {"on_bad": "skip"})
    assert out == b"2026-01-01T00:00:05 a\n2026-01-01T00:00:06 b\n"
    skipped = summary(found)
    assert skipped["count"] == 2 and [r["line"] for r in skipped["records"]] == [1, 3]
    assert skipped["records"][1]["chunk"] == 0 and "2026-02-30T00:00:00" in skipped["records"][1]["reason"]


def test_time_params_come_from_chunk_info_and_syslog_takes_the_window_year(tmp_path):
    info = {"time": {"preset": "syslog"}, "window": ["2024-12-31T00:00:00+00:00", "2025-01-01T00:00:00+00:00"]}
    later = {"time": {"preset": "syslog"}, "window": ["2025-01-01T00:00:00+00:00", "2025-01-02T00:00:00+00:00"]}
    chunks = [{"a.log": b"Jan  1 00:00:01 h x: new\n"}, {"b.log": b"Dec 31 23:59:59 h x: old"}]
    # Chunk 0 holds the later day: its window says 2025; chunk 1's says 2024.
    out = merge(tmp_path, chunks, {"output_name": "all/merged.log"}, infos=[later, info])
    assert out == b"Dec 31 23:59:59 h x: old\nJan  1 00:00:01 h x: new\n"


def test_empty_results_and_a_missing_final_newline(tmp_path):
    chunks = [{"a.log": b""}, {"b.log": b"2026-01-01 10:00:00,000 INFO b"}, {"c.log": b"2026-01-01 09:00:00,000 INFO c"}]
    out = merge(tmp_path, chunks, {"preset": "python-logging", "files": "*.log"})
    assert out == b"2026-01-01 09:00:00,000 INFO c\n2026-01-01 10:00:00,000 INFO b"
