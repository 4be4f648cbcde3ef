"""The progress display: its state from real job events, the live widget on a real
cluster (counts, failed chunks with stderr, Cancel, previews), and plain lines
outside an interactive kernel."""

from __future__ import annotations

import io
import re
import sys
import textwrap

import pytest

import bytenite_nb as bn
from bytenite_nb import store as st
from bytenite_nb.widgets import display as display_module
from bytenite_nb.widgets.progress import JobProgress, ProgressState, follow_text, split_error


def command_app(folder, body: str) -> list[str]:
    path = folder / "app.py"
    path.write_text(textwrap.dedent("""\
        import os, sys, time
        data = open(os.path.join(os.environ["TASK_DIR"], "data.bin"), "rb").read()
        n = int(os.environ["CHUNK_NUMBER"])
        out = os.environ["TASK_RESULTS_DIR"]
        """) + textwrap.dedent(body))
    return [sys.executable, str(path)]


def csv_job(tmp_path, app, rows=40, per_chunk=10, **kw):
    source = tmp_path / "in.csv"
    source.write_text("".join(f"{i},{i * i}\n" for i in range(rows)))
    return bn.Job(source=str(source), partitioner="split-lines", app=app, assembler="concat",
                  destination=str(tmp_path / "out"),
                  params={"partitioner": {"lines_per_chunk": per_chunk},
                          "assembler": {"output_name": "squares.csv"}}, **kw)


def test_state_follows_real_job_events(client, tmp_path):
    events = []
    job = csv_job(tmp_path, "identity")
    handle = job.submit(client=client, progress=events.append)
    result = handle.result()
    state = ProgressState(handle.job_id, handle.name, started=0.0)
    for i, event in enumerate(events):
        state.apply(event, now=float(i + 1))
    p = handle.progress
    assert (state.total, state.done, state.failed, state.retrying, state.cancelled) == (
        p.total, p.done, p.failed, p.retrying, p.cancelled) == (4, 4, 0, 0, 0)
    assert state.state == st.COMPLETE and state.final and state.stage == "done"
    assert state.result_bytes == sum(o["size"] for o in result.outputs)
    # every state the job went through was seen, in order
    states = [e["state"] for e in events if e["type"] == "state"]
    assert states == [st.PARTITIONING, st.RUNNING, st.ASSEMBLING, st.COMPLETE]


def test_eta_and_throughput_from_event_times():
    state = ProgressState("j", "n", started=100.0)
    state.apply({"type": "state", "state": "PARTITIONING"}, now=100.0)
    state.apply({"type": "planned", "chunks": 10}, now=101.0)
    state.apply({"type": "state", "state": "RUNNING"}, now=102.0)
    assert state.eta(now=103.0) is None  # nothing finished yet: no estimate
    for i in range(4):
        state.apply({"type": "chunk", "index": i, "state": "DONE", "bytes": 10}, now=104.0)
    assert state.throughput(now=106.0) == pytest.approx(1.0)  # 4 chunks in 4 s
    assert state.eta(now=106.0) == pytest.approx(6.0)  # 6 to go at 1 chunk/s
    assert state.elapsed(now=106.0) == pytest.approx(6.0)
    assert "ETA 6.0s" in state.line(now=106.0) and "1.00 chunks/s" in state.line(now=106.0)
    # a retry counts while it waits, and not once the chunk is done
    state.apply({"type": "chunk", "index": 5, "state": "RETRYING", "attempt": 1, "error": "attempt 1: boom"})
    assert state.retrying == 1 and state.retries()[0]["index"] == 5
    state.apply({"type": "chunk", "index": 5, "state": "DONE"})
    assert state.retrying == 0 and state.done == 5
    state.apply({"type": "chunk", "index": 5, "state": "RETRYING"})  # late worker event: ignored
    assert state.retrying == 0
    state.apply({"type": "state", "state": "COMPLETE"}, now=110.0)
    assert state.eta(now=200.0) == 0.0 and state.elapsed(now=200.0) == pytest.approx(10.0)


def test_reused_chunks_do_not_count_towards_throughput():
    state = ProgressState("j", "n", started=0.0)
    state.apply({"type": "planned", "chunks": 10}, now=0.0)
    for i in range(6):  # a resumed run: these were committed by the run before
        state.apply({"type": "chunk", "index": i, "state": "DONE", "resumed": True}, now=1.0)
    state.apply({"type": "state", "state": "RUNNING"}, now=1.0)
    state.apply({"type": "chunk", "index": 6, "state": "DONE"}, now=3.0)
    assert state.resumed == 6 and state.done == 7
    assert state.throughput(now=3.0) == pytest.approx(0.5)  # 1 chunk in 2 s, not 7
    assert state.eta(now=3.0) == pytest.approx(6.0)
    assert state.throughput(now=1.5) is None  # under a second: no rate yet


def test_split_error_separates_the_stderr_tail():
    message, tail = split_error("chunk 2 (x) failed after 3 attempt(s): command exited with status 3\n"
                                "--- stderr (tail) ---\nTraceback...\nValueError: bad row")
    assert message.endswith("exited with status 3")
    assert tail == "Traceback...\nValueError: bad row"


def test_widget_shows_failed_chunks_with_attempts_and_stderr(client, tmp_path):
    app = command_app(tmp_path, """\
        if n == 2:
            sys.stderr.write("bad row in chunk two\\n")
            sys.exit(3)
        open(os.path.join(out, "r.csv"), "wb").write(data)
        """)
    job = csv_job(tmp_path, {"command": app}, config={"maxTaskRetries": 1, "retryBackoff": 0})
    handle = job.submit(client=client)
    widget = JobProgress(handle)
    with pytest.raises(bn.JobFailed):
        handle.result()
    widget.join(60)
    assert widget.state.state == st.FAILED
    assert (widget.bar.value, widget.bar.max, widget.bar.bar_style) == (4, 4, "danger")
    assert "<b>3</b>/4 done" in widget.counts.value and "1 failed" in widget.counts.value
    failures = widget.state.failures()
    assert [f["index"] for f in failures] == [2]
    assert failures[0]["attempts"] == 2
    assert "bad row in chunk two" in failures[0]["stderr"]
    assert "chunk 2 failed, 2 attempt(s)" in widget.failures.value
    assert "bad row in chunk two" in widget.failures.value
    assert "nothing was written" in widget.error.value
    assert widget.cancel_button.disabled and widget.result_box.children == ()
    # Which cluster it ran on, with the dashboard.
    assert widget.dashboard.value.startswith(f"Cluster: dask <b>{handle.cluster['scheduler']}</b>")
    assert f'<a href="{handle.dashboard_link}"' in widget.dashboard.value
    # The chunk grid: a letter per chunk, the failed one red, each chunk's worker.
    assert widget.grid.states[2] == "F" and len(widget.grid.states) == handle.progress.total
    assert widget.grid.states.count("D") == 3  # the chunks that ended DONE too, not shown as pending
    assert sum(1 for w in widget.grid.workers if w >= 0) == 4  # and who ran each
    assert widget.grid.worker_names and widget.grid.workers[2] >= 0
    widget.grid.selected = 2
    assert widget.grid.detail["state"] == "FAILED" and widget.grid.detail["attempts"] == 2
    assert "bad row in chunk two" in widget.grid.detail["error"]
    assert widget.grid.detail["worker"] == widget.grid.worker_names[widget.grid.workers[2]]
    assert "FAILED" in widget._repr_mimebundle_()["text/plain"]


def test_widget_shows_the_output_when_complete(client, tmp_path):
    handle = csv_job(tmp_path, "identity").submit(client=client)
    widget = JobProgress(handle)
    handle.result()
    widget.join(60)
    assert widget.bar.bar_style == "success" and widget.bar.value == 4
    assert "<b>done</b>" in widget.stages.value and "running &#10003;" in widget.stages.value
    summary, tabs = widget.result_box.children[0].children
    assert "COMPLETE" in summary.value and "squares.csv" in summary.value
    assert tabs.titles == ("squares.csv",)
    table = re.sub(r"<(t[hd])[^>]*>", r"<\1>", tabs.children[0].value)
    assert "<td>39</td><td>1521</td>" not in table  # only the first rows
    assert "<td>0</td><td>0</td>" in table and "<td>3</td><td>9</td>" in table


def test_cancel_button_stops_the_job(client, tmp_path):
    started = tmp_path / "started"
    app = command_app(tmp_path, f"""\
        open({str(started)!r}, "w").close()
        time.sleep(600)
        """)
    handle = csv_job(tmp_path, {"command": app}).submit(client=client)
    widget = JobProgress(handle)
    # cancel once an app is really running (pytest-timeout ends a run where none ever starts)
    import time as _time
    while not started.exists():
        _time.sleep(0.1)
    widget.cancel_button.click()
    assert widget.cancel_button.disabled
    with pytest.raises(bn.JobCancelled):
        handle.result()
    widget.join(60)
    assert widget.state.state == st.CANCELLED
    assert widget.bar.bar_style == "warning"
    assert not (tmp_path / "out" / "squares.csv").exists()


def test_plain_lines_outside_an_interactive_kernel(client, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BYTENITE_NB_DISPLAY", raising=False)
    assert display_module.interactive_kernel() is False
    app = command_app(tmp_path, """\
        if n == 1:
            sys.stderr.write("chunk one is broken\\n")
            sys.exit(1)
        open(os.path.join(out, "r.csv"), "wb").write(data)
        """)
    handle = csv_job(tmp_path, {"command": app}, config={"maxTaskRetries": 0}).submit(client=client)
    handle._ipython_display_()  # what a notebook does with `handle` as a cell's last line
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(line.startswith(f"[{handle.job_id}] ") for line in lines if not line.startswith("    "))
    assert any(f"[{handle.job_id}] FAILED" in line and "3/4 done, 1 failed" in line for line in lines)
    assert f"[{handle.job_id}] chunk 1 FAILED after 1 attempt(s)" in out
    assert "chunk one is broken" in out


def test_result_display_text_and_widget(client, tmp_path, capsys, monkeypatch):
    result = csv_job(tmp_path, "identity").run(client=client)
    monkeypatch.setenv("BYTENITE_NB_DISPLAY", "text")
    result._ipython_display_()
    out = capsys.readouterr().out
    assert f"{result.job_id} COMPLETE: 4 chunk(s)" in out
    assert "--- squares.csv ---" in out and "\n3  9\n" in out
    shown = []
    monkeypatch.setenv("BYTENITE_NB_DISPLAY", "widget")
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    result._ipython_display_()
    assert "squares.csv" in shown[0].children[0].value
    handle = csv_job(tmp_path, "identity", id="shown-as-widget").submit(client=client)
    handle._ipython_display_()
    assert isinstance(shown[1], JobProgress)
    handle.result()
    shown[1].join(60)
    assert shown[1].state.state == st.COMPLETE


def test_follow_text_returns_the_final_state(client, tmp_path):
    handle = csv_job(tmp_path, "identity").submit(client=client)
    stream = io.StringIO()
    state = follow_text(handle, stream)
    assert state.state == st.COMPLETE and state.done == 4
    assert stream.getvalue().rstrip().splitlines()[-1].startswith(f"[{handle.job_id}] COMPLETE")


def fail_on_multiples_of_40(chunk_path, results_dir, params):
    """Each chunk is one line, a number: the multiples of 40 fail."""
    number = int(open(chunk_path, "rb").read())
    if number % 40 == 0:
        raise ValueError(f"{number} is a multiple of 40")
    return b""


def test_the_widget_keeps_details_of_the_chunks_it_shows_only(tmp_path):
    """A job of 2,000 chunks: the widget counts every one, keeps the details of
    its failed chunks (what it shows) and of no other, and its model holds
    MAX_FAILURES_SHOWN rows of them at most."""
    from bytenite_nb.widgets.progress import MAX_FAILURES_SHOWN

    source = tmp_path / "numbers.txt"
    source.write_text("".join(f"{i}\n" for i in range(2000)))
    job = bn.Job(source=str(source), partitioner="split-lines", app=fail_on_multiples_of_40, assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": {"lines_per_chunk": 1}},
                 config={"maxTaskRetries": 0})
    handle = job.submit(scheduler="sync")
    progress = JobProgress(handle)
    progress.join(300)
    failed = list(range(0, 2000, 40))
    assert handle.status == st.FAILED and sorted(handle.chunks_in("FAILED")) == failed
    assert handle.chunks_in("RUNNING", "RETRYING") == {}
    state = progress.state
    assert (state.done, state.failed, state.total) == (1950, 50, 2000)
    assert sorted(state.chunks) == failed and all(c["state"] == "FAILED" for c in state.chunks.values())
    assert "multiple of 40" in state.failures()[0]["message"]
    assert progress.failures.value.count("<details>") == MAX_FAILURES_SHOWN
    assert f"and {50 - MAX_FAILURES_SHOWN} more failed chunk(s)" in progress.failures.value
    assert not (tmp_path / "out").exists()
