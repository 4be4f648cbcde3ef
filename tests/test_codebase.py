"""codebase: a source tree (a folder, a zip, a tar.gz) in chunks of whole files,
rebuilt by the codebase assembler exactly, minus what .gitignore, include and
exclude leave out; unsafe archives refused before anything is written."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as hs

import bytenite_nb as bn
from bytenite_nb.assemblers import ChunkResult, ResultFile
from bytenite_nb.assemblers.codebase import Codebase as CodebaseAssembler
from bytenite_nb.exceptions import AssemblyError, UnsafeArchiveError

NAME = hs.text(alphabet=hs.sampled_from(list("abcXYZ019é€😀ß_- ")), min_size=1, max_size=6).map(str.strip).filter(bool)
DATA = hs.binary(max_size=300) | hs.just(b"")


@hs.composite
def trees(draw) -> dict[str, bytes]:
    """A tree of files: nested folders, unicode names, empty files, files git
    ignores (``*.tmp`` at the root; ``*.bak`` but ``keep.bak`` in a folder),
    sometimes Python packages."""
    folders = [""] + draw(hs.lists(hs.lists(NAME, min_size=1, max_size=3).map("/".join), max_size=4))
    tree: dict[str, bytes] = {}
    for folder in folders:
        for name in draw(hs.lists(NAME, max_size=3)):
            suffix = draw(hs.sampled_from(["", ".py", ".txt", ".tmp", ".bak"]))
            tree[f"{folder}/{name}{suffix}".lstrip("/")] = draw(DATA)
        if folder and draw(hs.booleans()):
            tree[f"{folder}/__init__.py"] = draw(DATA)
    tree[".gitignore"] = b"*.tmp\n"
    nested = draw(hs.sampled_from(folders))
    if nested:
        tree[f"{nested}/.gitignore"] = b"*.bak\n!keep.bak\n"
        tree[f"{nested}/keep.bak"] = b"kept"
    # a file may not also be a folder
    files = sorted(tree)
    return {p: tree[p] for p in files if not any(q.startswith(p + "/") for q in files)}


def expected_tree(tree: dict[str, bytes]) -> dict[str, bytes]:
    """What git keeps of the tree: the rules above, applied by hand."""
    nested = [p.rsplit("/", 1)[0] for p in tree if p.endswith("/.gitignore")]
    out = {}
    for path, data in tree.items():
        if path.endswith(".tmp"):
            continue
        under = [n for n in nested if path.startswith(n + "/")]
        if under and path.endswith(".bak") and path.rsplit("/", 1)[-1] != "keep.bak":
            continue
        out[path] = data
    return out


def write_folder(root, tree: dict[str, bytes]) -> None:
    for path, data in tree.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)


def make_source(tmp_path, tree: dict[str, bytes], form: str) -> str:
    if form == "folder":
        write_folder(tmp_path / "src", tree)
        return str(tmp_path / "src")
    if form == "zip":
        path = tmp_path / "src.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in tree.items():
                zf.writestr(name, data)
        return str(path)
    path = tmp_path / "src.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        tf.addfile(tar_member(".", tarfile.DIRTYPE))  # as tar -czf src.tar.gz -C src . makes it
        for name, data in tree.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return str(path)


def read_folder(root) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel != "_SUCCESS":
                out[rel] = open(full, "rb").read()
    return out


def read_archive(path: str) -> dict[str, bytes]:
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            return {n: zf.read(n) for n in zf.namelist()}
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def job(source: str, dest, partitioner: dict | None = None, assembler: dict | None = None, app="identity"):
    return bn.Job(source=source, partitioner="codebase", app=app, assembler="codebase", destination=str(dest),
                  params={"partitioner": partitioner or {}, "assembler": assembler or {}})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees(), form=hs.sampled_from(["folder", "zip", "tar.gz"]), by=hs.sampled_from(["file", "module", "size"]),
       target=hs.integers(1, 600), archive=hs.sampled_from(["none", "none", "zip", "tar"]))
def test_codebase_then_identity_then_codebase_gives_the_tree_back(tmp_path_factory, tree, form, by, target, archive):
    want = expected_tree(tree)
    tmp_path = tmp_path_factory.mktemp("cb")
    source = make_source(tmp_path, tree, form)
    j = job(source, tmp_path / "out", {"by": by, "target_size": target}, {"archive": archive})
    refs = j.plan(scheduler="sync")
    listed = [n for r in refs for n in r.names]
    assert sorted(listed) == sorted(want)  # each kept file in exactly one chunk
    j.run(scheduler="sync")
    if archive == "none":
        assert read_folder(tmp_path / "out") == want
    else:
        assert read_archive(str(tmp_path / "out" / f"codebase.{archive}")) == want
    for r in refs:
        assert r.meta["file_count"] == len(r.names)
        assert r.meta["total_size"] == sum(len(want[n]) for n in r.names)
    if by == "size":
        sizes = sorted(r.meta["total_size"] for r in refs)
        largest_file = max(len(d) for d in want.values())
        assert sizes[-1] - sizes[0] <= max(largest_file, 1)  # balanced: no group a whole file heavier than another


def test_modules_are_top_level_folders_python_packages_and_root_files(tmp_path):
    tree = {"setup.py": b"s", "README.md": b"r", "docs/a.md": b"a", "docs/deep/b.md": b"b",
            "src/tool.py": b"t", "src/pkg/__init__.py": b"", "src/pkg/sub/m.py": b"m",
            "lib/__init__.py": b"", "lib/inner/__init__.py": b"", "lib/inner/x.py": b"x"}
    write_folder(tmp_path / "src", tree)
    refs = job(str(tmp_path / "src"), tmp_path / "out").plan(scheduler="sync")
    modules = {r.meta["module"]: list(r.names) for r in refs}
    assert modules == {"README.md": ["README.md"], "docs": ["docs/a.md", "docs/deep/b.md"],
                       "lib": ["lib/__init__.py", "lib/inner/__init__.py", "lib/inner/x.py"],
                       "setup.py": ["setup.py"], "src": ["src/tool.py"],
                       "src/pkg": ["src/pkg/__init__.py", "src/pkg/sub/m.py"]}


def test_include_exclude_and_git_folders(tmp_path):
    tree = {"a.py": b"1", "b.txt": b"2", "pkg/c.py": b"3", "pkg/tests/test_c.py": b"4", ".git/config": b"x",
            "pkg/.git/HEAD": b"y"}
    write_folder(tmp_path / "src", tree)
    j = job(str(tmp_path / "src"), tmp_path / "out", {"by": "file", "include": ["*.py"], "exclude": ["tests/"]})
    assert [n for r in j.plan(scheduler="sync") for n in r.names] == ["a.py", "pkg/c.py"]
    j = job(str(tmp_path / "src"), tmp_path / "out", {"exclude": ["*.py", "!/a.py"]})
    assert sorted(n for r in j.plan(scheduler="sync") for n in r.names) == ["a.py", "b.txt"]
    j = job(str(tmp_path / "src"), tmp_path / "out", {"include": ["*.rs"]})
    with pytest.raises(bn.JobFailed, match="no file of .* is left after .gitignore, include and exclude"):
        j.run(scheduler="sync")
    assert not os.path.exists(tmp_path / "out")


def test_nested_gitignore_with_negation_and_ignored_folders(tmp_path):
    tree = {".gitignore": b"*.log\nbuild/\n# a comment\n", "app.log": b"l", "build/out.bin": b"b",
            "build/keep.txt": b"k", "pkg/.gitignore": b"!important.log\n*.tmp\n", "pkg/important.log": b"i",
            "pkg/other.log": b"o", "pkg/x.tmp": b"t", "pkg/x.py": b"p", "x.tmp": b"root tmp is kept",
            "pkg/sub/.gitignore": b"!build/\n", "pkg/sub/build/y": b"y",
            "pkg/sub/build/.gitignore": b"!*.log\n", "pkg/sub/build/z.log": b"z"}
    write_folder(tmp_path / "src", tree)
    j = job(str(tmp_path / "src"), tmp_path / "out", {"by": "size", "target_size": 4})
    j.run(scheduler="sync")
    # "build/" at the root ignores every folder called build, a deeper "!build/" brings one back,
    # and a file inside an ignored folder cannot be brought back by a rule for the file
    assert read_folder(tmp_path / "out") == {
        ".gitignore": tree[".gitignore"], "pkg/.gitignore": tree["pkg/.gitignore"], "pkg/important.log": b"i",
        "pkg/x.py": b"p", "x.tmp": b"root tmp is kept", "pkg/sub/.gitignore": b"!build/\n", "pkg/sub/build/y": b"y",
        "pkg/sub/build/.gitignore": b"!*.log\n", "pkg/sub/build/z.log": b"z"}
    j = job(str(tmp_path / "src"), tmp_path / "out2", {"gitignore": False})
    assert sorted(n for r in j.plan(scheduler="sync") for n in r.names) == sorted(tree)


def test_symlinks_in_a_local_folder_are_refused_unless_excluded(tmp_path):
    write_folder(tmp_path / "src", {"a.txt": b"a"})
    os.symlink("/etc/hostname", tmp_path / "src" / "link.txt")
    with pytest.raises(bn.JobFailed) as e:
        job(str(tmp_path / "src"), tmp_path / "out").run(scheduler="sync")
    assert "link.txt is a symbolic link (to '/etc/hostname')" in str(e.value)
    assert not os.path.exists(tmp_path / "out")
    job(str(tmp_path / "src"), tmp_path / "out", {"exclude": ["link.txt"]}).run(scheduler="sync")
    assert read_folder(tmp_path / "out") == {"a.txt": b"a"}


def test_chunk_info_caps_the_file_list(tmp_path):
    write_folder(tmp_path / "src", {f"big/f{i:03d}.txt": b"x" * i for i in range(250)})
    seen = []

    def count(chunk_path, results_dir, params, chunk_info):
        seen.append(chunk_info)
        with zipfile.ZipFile(chunk_path) as zf:
            open(os.path.join(results_dir, "n.txt"), "w").write(str(len(zf.namelist())))

    j = job(str(tmp_path / "src"), tmp_path / "out", app=count, assembler={"unpack": False})
    [ref] = j.plan(scheduler="sync")
    assert (ref.meta["module"], ref.meta["file_count"], len(ref.meta["files"])) == ("big", 250, 200)
    assert ref.meta["total_size"] == sum(range(250))
    j.run(scheduler="sync")
    assert (tmp_path / "out" / "n.txt").read_text() == "250"
    assert seen[0]["file_count"] == 250 and seen[0]["module"] == "big"
    assert len(seen[0]["files"]) == len(seen[0]["names"]) == 200 and seen[0]["names_total"] == 250


# -- unsafe archives ---------------------------------------------------------------------


def zip_with(tmp_path, name: str, data: bytes = b"evil", mode: int | None = None) -> str:
    path = tmp_path / "src.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("good.txt", b"good")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return str(path)


def tar_with(tmp_path, info: tarfile.TarInfo, data: bytes = b"") -> str:
    path = tmp_path / "src.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        good = tarfile.TarInfo("good.txt")
        good.size = 4
        tf.addfile(good, io.BytesIO(b"good"))
        tf.addfile(info, io.BytesIO(data) if data else None)
    return str(path)


def tar_member(name: str, kind=tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


UNSAFE = {
    "zip-slip": (lambda p: zip_with(p, "../evil.txt"), "src.zip: member '../evil.txt': its name has '..'"),
    "zip-slip-inner": (lambda p: zip_with(p, "a/../../evil.txt"), "member 'a/../../evil.txt': its name has '..'"),
    "zip-absolute": (lambda p: zip_with(p, "/etc/evil"), "src.zip: member '/etc/evil': its name is absolute"),
    "zip-symlink": (lambda p: zip_with(p, "link", b"/etc/passwd", stat.S_IFLNK | 0o777),
                    "src.zip: member 'link': is a symbolic link"),
    "tar-slip": (lambda p: tar_with(p, tar_member("../evil", size=4), b"evil"),
                 "src.tar.gz: member '../evil': its name has '..'"),
    "tar-absolute": (lambda p: tar_with(p, tar_member("/tmp/evil", size=4), b"evil"),
                     "src.tar.gz: member '/tmp/evil': its name is absolute"),
    "tar-symlink": (lambda p: tar_with(p, tar_member("link", tarfile.SYMTYPE, "/etc/passwd")),
                    "src.tar.gz: member 'link': is a symbolic link (to '/etc/passwd')"),
    "tar-hardlink": (lambda p: tar_with(p, tar_member("hard", tarfile.LNKTYPE, "good.txt")),
                     "src.tar.gz: member 'hard': is a hard link"),
    "tar-device": (lambda p: tar_with(p, tar_member("dev", tarfile.CHRTYPE)),
                   "src.tar.gz: member 'dev': is not a regular file"),
    "zip-bomb-ratio": (lambda p: zip_bomb(p), "src.zip: member 'zeros.bin': compression ratio"),
    "tar-bomb-ratio": (lambda p: tar_with(p, tar_member("zeros.bin", size=8 * 2**20), bytes(8 * 2**20)),
                       "src.tar.gz: member 'zeros.bin': the archive expands more than max_ratio"),
}


def zip_bomb(tmp_path) -> str:
    path = tmp_path / "src.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(8 * 2**20))
    return str(path)


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused_before_anything_is_written(tmp_path, case):
    make, message = UNSAFE[case]
    source = make(tmp_path)
    j = job(source, tmp_path / "out")
    with pytest.raises(bn.JobFailed) as e:
        j.run(scheduler="sync")
    assert message in str(e.value)
    assert not os.path.exists(tmp_path / "out")
    assert not os.path.exists(tmp_path / "evil") and not os.path.exists(tmp_path / "evil.txt")


def test_max_expanded_refuses_an_archive_that_declares_too_much(tmp_path):
    path = tmp_path / "src.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.bin", bytes(600))
        zf.writestr("b.bin", bytes(600))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("before")
    with pytest.raises(bn.JobFailed) as e:
        job(str(path), tmp_path / "out", {"max_expanded": 1000}).run(scheduler="sync")
    assert "archive src.zip: member 'b.bin': expands past max_expanded (more than 1000 bytes unpacked)" in str(e.value)
    assert os.listdir(tmp_path / "out") == ["keep.txt"]
    job(str(path), tmp_path / "out", {"max_expanded": 1200}).run(scheduler="sync")
    assert (tmp_path / "out" / "b.bin").read_bytes() == bytes(600)


# -- the assembler refuses unsafe results and conflicts ----------------------------------------


def result_zip(tmp_path, index: int, members: dict[str, bytes], mode: int | None = None) -> ChunkResult:
    path = tmp_path / f"r{index}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return ChunkResult(index, (ResultFile("result.bin", path.stat().st_size, f"file://{path}", str(path)),))


@pytest.mark.parametrize("members, mode, message", [
    ({"ok.txt": b"1", "../up.txt": b"2"}, None, "chunk 1 result result.bin: member '../up.txt': its name has '..'"),
    ({"/abs.txt": b"2"}, None, "chunk 1 result result.bin: member '/abs.txt': its name is absolute"),
    ({"link": b"/etc/passwd"}, stat.S_IFLNK | 0o777, "chunk 1 result result.bin: member 'link': is a symbolic link"),
])
def test_the_assembler_refuses_names_that_escape_before_writing(tmp_path, members, mode, message):
    out = tmp_path / "out"
    out.mkdir()
    results = [result_zip(tmp_path, 0, {"first.txt": b"f"}), result_zip(tmp_path, 1, members, mode)]
    with pytest.raises(UnsafeArchiveError) as e:
        CodebaseAssembler().assemble(results, str(out), {})
    assert message in str(e.value)
    assert os.listdir(out) == []  # not even the first chunk's file


def test_the_assembler_refuses_two_chunks_writing_one_path_differently(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    same = [result_zip(tmp_path, 0, {"a/x.txt": b"1"}), result_zip(tmp_path, 3, {"a/x.txt": b"1", "y": b""})]
    CodebaseAssembler().assemble(same, str(out), {})
    assert read_folder(out) == {"a/x.txt": b"1", "y": b""}
    for archive in ("none", "zip"):
        out = tmp_path / f"out-{archive}"
        out.mkdir()
        results = [result_zip(tmp_path, 0, {"a/x.txt": b"1"}), result_zip(tmp_path, 3, {"a/x.txt": b"2"})]
        with pytest.raises(AssemblyError, match="chunks 0 and 3 both write 'a/x.txt', with different content"):
            CodebaseAssembler().assemble(results, str(out), {"archive": archive})
    out = tmp_path / "out-folder"
    out.mkdir()
    results = [result_zip(tmp_path, 0, {"a": b"file"}), result_zip(tmp_path, 1, {"a/b": b"in a folder"})]
    with pytest.raises(AssemblyError, match="chunk 1: 'a/b' needs the folder 'a', which chunk 0 wrote as a file"):
        CodebaseAssembler().assemble(results, str(out), {})


def upper_py(chunk_path, results_dir, params):
    """Plain result files: the chunk's .py files, upper-cased, under their own paths."""
    with zipfile.ZipFile(chunk_path) as zf:
        for name in zf.namelist():
            if name.endswith(".py"):
                dest = os.path.join(results_dir, name)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                open(dest, "wb").write(zf.read(name).upper())


def test_a_real_job_on_the_cluster_with_plain_file_results_and_a_tar_output(tmp_path, client):
    tree = {"pkg/__init__.py": b"x = 1\n", "pkg/a.py": b"def f(): pass\n", "docs/r.md": b"# doc\n",
            "tool.py": b"print('hi')\n", ".gitignore": b"*.pyc\n", "pkg/a.pyc": b"\x00"}
    write_folder(tmp_path / "src", tree)
    j = job(str(tmp_path / "src"), tmp_path / "out", {"by": "module"}, {"archive": "tar", "output_name": "t.tar.gz"},
            app=upper_py)
    result = j.run(client=client)
    assert result.n_chunks == 4  # .gitignore, docs, pkg and tool.py: the ignored .pyc is in no chunk
    assert read_archive(str(tmp_path / "out" / "t.tar.gz")) == {
        "pkg/__init__.py": b"X = 1\n", "pkg/a.py": b"DEF F(): PASS\n", "tool.py": b"PRINT('HI')\n"}


def test_an_archive_source_on_the_cluster(tmp_path, client):
    tree = {"m/__init__.py": b"", "m/k.py": b"k = 2\n", "n/x.txt": "é€".encode(), "empty": b""}
    source = make_source(tmp_path, tree, "zip")
    j = job(source, tmp_path / "out", {"by": "size", "target_size": 3}, {"archive": "zip"})
    j.run(client=client)
    assert read_archive(str(tmp_path / "out" / "codebase.zip")) == tree


def test_a_folder_and_an_archive_on_an_object_store(tmp_path, s3):
    fs, bucket = s3
    tree = {".gitignore": b"*.tmp\n", "pkg/__init__.py": b"", "pkg/m.py": b"m = 1\n", "pkg/x.tmp": b"t",
            "notes/é.md": "é".encode()}
    for name, data in tree.items():
        fs.pipe(f"{bucket}/src/{name}", data)
    want = {k: v for k, v in tree.items() if not k.endswith(".tmp")}
    j = job(f"s3://{bucket}/src/", tmp_path / "out", {"by": "module"})
    assert [r.meta["module"] for r in j.plan(scheduler="sync")] == [".gitignore", "notes", "pkg"]
    j.run(scheduler="sync")
    assert read_folder(tmp_path / "out") == want
    fs.put(make_source(tmp_path, tree, "tar.gz"), f"{bucket}/src.tar.gz")
    job(f"s3://{bucket}/src.tar.gz", tmp_path / "out2", {"by": "file"}).run(scheduler="sync")
    assert read_folder(tmp_path / "out2") == want


def test_the_plan_preview_shows_modules_and_file_lists(tmp_path):
    from bytenite_nb.plan import chunk_details

    tree = {"pkg/__init__.py": b"", "pkg/a.py": b"a = 1\n", "tool.py": b"t\n"}
    for form in ("folder", "zip", "tar.gz"):
        base = tmp_path / form.replace(".", "-")
        base.mkdir()
        plan = job(make_source(base, tree, form), base / "out").plan(scheduler="sync")
        assert [r.meta["module"] for r in plan] == ["pkg", "tool.py"]
        assert plan.sample["kind"] == "files" and plan.sample["names"] == ["pkg/__init__.py", "pkg/a.py"]
        assert "module: pkg" in chunk_details(plan[0])
        assert not os.path.exists(base / "out")
