"""The compiled row check of CSV/TSV tables (``rowscan.c``), called through ctypes.

``rowscan.c`` is built into ``_rowscan.native`` (a shared library) beside this module when the
package is installed (``hatch_build.py``, with the machine's C compiler; no
Python headers needed). Where it could not be built, :func:`check_rows`
returns None and :mod:`bytenite_nb.partitioners.rows` counts fields with numpy
instead: the same answers, at six to ten times the CPU time. The call releases
the GIL (ctypes does), so threads check blocks side by side.
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import NamedTuple

log = logging.getLogger(__name__)

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_rowscan.native")
#: the interface this module speaks; rowscan.c's ROWSCAN_VERSION must match
VERSION = 2


class RowScan(NamedTuple):
    """What :func:`check_rows` found in a block that starts at a row's start."""

    rows: int  #: whole rows (each ended by a newline outside quotes)
    end: int  #: the offset just after the last whole row, 0 if none
    first_bad: int  #: the start of the first whole row with another number of fields, -1 if none
    inside: bool  #: the block ends inside a quoted field
    trailing_delimiters: int  #: delimiters outside quotes after the last whole row


def _load():
    if not os.path.exists(LIBRARY):
        return None
    try:
        lib = ctypes.CDLL(LIBRARY)
        version = lib.rowscan_version()
    except (OSError, AttributeError) as e:
        log.warning("%s cannot be loaded (%s): rows are checked with numpy; reinstall bytenite-nb to rebuild it",
                    LIBRARY, e)
        return None
    if version != VERSION:
        log.warning("%s is from another version of bytenite-nb (%s, want %s): rows are checked with numpy; "
                    "reinstall bytenite-nb to rebuild it", LIBRARY, version, VERSION)
        return None
    lib.rowscan_check.restype = ctypes.c_longlong
    lib.rowscan_check.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint8, ctypes.c_longlong,
                                  ctypes.c_void_p]
    lib.rowscan_count.restype = ctypes.c_longlong
    lib.rowscan_count.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint8]
    return lib


_lib = _load()


def available() -> bool:
    """Whether the compiled check was built and loads.

    >>> available() in (True, False)
    True
    """
    return _lib is not None


def check_rows(data, delimiter: str, fields: int) -> RowScan | None:
    """Count the fields of every whole row of ``data`` (bytes-like, starting at
    a row's start outside quotes) against ``fields``, the way
    :func:`~bytenite_nb.partitioners.rows.row_fields` does; None when the
    compiled check is not available.

    >>> scan = check_rows(b'a,b\\n1,"x,\\ny"\\n2\\n3,4', ",", 2)
    >>> scan is None or scan == RowScan(rows=3, end=15, first_bad=13, inside=False, trailing_delimiters=1)
    True
    """
    if len(delimiter) != 1 or delimiter in '"\n\0' or ord(delimiter) > 127:
        raise ValueError(f"cannot check rows delimited by {delimiter!r}: one ASCII character other than a "
                         "double quote, a newline or NUL")
    if _lib is None:
        return None
    import numpy as np

    arr = np.frombuffer(data, dtype=np.uint8)
    out = np.empty(4, dtype=np.int64)
    rows = _lib.rowscan_check(arr.ctypes.data, len(arr), ord(delimiter), fields - 1, out.ctypes.data)
    end, first_bad, inside, trailing = out.tolist()
    return RowScan(rows, end, first_bad, bool(inside), trailing)


def count_byte(data, byte: int) -> int | None:
    """How many bytes of ``data`` (bytes-like) equal ``byte``; None when the
    compiled library is not available.

    >>> count_byte(b'a"b""c', ord('"')) in (3, None)
    True
    """
    if _lib is None:
        return None
    import numpy as np

    arr = np.frombuffer(data, dtype=np.uint8)
    return _lib.rowscan_count(arr.ctypes.data, len(arr), byte)
