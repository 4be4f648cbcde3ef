"""sections: documents cut at Markdown headings, separator lines or page
breaks; concat puts them back byte for byte."""

from __future__ import annotations

import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn
from bytenite_nb.partitioners.sections import markdown_lines, markdown_sections, read_lines

WORDS = hs.text(alphabet=hs.sampled_from(list("abcXYZ é€😀中.!?,")), min_size=1, max_size=12).map(
    lambda s: "w" + s)  # never starts like a heading, a fence, a list item or an underline
FENCED = hs.sampled_from(["# not a heading", "## nor this", "---", "===", "plain", "~~", "``", "", "    # indented"])


@hs.composite
def markdown(draw):
    """A Markdown document as blocks separated by blank lines, with the byte
    offset and level of every heading in it."""
    newline = draw(hs.sampled_from(["\n", "\r\n"]))
    blocks = draw(hs.lists(hs.one_of(
        hs.tuples(hs.just("atx"), hs.integers(1, 6), WORDS),
        hs.tuples(hs.just("setext"), hs.integers(1, 2), WORDS),
        hs.tuples(hs.just("fence"), hs.sampled_from(["```", "~~~~"]), hs.lists(FENCED, max_size=4)),
        hs.tuples(hs.just("para"), hs.just(0), hs.lists(WORDS, min_size=1, max_size=4)),
    ), max_size=12))
    text, headings = "", []
    for kind, arg, body in blocks:
        if kind == "atx":
            headings.append((len(text.encode()), arg))
            lines = ["#" * arg + " " + body]
        elif kind == "setext":
            headings.append((len(text.encode()), arg))
            lines = [body, ("=" if arg == 1 else "-") * 3]
        elif kind == "fence":
            lines = [arg + "py", *body, arg]
        else:
            lines = body
        text += newline.join(lines) + newline * draw(hs.integers(2, 3))  # a blank line or two between blocks
    if draw(hs.booleans()):
        text = text.rstrip("\r\n")  # no line end at the very end
    return text, headings


def run(tmp_path, data: bytes, params: dict, client=None, name="doc.md"):
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(data)
    job = bn.Job(source=str(src / name), partitioner="sections", app="identity", assembler="concat",
                 destination=str(tmp_path / "out"), params={"partitioner": params,
                                                            "assembler": {"output_name": "out.md"}})
    kwargs = {"client": client} if client is not None else {"scheduler": "sync"}
    refs = job.plan(**kwargs)
    if data:
        job.run(force=True, **kwargs)
        assert (tmp_path / "out" / "out.md").read_bytes() == data
    return refs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=markdown(), level=hs.integers(1, 6), max_size=hs.one_of(hs.none(), hs.integers(3, 40)))
def test_sections_then_concat_give_the_input_back(tmp_path_factory, doc, level, max_size):
    tmp_path = tmp_path_factory.mktemp("sec")
    text, headings = doc
    data = text.encode("utf-8")
    params = {"level": level} if max_size is None else {"level": level, "max_size": max_size}
    refs = run(tmp_path, data, params)
    if not data:
        assert refs == []
        return
    assert [r.start for r in refs] == sorted({r.start for r in refs})  # in order, nothing twice
    assert refs[0].start == 0 and refs[-1].end == len(data)
    assert all(a.end == b.start for a, b in zip(refs, refs[1:]))  # nothing lost between chunks
    wanted = sorted({0} | {at for at, lvl in headings if lvl <= level})
    assert [r.start for r in refs if r.meta["part"] == 1] == wanted
    for r in refs:
        piece = data[r.start:r.end].decode("utf-8")  # whole characters only
        if max_size is not None:
            assert len(piece) <= max_size
        assert r.meta["offset"] <= r.start and 1 <= r.meta["part"] <= r.meta["parts"]
        if r.meta["part"] == 1:
            if r.start == 0 and (0, r.meta["level"]) not in headings:
                assert r.meta["level"] == 0 and r.meta["title"] == "" and r.meta["path"] == []
            else:
                assert 1 <= r.meta["level"] <= level and piece.startswith(("#", "w"))
                assert r.meta["title"].startswith("w")


def test_a_heading_path_names_the_enclosing_headings(tmp_path, client):
    text = ("Intro text.\n\n# Guide\n\nWelcome.\n\n## Install\n\n```sh\n# a comment, not a heading\npip install x\n"
            "```\n\n### Details\n\nstay inside\n\nUsage\n-----\n\nrun it\n\n# Reference\n\n## API\n")
    refs = run(tmp_path, text.encode(), {"level": 2}, client)
    got = [(r.meta["title"], r.meta["level"], r.meta["path"]) for r in refs]
    assert got == [("", 0, []), ("Guide", 1, []), ("Install", 2, ["Guide"]), ("Usage", 2, ["Guide"]),
                   ("Reference", 1, []), ("API", 2, ["Reference"])]
    data = text.encode()
    assert data[refs[2].start:refs[2].end].decode().startswith("## Install") and "### Details" in \
        data[refs[2].start:refs[2].end].decode()
    assert [r.meta["section"] for r in refs] == list(range(6))
    assert refs[3].meta["offset"] == data.index(b"Usage\n")


def test_the_app_sees_the_section_in_chunk_info(tmp_path):
    def keep_info(chunk_path, results_dir, params, chunk_info):
        with open(os.path.join(results_dir, "info.json"), "w") as f:
            json.dump(chunk_info, f)

    (tmp_path / "d.md").write_text("# One\n\nfirst\n\n# Two\n\n" + "word " * 40 + "\n")
    job = bn.Job(source=str(tmp_path / "d.md"), partitioner="sections", app=keep_info, assembler="passthrough",
                 destination=str(tmp_path / "o"), params={"partitioner": {"level": 1, "max_size": 100}})
    job.run(scheduler="sync")
    infos = [json.loads((tmp_path / "o" / d / "info.json").read_text())
             for d in sorted(os.listdir(tmp_path / "o")) if d.startswith("chunk_")]
    assert [(i["title"], i["part"], i["parts"]) for i in infos] == [("One", 1, 1), ("Two", 1, 3), ("Two", 2, 3),
                                                                      ("Two", 3, 3)]
    assert infos[2]["offset"] == infos[1]["start"] < infos[2]["start"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=hs.lists(hs.text(alphabet=hs.sampled_from(list("ab é\n-=#")), max_size=30), max_size=6),
       newline=hs.sampled_from(["\n", "\r\n"]))
def test_separator_lines_start_sections(tmp_path_factory, parts, newline):
    tmp_path = tmp_path_factory.mktemp("sep")
    text = ("<<<" + newline).join(p.replace("\n", newline) for p in parts)
    data = text.encode()
    refs = run(tmp_path, data, {"separator": "^<<<$"})
    if not data:
        return
    starts = [r.start for r in refs]
    expected = sorted({0} | {i for i in range(len(data)) if data.startswith(b"<<<" + newline.encode(), i)
                             and (i == 0 or data[i - 1:i] == b"\n")})
    assert starts == expected
    numbers = [r.meta["separator"] for r in refs if "separator" in r.meta]
    assert numbers == list(range(1, len(expected) + (0 if data.startswith(b"<<<") else -1) + 1))
    assert all(r.meta["title"] == "<<<" for r in refs if "separator" in r.meta)


def test_page_breaks(tmp_path):
    data = "page one\n\fpage two é\n\f\fend".encode()
    refs = run(tmp_path, data, {"pages": True})
    assert [data[r.start:r.end] for r in refs] == [b"page one\n\f", "page two é\n\f".encode(), b"\f", b"end"]
    assert [r.meta["page"] for r in refs] == [1, 2, 3, 4]
    refs = run(tmp_path, b"a\fb\f", {"pages": True}, name="ends.txt")
    assert [(r.start, r.end, r.meta["title"]) for r in refs] == [(0, 2, "page 1"), (2, 4, "page 2")]


def test_several_files_are_cut_one_by_one(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A1\nx\n# A2\ny\n")
    (tmp_path / "docs" / "b.md").write_text("pre\n# B1\nz\n")
    job = bn.Job(source=str(tmp_path / "docs"), partitioner="sections", app="identity", assembler="passthrough",
                 destination=str(tmp_path / "o"), params={"partitioner": {"level": 1}})
    refs = job.plan(scheduler="sync")
    assert [(r.label, r.meta["title"], r.meta["section"]) for r in refs] == [
        ("a.md", "A1", 0), ("a.md", "A2", 1), ("b.md", "", 0), ("b.md", "B1", 1)]


def test_unclosed_fences_and_long_lines():
    doc = ("# A\n" + "x" * 200_000 + "é\n~~~\n# inside\n").encode()
    found = list(markdown_sections(read_lines(io.BytesIO(doc), "d.md"), 6))
    assert [(s.start, s.end, s.title) for s in found] == [(0, len(doc), "A")]
    assert found[0].last == len(doc.decode())


def test_invalid_utf8_names_the_file_and_byte_offset(tmp_path):
    for params in ({"level": 2}, {"pages": True}, {"separator": "x"}):
        (tmp_path / "bad.md").write_bytes(b"# ok\n\nfine\n\xff\xfe\n")
        job = bn.Job(source=str(tmp_path / "bad.md"), partitioner="sections", app="identity", assembler="concat",
                     destination=str(tmp_path / "o"), params={"partitioner": params})
        with pytest.raises(bn.JobFailed) as e:
            job.run(scheduler="sync")
        assert "bad.md: byte 11: not UTF-8 text" in str(e.value)
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("params, field", [
    ({"level": 7}, "params.partitioner.level"),
    ({"max_size": 0}, "params.partitioner.max_size"),
    ({"separator": "("}, "params.partitioner.separator"),
    ({"level": 1, "separator": "^x"}, "params.partitioner.separator"),
    ({"separator": "^x", "pages": True}, "params.partitioner.pages"),
    ({"sizes": 3}, "params.partitioner"),
])
def test_bad_params_name_the_field(tmp_path, params, field):
    (tmp_path / "d.md").write_text("# a\n")
    job = bn.Job(source=str(tmp_path / "d.md"), partitioner="sections", app="identity", assembler="concat",
                 destination=str(tmp_path / "o"), params={"partitioner": params})
    with pytest.raises((bn.JobFailed, bn.JobValidationError)) as e:
        job.run(scheduler="sync")
    assert field in str(e.value)
    assert not (tmp_path / "o").exists()


@settings(max_examples=80, deadline=None)
@given(text=hs.text(alphabet=hs.sampled_from(list("a é😀\n\r#")), max_size=60), block=hs.integers(1, 9))
def test_lines_are_the_same_whatever_the_read_block(text, block):
    data = text.encode()
    small = [(ln.offset, ln.char, ln.size, ln.chars, ln.head) for ln in read_lines(io.BytesIO(data), "d", block)]
    assert small == [(ln.offset, ln.char, ln.size, ln.chars, ln.head) for ln in read_lines(io.BytesIO(data), "d")]
    assert sum(x[2] for x in small) == len(data) and sum(x[3] for x in small) == len(text)


@pytest.mark.parametrize("doc, starts", [
    ("Foo\nbar\n===\ntext\n", [(0, "Foo bar", 1)]),  # a paragraph of two lines underlined
    ("Foo\n***\nbar\n---\n", [(0, "", 0), (8, "bar", 2)]),  # a thematic break ends the paragraph
    ("Foo\n- item\n---\n", [(0, "", 0)]),  # a list item ends it too: the --- is a thematic break
    ("\n---\n# A #\n", [(0, "", 0), (5, "A", 1)]),  # --- after a blank line underlines nothing
    ("    # code\n#no\n####### seven\n", [(0, "", 0)]),  # indented code, no space, seven #
    ("````\n```\n# in\n````\n## B\n", [(0, "", 0), (19, "B", 2)]),  # a shorter fence does not close
])
def test_what_is_a_heading(doc, starts):
    found = markdown_sections(read_lines(io.BytesIO(doc.encode()), "d.md"), 2)
    assert [(s.start, s.title, s.level) for s in found] == starts
    for block in (1, 4, 4096):  # the lines the planning reads give the same
        found = markdown_sections(markdown_lines(io.BytesIO(doc.encode()), "d.md", block), 2)
        assert [(s.start, s.title, s.level) for s in found] == starts


MARKDOWNISH = hs.lists(hs.sampled_from(["#", "## ", "a", "é", "😀", " ", "   ", "\t", "\n", "\r\n", "\n\n", "=",
                                        "===", "-", "---", "- ", "* ", "1. ", "> ", "```", "~~~", "`", "_ _ _", "#" * 7]),
                       max_size=60).map("".join)


def every_line_sections(data: bytes, level: int) -> list:
    found = markdown_sections(read_lines(io.BytesIO(data), "d.md"), level)
    return [(s.start, s.end, s.first, s.last, s.title, s.level, s.path) for s in found]


@settings(max_examples=300, deadline=None)
@given(text=MARKDOWNISH, level=hs.integers(1, 6), block=hs.sampled_from([1, 2, 3, 5, 8, 13, 64, 4096]),
       look_back=hs.sampled_from([1, 2, 32]), dense=hs.sampled_from([1, 4, 10**6]))
def test_the_chosen_lines_give_the_sections_every_line_gives(text, level, block, look_back, dense):
    from bytenite_nb.partitioners import sections

    data = text.encode()
    saved = sections.LOOK_BACK, sections.DENSE
    sections.LOOK_BACK, sections.DENSE = look_back, dense  # blank lines looked for, blocks read line by line
    try:
        found = list(markdown_sections(markdown_lines(io.BytesIO(data), "d.md", block), level))
    finally:
        sections.LOOK_BACK, sections.DENSE = saved
    assert [(s.start, s.end, s.first, s.last, s.title, s.level, s.path) for s in found] == \
        every_line_sections(data, level)


def test_chosen_lines_skip_paragraphs_and_stream_long_lines(monkeypatch):
    from bytenite_nb.partitioners import sections

    monkeypatch.setattr(sections, "LINE_HEAD", 6)
    doc = ("intro\n\n" + "para one\n\n" * 50 + "# A\n" + "é" * 100 + "\nFoo\nbar\n===\n").encode()
    lines = list(markdown_lines(io.BytesIO(doc), "d.md", block=64))
    assert len(lines) < 30 < sum(1 for _ in read_lines(io.BytesIO(doc), "d.md"))  # a blank and a line a block
    assert [ln.head for ln in lines][-5:] == ["# A", "éééééé", "Foo", "bar", "==="]
    assert (lines[-4].offset, lines[-4].size, lines[-4].chars) == (doc.index("é".encode()), 201, 101)  # streamed
    assert every_line_sections(doc, 2) == [(s.start, s.end, s.first, s.last, s.title, s.level, s.path)
                                           for s in markdown_sections(iter(lines), 2)] == [
        (0, 507, 0, 507, "", 0, []), (507, 511, 507, 511, "A", 1, []),
        (511, 724, 511, 624, "éééééé Foo bar", 1, [])]


@settings(max_examples=200, deadline=None)
@given(text=MARKDOWNISH, bad=hs.lists(hs.tuples(hs.integers(0, 200), hs.sampled_from([b"\xff", b"\xe2\x82", b"\x80"])),
                                      min_size=1, max_size=3), block=hs.sampled_from([1, 3, 8, 64]))
def test_chosen_lines_fail_on_the_same_byte_as_every_line(text, bad, block):
    from bytenite_nb.exceptions import BadRecordError

    data = text.encode()
    for at, junk in sorted(bad, reverse=True):
        data = data[:at] + junk + data[at:]
    try:
        data.decode()
        return  # the bytes happen to make valid characters
    except UnicodeDecodeError:
        pass
    errors = []
    for lines in (read_lines(io.BytesIO(data), "d.md"), markdown_lines(io.BytesIO(data), "d.md", block)):
        with pytest.raises(BadRecordError) as e:
            list(markdown_sections(lines, 6))
        errors.append(str(e.value))
    # the same byte; whether it is called cut short or not UTF-8 may differ with where the blocks end
    assert errors[0].split(": ")[:2] == errors[1].split(": ")[:2]
    assert all(e.endswith(("not UTF-8 text", "ends in the middle of a UTF-8 character")) for e in errors)


@pytest.mark.parametrize("data, offset, reason", [(b"# a\n\xff\n", 4, "not UTF-8 text"),
                                                   (b"# a\n" + b"x" * 40 + b"\xe2\x82", 44, "ends in the middle"),
                                                   (b"x" * 40 + b"\xff" + b"x" * 40, 40, "not UTF-8 text")])
def test_chosen_lines_name_the_byte_of_invalid_utf8(data, offset, reason):
    from bytenite_nb.exceptions import BadRecordError

    with pytest.raises(BadRecordError) as e:
        list(markdown_lines(io.BytesIO(data), "d.md", block=16))
    assert f"d.md: byte {offset}: {reason}" in str(e.value)
