"""text-size: text in chunks cut where the text prefers, with overlap; stitch
puts it back together exactly."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn

TEXT = hs.text(alphabet=hs.sampled_from(list("ab cé€😀.!?\n\t")), min_size=0, max_size=400)


def run(tmp_path, text: str, params: dict, client=None):
    src = tmp_path / "doc.txt"
    src.write_bytes(text.encode("utf-8"))
    job = bn.Job(source=str(src), partitioner="text-size", app="identity", assembler="stitch",
                 destination=str(tmp_path / "out"), params={"partitioner": params})
    kwargs = {"client": client} if client is not None else {"scheduler": "sync"}
    refs = job.plan(**kwargs)
    if text:
        job.run(force=True, **kwargs)
    return refs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, limit=hs.integers(1, 60), overlap=hs.integers(0, 20))
def test_text_size_then_stitch_gives_the_input_back(tmp_path_factory, text, limit, overlap):
    tmp_path = tmp_path_factory.mktemp("ts")
    overlap = min(overlap, limit - 1)
    refs = run(tmp_path, text, {"max_chars": limit, "overlap": overlap})
    if not text:
        assert refs == []
        return
    data = text.encode("utf-8")
    pieces = [data[r.start:r.end].decode("utf-8") for r in refs]  # whole characters only
    assert all(len(p) <= limit for p in pieces)
    assert (tmp_path / "out" / "output.txt").read_bytes() == data
    for r, prev in zip(refs[1:], refs):
        assert r.start == prev.end - r.meta["overlap_bytes"]  # overlaps exactly what it says
        assert len(data[r.start:r.start + r.meta["overlap_bytes"]].decode()) <= overlap


def test_chunks_end_at_paragraphs_then_sentences(tmp_path, client):
    text = ("First paragraph. It has two sentences.\n\n"
            "Second one is here. And more text follows it now, a long clause without end")
    refs = run(tmp_path, text, {"max_chars": 50}, client)
    data = text.encode()
    pieces = [data[r.start:r.end].decode() for r in refs]
    assert pieces[0] == "First paragraph. It has two sentences.\n\n"  # the paragraph, not more
    assert all(p[-1].isspace() for p in pieces[:-1])  # then at spaces: no word is cut
    assert (tmp_path / "out" / "output.txt").read_text() == text


def test_overlap_must_be_less_than_the_chunk_and_text_must_be_utf8(tmp_path):
    (tmp_path / "doc.txt").write_text("abc")
    job = bn.Job(source=str(tmp_path / "doc.txt"), partitioner="text-size", app="identity", assembler="stitch",
                 destination=str(tmp_path / "o"), params={"partitioner": {"max_chars": 5, "overlap": 5}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "params.partitioner.overlap: 5 must be less than max_chars (5)" in str(e.value)
    (tmp_path / "bin.txt").write_bytes(b"abc\xff\xfedef")
    job = bn.Job(source=str(tmp_path / "bin.txt"), partitioner="text-size", app="identity", assembler="stitch",
                 destination=str(tmp_path / "o"))
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "bin.txt: byte 3: not UTF-8 text" in str(e.value)
    assert not os.path.exists(tmp_path / "o")


def test_stitch_puts_a_separator_between_chunks(tmp_path):
    (tmp_path / "doc.txt").write_text("aaaa bbbb cccc")
    job = bn.Job(source=str(tmp_path / "doc.txt"), partitioner="text-size", app="identity", assembler="stitch",
                 destination=str(tmp_path / "o"),
                 params={"partitioner": {"max_chars": 5}, "assembler": {"separator": "|", "output_name": "j.txt"}})
    job.run(scheduler="sync")
    assert (tmp_path / "o" / "j.txt").read_text() == "aaaa |bbbb |cccc"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, limit=hs.integers(1, 12), overlap=hs.integers(0, 30))
def test_max_words_then_stitch_gives_the_input_back(tmp_path_factory, text, limit, overlap):
    tmp_path = tmp_path_factory.mktemp("tw")
    refs = run(tmp_path, text, {"max_words": limit, "overlap": overlap})
    if not text:
        assert refs == []
        return
    data = text.encode("utf-8")
    pieces = [data[r.start:r.end].decode("utf-8") for r in refs]
    assert all(len(p.split()) <= limit for p in pieces)  # words: runs of non-whitespace
    assert all(p[-1].isspace() for p in pieces[:-1])  # never inside a word
    assert (tmp_path / "out" / "output.txt").read_bytes() == data
    for r, prev in zip(refs[1:], refs):
        assert prev.start < r.start and r.start == prev.end - r.meta["overlap_bytes"]
        carried = data[r.start:r.start + r.meta["overlap_bytes"]].decode()
        assert len(carried) <= overlap and len(carried.split()) < limit


def test_max_words_cuts_after_sentences(tmp_path, client):
    text = "One two three. Four five six seven eight. Nine ten eleven twelve"
    refs = run(tmp_path, text, {"max_words": 6, "overlap": 7}, client)
    data = text.encode()
    assert data[refs[0].start:refs[0].end].decode() == "One two three. "
    assert data[refs[1].start:refs[1].end].decode() == "three. Four five six seven eight. "
    assert (tmp_path / "out" / "output.txt").read_text() == text


def test_max_chars_and_max_words_together_name_the_field(tmp_path):
    (tmp_path / "doc.txt").write_text("abc")
    job = bn.Job(source=str(tmp_path / "doc.txt"), partitioner="text-size", app="identity", assembler="stitch",
                 destination=str(tmp_path / "o"), params={"partitioner": {"max_chars": 5, "max_words": 2}})
    with pytest.raises(bn.JobFailed) as e:
        job.run(scheduler="sync")
    assert "params.partitioner.max_words: give max_chars or max_words, not both" in str(e.value)
    assert not os.path.exists(tmp_path / "o")
