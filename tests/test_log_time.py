"""log-time: log files in time windows, multi-line entries whole; log-time ->
identity -> log-merge gives back every entry, in time order."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn
from bytenite_nb.logtime import TimeFormat, Windows, from_micros

BASE = datetime(2026, 3, 5, 13, 58, tzinfo=timezone.utc)
MESSAGE = hs.text(alphabet=hs.sampled_from(list("ab éß€😀 :-_=")), max_size=12)
TRACE = hs.lists(hs.sampled_from(["Traceback (most recent call last):", '  File "app.py", line 3',
                                  "    raise KeyError('é')", "KeyError: 'é'", "", "\tat Main.run(Main.java:7)"]),
                 max_size=4)
ENTRY = hs.tuples(hs.integers(0, 600), hs.sampled_from(["INFO", "ERROR", "DEBUG"]), MESSAGE, TRACE)


def entry_bytes(seconds: int, level: str, message: str, trace: list[str]) -> bytes:
    stamp = (BASE + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S,000")
    return "".join(f"{line}\n" for line in [f"{stamp} {level} {message}", *trace]).encode("utf-8")


def run(tmp_path, files: dict[str, bytes], partitioner: dict, assembler: dict | None = None, client=None,
        plan: bool = True):
    src = tmp_path / "logs"
    src.mkdir(parents=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
    job = bn.Job(source=str(src), partitioner="log-time", app="identity", assembler="log-merge",
                 destination=str(tmp_path / "out"), params={"partitioner": partitioner, "assembler": assembler or {}})
    kwargs = {"client": client} if client is not None else {"scheduler": "sync"}
    refs = job.plan(**kwargs) if plan else None
    result = job.run(force=True, **kwargs)
    return refs, result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=hs.lists(hs.lists(ENTRY, max_size=12), min_size=1, max_size=3), every=hs.sampled_from(["1min", "2min", "1h"]),
       in_order=hs.booleans())
def test_log_time_then_log_merge_gives_every_entry_back_in_time_order(tmp_path_factory, files, every, in_order):
    tmp_path = tmp_path_factory.mktemp("lt")
    if in_order:
        files = [sorted(entries, key=lambda e: e[0]) for entries in files]
    data = {f"app{n}.log": b"".join(entry_bytes(*e) for e in entries) for n, entries in enumerate(files)}
    if not any(data.values()):
        return
    refs, _ = run(tmp_path, data, {"preset": "python-logging", "every": every})
    # Expected: every entry, stably sorted by time (file order, then position, for equal times).
    tagged = [(e[0], entry_bytes(*e)) for entries in files for e in entries]
    expected = b"".join(b for _, b in sorted(tagged, key=lambda t: t[0]))
    assert (tmp_path / "out" / "output.log").read_bytes() == expected
    if in_order and len(files) == 1:
        assert expected == data["app0.log"]  # a sorted log comes back byte for byte
    assert sum(r.meta["entries"] for r in refs) == len(tagged)
    for ref in refs:  # each entry lies in its chunk's window
        lo, hi = (datetime.fromisoformat(t) for t in ref.meta["window"])
        stamps = [BASE + timedelta(seconds=s) for s, *_ in tagged]
        assert ref.meta["entries"] == sum(lo <= t < hi for t in stamps)
    assert [r.meta["window"][0] for r in refs] == sorted(r.meta["window"][0] for r in refs)


def check_window(chunk_path, results_dir, params, chunk_info):
    """Copy the chunk, after checking on the worker that it holds its window's entries, in order."""
    import re

    data = open(chunk_path, "rb").read()
    stamps = re.findall(rb"(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),000", data)
    lo, hi = (datetime.fromisoformat(t) for t in chunk_info["window"])
    moments = [datetime.fromisoformat(s.decode()).replace(tzinfo=timezone.utc) for s in stamps]
    assert len(moments) == chunk_info["entries"] and all(lo <= t < hi for t in moments), (chunk_info, moments)
    assert moments == sorted(moments)
    with open(os.path.join(results_dir, "info.json"), "w") as f:
        json.dump(chunk_info, f)
    with open(os.path.join(results_dir, "part.log"), "wb") as out:
        out.write(data)


def test_a_real_job_on_a_cluster_gives_each_chunk_its_window(tmp_path, client):
    a = (entry_bytes(10, "INFO", "start", []) + entry_bytes(200, "ERROR", "boom", ["Traceback:", "  x"])
         + entry_bytes(90, "WARN", "late", []) + entry_bytes(4000, "INFO", "next hour", []))
    b = entry_bytes(100, "INFO", "other", []) + entry_bytes(100, "INFO", "same time", [])
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_bytes(a)
    (tmp_path / "logs" / "b.log").write_bytes(b)
    job = bn.Job(source=str(tmp_path / "logs"), partitioner="log-time", app=check_window, assembler="log-merge",
                 destination=str(tmp_path / "out"),
                 params={"partitioner": {"preset": "python-logging", "every": "1h"}, "assembler": {"files": "*.log"}})
    job.run(client=client, force=True)
    out = (tmp_path / "out" / "output.log").read_bytes()
    assert out == (entry_bytes(10, "INFO", "start", []) + entry_bytes(90, "WARN", "late", [])
                   + entry_bytes(100, "INFO", "other", []) + entry_bytes(100, "INFO", "same time", [])
                   + entry_bytes(200, "ERROR", "boom", ["Traceback:", "  x"])
                   + entry_bytes(4000, "INFO", "next hour", []))
    refs = job.plan(client=client)
    first = refs[0].info()
    assert first["window"] == ["2026-03-05T13:00:00+00:00", "2026-03-05T14:00:00+00:00"]
    assert first["entries"] == 4 and first["files"] == ["a.log", "b.log"]
    assert first["time"] == {"preset": "python-logging"}
    second = refs[1].info()
    assert second["window"] == ["2026-03-05T14:00:00+00:00", "2026-03-05T15:00:00+00:00"]
    assert second["entries"] == 1 and second["files"] == ["a.log"]
    assert len(refs) == 3
    # The preview shows the first chunk as its app sees it: in time order, across files.
    assert refs.sample["lines"][:3] == ["2026-03-05 13:58:10,000 INFO start", "2026-03-05 13:59:30,000 WARN late",
                                        "2026-03-05 13:59:40,000 INFO other"]


def test_a_file_starting_with_a_continuation_line_fails_naming_file_and_line(tmp_path):
    data = {"ok.log": entry_bytes(0, "INFO", "x", []),
            "cut.log": b"  at the middle of a trace\n" + entry_bytes(5, "INFO", "y", [])}
    with pytest.raises(bn.JobFailed) as e:
        run(tmp_path, data, {"preset": "python-logging"}, plan=False)
    assert "cut.log: line 1" in str(e.value) and "lines before the first timestamp" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_a_bad_timestamp_fails_or_is_skipped_and_counted(tmp_path):
    bad = entry_bytes(0, "INFO", "x", []) + b"2026-13-45 10:00:00 INFO bad month\n  more\n" + entry_bytes(9, "INFO", "y", [])
    with pytest.raises(bn.JobFailed) as e:
        run(tmp_path, {"a.log": bad}, {}, plan=False)
    assert "a.log: line 2" in str(e.value) and "2026-13-45 10:00:00" in str(e.value)
    assert not (tmp_path / "out").exists()
    start = b"no timestamp here\n" + bad
    run(tmp_path / "skip", {"a.log": start}, {"on_bad": "skip"})
    out = (tmp_path / "skip" / "out" / "output.log").read_bytes()
    assert out == entry_bytes(0, "INFO", "x", []) + entry_bytes(9, "INFO", "y", [])
    skipped = json.loads((tmp_path / "skip" / "out" / "_SUCCESS").read_text())["skipped"]
    assert skipped["count"] == 2
    assert sorted(r.get("line") for r in skipped["records"]) == [1, 3]


def test_empty_files_and_a_last_line_without_newline(tmp_path):
    data = {"a.log": b"", "b.log": b"2026-01-01T00:00:05 second", "c.log": b"2026-01-01T00:00:01Z first \xc3\xa9\n"}
    refs, _ = run(tmp_path, data, {"every": "1D"})
    assert len(refs) == 1 and refs[0].meta["files"] == ["b.log", "c.log"]
    assert (tmp_path / "out" / "output.log").read_bytes() == b"2026-01-01T00:00:01Z first \xc3\xa9\n2026-01-01T00:00:05 second"
    refs, _ = run(tmp_path / "empty", {"a.log": b"", "b.log": b""}, {})
    assert refs == [] and (tmp_path / "empty" / "out" / "output.log").read_bytes() == b""


def test_syslog_apache_and_a_custom_pattern(tmp_path):
    syslog = b"Mar  5 14:02:01 host sshd[1]: accepted\nMar  5 13:59:59 host cron[2]: late\n"
    refs, _ = run(tmp_path / "s", {"sys.log": syslog}, {"preset": "syslog", "year": 2025, "every": "1h"})
    assert [r.meta["window"][0] for r in refs] == ["2025-03-05T13:00:00+00:00", "2025-03-05T14:00:00+00:00"]
    assert (tmp_path / "s" / "out" / "output.log").read_bytes() == (
        b"Mar  5 13:59:59 host cron[2]: late\nMar  5 14:02:01 host sshd[1]: accepted\n")
    apache = (b'1.2.3.4 - - [05/Mar/2026:14:02:01 +0100] "GET / HTTP/1.1" 200 5 "-" "curl"\n'
              b'1.2.3.5 - bob [05/Mar/2026:12:30:00 +0000] "GET /x HTTP/1.1" 404 0 "-" "curl"\n')
    refs, _ = run(tmp_path / "a", {"access.log": apache}, {"preset": "apache", "every": "1h"})
    assert [r.meta["window"][0] for r in refs] == ["2026-03-05T12:00:00+00:00", "2026-03-05T13:00:00+00:00"]
    custom = b"[05.03.2026 14:02] one\n[05.03.2026 16:40] two\n"
    refs, _ = run(tmp_path / "c", {"x.log": custom},
                  {"pattern": r"\[(?P<ts>[^\]]+)\]", "format": "%d.%m.%Y %H:%M", "timezone": "Europe/Paris",
                   "every": "1D"})
    assert [r.meta["window"] for r in refs] == [["2026-03-05T00:00:00+01:00", "2026-03-06T00:00:00+01:00"]]
    assert (tmp_path / "c" / "out" / "output.log").read_bytes() == custom


def test_syslog_year_from_the_file_modification_time(tmp_path):
    (tmp_path / "logs").mkdir()
    path = tmp_path / "logs" / "sys.log"
    path.write_bytes(b"Dec 31 23:59:00 h a: old year\nJan  1 00:01:00 h a: new year\n")
    stamp = datetime(2026, 1, 1, 0, 5, tzinfo=timezone.utc).timestamp()
    os.utime(path, (stamp, stamp))
    job = bn.Job(source=str(tmp_path / "logs"), partitioner="log-time", app="identity", assembler="log-merge",
                 destination=str(tmp_path / "out"), params={"partitioner": {"preset": "syslog", "every": "1D"}})
    refs = job.plan(scheduler="sync")
    assert [r.meta["window"][0][:10] for r in refs] == ["2025-12-31", "2026-01-01"]


def test_params_are_checked(tmp_path):
    for params, message in (({"every": "1 week"}, "params.partitioner.every"),
                            ({"pattern": "(no ts group)"}, "named group `ts`"),
                            ({"timezone": "Mars/Olympus"}, "unknown time zone")):
        with pytest.raises(bn.ByteniteNBError) as e:
            run(tmp_path / str(len(message)), {"a.log": b"2026-01-01T00:00:00 x\n"}, params)
        assert message in str(e.value)


def test_windows_follow_the_zone_calendar():
    paris = TimeFormat(timezone="Europe/Paris").zone
    w = Windows("1D", paris)
    start, end = w.of(TimeFormat(timezone="Europe/Paris").key(b"2026-03-29T12:00:00"))
    assert (from_micros(start, paris).isoformat(), (end - start) // 3_600_000_000) == ("2026-03-29T00:00:00+01:00", 23)
    h = Windows("7h")
    start, end = h.of(TimeFormat().key(b"2026-03-05T22:30:00"))
    assert from_micros(start).hour == 21 and from_micros(end).hour == 0  # the day's last window is cut at midnight


def test_entries_written_late_keep_one_run_per_window_and_come_out_sorted(tmp_path):
    late = [entry_bytes(10, "INFO", "a", []), entry_bytes(5, "ERROR", "late", ["  trace"]),
            entry_bytes(125, "INFO", "next minute", []), entry_bytes(50, "INFO", "late, previous minute", []),
            entry_bytes(130, "INFO", "b", [])]
    refs, _ = run(tmp_path, {"a.log": b"".join(late)}, {"preset": "python-logging", "every": "1min"})
    ends = [sum(len(e) for e in late[:n]) for n in range(len(late) + 1)]
    # 13:58:05-13:58:50 (two runs: the late entry lies apart), then 14:00:05-14:00:10 in one run.
    assert [r.meta["runs"] for r in refs] == [[[0, ends[0], ends[2], 0], [0, ends[3], ends[4], 1]],
                                              [[0, ends[2], ends[3], 1], [0, ends[4], ends[5], 1]]]
    assert (tmp_path / "out" / "output.log").read_bytes() == b"".join(late[i] for i in (1, 0, 3, 2, 4))
