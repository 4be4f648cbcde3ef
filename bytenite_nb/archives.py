"""Reading zip and tar archives without trusting them.

Every member is checked before a byte of it is written anywhere: its name
must stay inside the tree (no ``..``, no absolute name), it must be a regular
file or a folder (no symlink, hard link or device), and the archive must not
expand past a size or a compression ratio (a zip bomb). A refusal is an
:class:`~bytenite_nb.exceptions.UnsafeArchiveError` naming the archive and
the member.

>>> member_name("src.zip", "./pkg/mod.py")
'pkg/mod.py'
>>> member_name("src.zip", "pkg/../../etc/passwd")
Traceback (most recent call last):
...
bytenite_nb.exceptions.UnsafeArchiveError: archive src.zip: member 'pkg/../../etc/passwd': its name has '..' and could escape the tree
"""

from __future__ import annotations

import posixpath
import re
import stat
import tarfile
import zipfile
from typing import BinaryIO, Iterator

from .exceptions import UnsafeArchiveError

#: name endings read as archives, and the kind of each
ARCHIVE_SUFFIXES = {".zip": "zip", ".tar": "tar", ".tar.gz": "tar", ".tgz": "tar"}
#: at most this many bytes once unpacked, by default (all members together)
DEFAULT_MAX_EXPANDED = 4 * 2**30
#: at most this many expanded bytes per compressed byte, by default
DEFAULT_MAX_RATIO = 200
#: smaller members (and archives) are not judged by their ratio: a short file of
#: repeated text compresses far better than 200:1 and is harmless
RATIO_FLOOR = 2**20

_DRIVE = re.compile(r"^[A-Za-z]:")


def archive_kind(name: str) -> str | None:
    """``zip`` or ``tar`` for an archive's name, None for any other name.

    >>> archive_kind("src.tar.gz"), archive_kind("a.ZIP"), archive_kind("notes.txt")
    ('tar', 'zip', None)
    """
    lower = name.lower()
    for suffix, kind in ARCHIVE_SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    return None


def member_name(archive: str, raw: str) -> str:
    """The name of a member inside the tree (``./`` and repeated slashes removed),
    refusing names that are absolute or go up with ``..``."""
    name = raw.replace("\\", "/")
    if not name or "\x00" in name:
        raise UnsafeArchiveError(archive, raw, "its name is empty or invalid")
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchiveError(archive, raw, "its name is absolute")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(archive, raw, "its name has '..' and could escape the tree")
    if not parts:
        raise UnsafeArchiveError(archive, raw, "its name is empty or invalid")
    return posixpath.join(*parts)


class Budget:
    """How many bytes an archive may still expand to: refuses a member that
    takes the total past ``max_expanded``, or that expands more than
    ``max_ratio`` times its compressed size.

    >>> b = Budget("a.zip", max_expanded=10)
    >>> b.add("x", 6); b.add("y", 6)
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.UnsafeArchiveError: archive a.zip: member 'y': expands past max_expanded (more than 10 bytes unpacked)
    """

    def __init__(self, archive: str, max_expanded: int = DEFAULT_MAX_EXPANDED, max_ratio: float = DEFAULT_MAX_RATIO):
        self.archive, self.max_expanded, self.max_ratio = archive, max_expanded, max_ratio
        self.total = 0

    def add(self, member: str, size: int, compressed: int | None = None) -> None:
        if size < 0:
            raise UnsafeArchiveError(self.archive, member, f"declares a negative size ({size})")
        self.total += size
        if self.total > self.max_expanded:
            raise UnsafeArchiveError(self.archive, member, f"expands past max_expanded (more than "
                                                           f"{self.max_expanded} bytes unpacked)")
        if compressed is not None and size > RATIO_FLOOR and size > self.max_ratio * max(compressed, 1):
            raise UnsafeArchiveError(self.archive, member, f"compression ratio {size / max(compressed, 1):.0f}:1 "
                                                           f"is past max_ratio ({self.max_ratio}:1)")

    def check_stream_ratio(self, member: str, compressed_size: int | None) -> None:
        """For a compressed stream (a .tar.gz): the whole stream's ratio so far."""
        if compressed_size and self.total > RATIO_FLOOR and self.total > self.max_ratio * compressed_size:
            raise UnsafeArchiveError(self.archive, member, f"the archive expands more than max_ratio "
                                                           f"({self.max_ratio}:1) times its {compressed_size} bytes")


def zip_files(zf: zipfile.ZipFile, archive: str) -> Iterator[tuple[zipfile.ZipInfo, str]]:
    """The regular files of a zip with their checked names (folders are skipped;
    a symlink, a device or a name seen twice is refused).

    >>> import io
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as zf:
    ...     zf.writestr("pkg/", b""); zf.writestr("./pkg/a.py", b"x = 1")
    >>> [name for _, name in zip_files(zipfile.ZipFile(buf), "src.zip")]
    ['pkg/a.py']
    """
    seen: set[str] = set()
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if info.is_dir() or stat.S_ISDIR(mode):
            continue  # folders are never made from an entry: nothing to check
        name = member_name(archive, info.filename)
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(archive, info.filename, "is a symbolic link")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise UnsafeArchiveError(archive, info.filename, "is not a regular file (a device or a special file)")
        if name in seen:
            raise UnsafeArchiveError(archive, info.filename, "appears twice in the archive")
        seen.add(name)
        yield info, name


def tar_files(tf: tarfile.TarFile, archive: str) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """The regular files of a tar (read as a stream is fine) with their checked
    names; a symlink, a hard link, a device or a name seen twice is refused.

    >>> import io
    >>> buf = io.BytesIO()
    >>> with tarfile.open(fileobj=buf, mode="w") as tf:
    ...     link = tarfile.TarInfo("link"); link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    ...     tf.addfile(link)
    >>> _ = buf.seek(0)
    >>> list(tar_files(open_tar_stream(buf, "src.tar"), "src.tar"))
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.UnsafeArchiveError: archive src.tar: member 'link': is a symbolic link (to '/etc/passwd')
    """
    seen: set[str] = set()
    for info in tf:
        if info.isdir():
            continue  # folders are never made from an entry (``.`` is a common one): nothing to check
        name = member_name(archive, info.name)
        if info.issym():
            raise UnsafeArchiveError(archive, info.name, f"is a symbolic link (to {info.linkname!r})")
        if info.islnk():
            raise UnsafeArchiveError(archive, info.name, f"is a hard link (to {info.linkname!r})")
        if not info.isreg():
            raise UnsafeArchiveError(archive, info.name, "is not a regular file (a device, a fifo or a special file)")
        if name in seen:
            raise UnsafeArchiveError(archive, info.name, "appears twice in the archive")
        seen.add(name)
        yield info, name


def open_tar_stream(fileobj: BinaryIO, archive: str) -> tarfile.TarFile:
    """A tar (plain or compressed) read front to back, never seeking.

    >>> import io
    >>> open_tar_stream(io.BytesIO(b"not a tar"), "src.tgz")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.UnsafeArchiveError: archive src.tgz: not a readable tar archive: truncated header
    """
    try:
        return tarfile.open(fileobj=fileobj, mode="r|*")
    except tarfile.TarError as exc:
        raise UnsafeArchiveError(archive, None, f"not a readable tar archive: {exc}") from exc


def copy_limited(src: BinaryIO, dst: BinaryIO, limit: int, archive: str, member: str) -> int:
    """Copy a member's bytes, refusing it the moment it gives more than ``limit``
    (what it declared): the size a zip bomb declares is not trusted.

    >>> import io
    >>> copy_limited(io.BytesIO(b"12345"), io.BytesIO(), 5, "a.zip", "m")
    5
    >>> copy_limited(io.BytesIO(b"123456"), io.BytesIO(), 5, "a.zip", "m")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.UnsafeArchiveError: archive a.zip: member 'm': expands to more than the 5 bytes it declares
    """
    n = 0
    while data := src.read(2**20):
        n += len(data)
        if n > limit:
            raise UnsafeArchiveError(archive, member, f"expands to more than the {limit} bytes it declares")
        dst.write(data)
    return n


def list_members(stream: BinaryIO, kind: str, archive: str, budget: Budget,
                 compressed_size: int | None = None) -> list[tuple[str, int]]:
    """The regular files of an archive as ``(name, size)``, every member checked and
    counted against ``budget`` before the list is returned (a tar is read as a stream).

    >>> import io
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as zf:
    ...     zf.writestr("img/a.png", b"12"); zf.writestr("b.png", b"345")
    >>> list_members(buf, "zip", "imgs.zip", Budget("imgs.zip"))
    [('img/a.png', 2), ('b.png', 3)]
    """
    found: list[tuple[str, int]] = []
    if kind == "zip":
        try:
            zf = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as exc:
            raise UnsafeArchiveError(archive, None, f"not a readable zip archive: {exc}") from exc
        with zf:
            for info, name in zip_files(zf, archive):
                budget.add(info.filename, info.file_size, info.compress_size)
                found.append((name, info.file_size))
        return found
    with open_tar_stream(stream, archive) as tf:
        for info, name in tar_files(tf, archive):
            budget.add(info.name, info.size)
            budget.check_stream_ratio(info.name, compressed_size)
            found.append((name, info.size))
    return found


def copy_members(stream: BinaryIO, kind: str, archive: str, wanted: set[str], out: zipfile.ZipFile) -> set[str]:
    """Copy the members named in ``wanted`` from an archive into the zip ``out`` (names
    checked again, none giving more bytes than it declares); returns the names not found.

    >>> import io
    >>> src, dst = io.BytesIO(), io.BytesIO()
    >>> with zipfile.ZipFile(src, "w") as zf:
    ...     zf.writestr("a.png", b"12"); zf.writestr("b.png", b"345")
    >>> with zipfile.ZipFile(dst, "w") as out:
    ...     copy_members(src, "zip", "imgs.zip", {"b.png", "c.png"}, out)
    {'c.png'}
    """
    wanted = set(wanted)
    if kind == "zip":
        with zipfile.ZipFile(stream) as zf:
            for info, name in list(zip_files(zf, archive)):
                if name in wanted:
                    with zf.open(info) as src, out.open(name, "w", force_zip64=True) as dst:
                        copy_limited(src, dst, info.file_size, archive, info.filename)
                    wanted.discard(name)
        return wanted
    with open_tar_stream(stream, archive) as tf:
        for info, name in tar_files(tf, archive):
            if name in wanted:
                with tf.extractfile(info) as src, out.open(name, "w", force_zip64=True) as dst:
                    copy_limited(src, dst, info.size, archive, info.name)
                wanted.discard(name)
    return wanted
