"""Moving bytes: local fast paths, fsspec everywhere else, safe names.

Every copy the engine makes goes through here, so the fast paths
(cache-sized buffered copies, hard links) and the path-safety checks live in one place.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import shutil
from contextlib import contextmanager
from typing import BinaryIO

from .exceptions import UnsafePathError

BUFFER = 8 * 2**20
#: local copies and checksums go through 1 MiB at a time: small enough to stay
#: in the CPU cache between the read, the hash and the write
COPY_BUFFER = 2**20
#: the first read of a stream of unknown size: enough for most source files
SMALL_BUFFER = 64 * 2**10


def size_text(n: int | None) -> str:
    """A size for people to read.

    >>> size_text(1536), size_text(5), size_text(None)
    ('1.5 KiB', '5 B', '?')
    """
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def copy_range(src_path: str, dst: BinaryIO, start: int = 0, end: int | None = None, digest=None) -> int:
    """Write bytes ``[start, end)`` of a local file into an open local file, at
    its current position; feed them to ``digest`` (a :func:`new_checksum`) on the way.

    A ``pread``/``write`` loop through one reused 1 MiB buffer: the buffer
    stays in the CPU cache, so hashing it costs no second read, and it measured
    faster here than ``sendfile`` or ``copy_file_range``
    (``benchmarks/throughput.py``). Nothing is allocated per block, which
    matters in Dask workers: their allocator hands large blocks straight back
    to the system (``MALLOC_TRIM_THRESHOLD_``).

    >>> import io, tempfile
    >>> with tempfile.NamedTemporaryFile() as src, tempfile.TemporaryFile() as out:
    ...     _ = src.write(b"0123456789"); src.flush()
    ...     copy_range(src.name, out, 2, 5), out.seek(0), out.read()
    (3, 0, b'234')
    """
    dst.flush()
    out_fd = dst.fileno()
    with open(src_path, "rb", buffering=0) as src:
        in_fd = src.fileno()
        if end is None:
            end = os.fstat(in_fd).st_size
        total = max(0, end - start)
        view = memoryview(bytearray(min(total, COPY_BUFFER) or 1))
        offset, remaining = start, total
        while remaining > 0:
            n = os.preadv(in_fd, [view[:min(remaining, len(view))]], offset)
            if n == 0:
                break
            if digest is not None:
                digest.update(view[:n])
            written = 0
            while written < n:
                written += os.write(out_fd, view[written:n])
            offset += n
            remaining -= n
    if remaining:
        raise OSError(f"{src_path}: expected {total} bytes from offset {start}, file ended at {offset}")
    dst.seek(0, os.SEEK_CUR)  # written through the descriptor: bring Python's view of the offset in step
    return total


def copy_stream(src: BinaryIO, dst: BinaryIO, limit: int | None = None) -> int:
    """Copy from one file object to another (up to ``limit`` bytes).

    Read into one reused buffer when the source can: ``read(8 MiB)`` on a
    buffered file sets aside 8 MiB per call however small the file, which made
    copying many small files (a source tree into a zip) slower than the disk.

    >>> import io
    >>> out = io.BytesIO()
    >>> copy_stream(io.BytesIO(b"0123456789"), out, 4), out.getvalue()
    (4, b'0123')
    """
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        # small first (most files of a source tree are), the full buffer once a read fills it
        view = memoryview(bytearray(max(1, min(SMALL_BUFFER, COPY_BUFFER if limit is None else limit))))
        n = 0
        while limit is None or n < limit:
            got = readinto(view if limit is None else view[:min(len(view), limit - n)])
            if not got:
                break
            dst.write(bytes(view[:got]))  # a copy: a writer may keep what it is given
            n += got
            if got == len(view) < COPY_BUFFER:
                view = memoryview(bytearray(COPY_BUFFER))
        return n
    n = 0
    while limit is None or n < limit:
        data = src.read(BUFFER if limit is None else min(BUFFER, limit - n))
        if not data:
            break
        dst.write(data)
        n += len(data)
    return n


def link_or_copy(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (instant, same filesystem) or copy it."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


#: checksum algorithms for outputs: crc32c (the default: what GCS and S3 check
#: natively, and fast enough never to slow a job down) or sha256
CHECKSUMS = ("crc32c", "sha256")
_checksum: contextvars.ContextVar[str] = contextvars.ContextVar("bytenite_nb_checksum", default="crc32c")


@contextmanager
def checksum_algorithm(name: str):
    """Use checksum ``name`` for the outputs made inside the block."""
    token = _checksum.set(name)
    try:
        yield name
    finally:
        _checksum.reset(token)


def current_checksum() -> str:
    return _checksum.get()


class _Crc32c:
    """CRC-32C (Castagnoli) over any buffer, without copying it."""

    def __init__(self):
        import crc32c

        self._crc32c = crc32c.crc32c
        self._value = 0

    def update(self, data) -> None:
        self._value = self._crc32c(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


#: CRC-32C's polynomial, bit-reversed (the bit order crc32c works in)
_CRC32C_POLY = 0x82F63B78


def _gf2_multiply(a: int, b: int) -> int:
    """``a * b`` modulo the CRC-32C polynomial, both bit-reversed polynomials."""
    product, bit = 0, 1 << 31
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _CRC32C_POLY if b & 1 else b >> 1
    return product


_X_POWERS = [1 << 30]  # x ** (2 ** k) for k = 0, 1, ...: x ** 1 first, each the square of the last


def _x_to_the_2_to_the(k: int) -> int:
    """``x ** (2 ** k)`` modulo the polynomial."""
    while len(_X_POWERS) <= k:
        _X_POWERS.append(_gf2_multiply(_X_POWERS[-1], _X_POWERS[-1]))
    return _X_POWERS[k]


def combine_crc32c(first: str, second: str, second_size: int) -> str:
    """The crc32c of ``A + B`` from the crc32c of ``A``, of ``B`` and the size of ``B``
    (8 hex digits each), without reading any byte again: parts copied at the
    same time still give the checksum of the whole.

    >>> a, b = new_checksum("crc32c"), new_checksum("crc32c")
    >>> a.update(b"1234"); b.update(b"56789")
    >>> combine_crc32c(a.hexdigest(), b.hexdigest(), 5)
    'e3069283'
    """
    # Appending n zero bytes multiplies the register by x ** (8n); the
    # all-ones start and end values cancel out between the two parts.
    shift, n, k = 1 << 31, second_size, 3
    while n:
        if n & 1:
            shift = _gf2_multiply(_x_to_the_2_to_the(k), shift)
        n >>= 1
        k += 1
    return f"{_gf2_multiply(shift, int(first, 16)) ^ int(second, 16):08x}"


def new_checksum(name: str | None = None):
    """A fresh checksum object (``update``, ``hexdigest``) for algorithm ``name``.

    >>> c = new_checksum("crc32c"); c.update(b"123456789"); c.hexdigest()
    'e3069283'
    """
    name = name or current_checksum()
    if name == "crc32c":
        return _Crc32c()
    if name == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unknown checksum {name!r}; expected one of {', '.join(CHECKSUMS)}")


def file_checksum(path: str, name: str | None = None) -> str:
    """The checksum of a local file (``name`` defaults to the current algorithm)."""
    c = new_checksum(name)
    view = memoryview(bytearray(COPY_BUFFER))
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            c.update(view[:n])
    return c.hexdigest()


def safe_join(root: str, name: str) -> str:
    """``root/name``, refusing names that would leave ``root`` (``..``, absolute paths).

    >>> safe_join("/out", "a/b.txt")
    '/out/a/b.txt'
    >>> safe_join("/out", "../etc/passwd")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.UnsafePathError: file name '../etc/passwd' escapes its folder
    """
    if not name or "\x00" in name:
        raise UnsafePathError(f"invalid file name {name!r}")
    norm = os.path.normpath(name.replace("\\", "/"))
    if os.path.isabs(norm) or norm == ".." or norm.startswith("../") or norm == ".":
        raise UnsafePathError(f"file name {name!r} escapes its folder")
    return os.path.join(root, norm)


def list_tree(root: str, what: str = "folder") -> list[tuple[str, int]]:
    """Every regular file under ``root`` as ``(relative name, size)``, sorted.

    Symlinks are refused (they could point anywhere); so is anything that is
    not a regular file or a folder.
    """
    with os.scandir(root) as entries:
        if next(entries, None) is None:
            return []  # the common case of an app that wrote nothing: no walk
    out = []
    root = os.path.abspath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in list(dirnames) + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if os.path.islink(full):
                raise UnsafePathError(f"{what} contains a symlink {rel!r} -> {os.readlink(full)!r}; "
                                      "write regular files only")
            if name in filenames:
                import stat

                if not stat.S_ISREG(st.st_mode):
                    raise UnsafePathError(f"{what} contains {rel!r}, which is not a regular file")
                out.append((rel.replace(os.sep, "/"), st.st_size))
    out.sort()
    return out


