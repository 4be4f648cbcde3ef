"""Python apps for the runtime-contract tests (importable on the workers)."""

import os
import zipfile



def echo(chunk_path, results_dir, params):
    """Chunk 0 returns text, chunk 1 bytes, chunk 2 writes a file itself."""
    data = open(chunk_path).read()
    number = {"alpha": 0, "beta": 1, "gamma": 2}[data]
    if number == 0:
        return f"0:{data}"
    if number == 1:
        return f"1:{data}".encode()
    with open(os.path.join(results_dir, "written.txt"), "w") as f:
        f.write(f"2:{data}")
    return None


def returns_int(chunk_path, results_dir, params):
    return 42


def raises(chunk_path, results_dir, params):
    raise ValueError("row 7 has 3 columns, expected 4")


def list_zip(chunk_path, results_dir, params):
    """A chunk of several files is a zip archive; one file is the file itself."""
    if zipfile.is_zipfile(chunk_path):
        with zipfile.ZipFile(chunk_path) as zf:
            return ",".join(zf.namelist()) + "\n"
    return "sub/f3.txt\n" if open(chunk_path).read() == "delta" else "?\n"
