"""Result tables (CSV, TSV, JSON Lines, Parquet): their format, read and written
with pyarrow, for the assemblers that combine tables."""

from __future__ import annotations

import json
import os
from typing import Sequence

from ..exceptions import AssemblyError, FieldError
from .base import ResultFile

#: format -> the extension of a file written in it
FORMATS = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}
#: file extension -> format
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}


def input_format(result: ResultFile, chunk: int, given: str | None = None) -> str:
    """The format of a result file: ``given``, else from its extension.

    >>> input_format(ResultFile("counts.tsv", 0, "file:///counts.tsv"), 0)
    'tsv'
    >>> input_format(ResultFile("result.bin", 0, "file:///result.bin"), 2)
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.FieldError: params.assembler.input_format: chunk 2 (result.bin): cannot tell the format from the extension; give input_format (csv, tsv, jsonl or parquet)
    """
    if given:
        return given
    fmt = EXTENSIONS.get(os.path.splitext(result.name)[1].lower())
    if fmt is None:
        raise FieldError("params.assembler.input_format",
                         f"chunk {chunk} ({result.name}): cannot tell the format from the extension; "
                         "give input_format (csv, tsv, jsonl or parquet)")
    return fmt


def read_table(result: ResultFile, chunk: int, given: str | None = None, text_columns: Sequence[str] = (),
               nulls: Sequence[str] | None = None):
    """Read one result file (CSV, TSV, JSON Lines or Parquet) as an Arrow table.

    ``text_columns`` of CSV and TSV files are read as text, untouched; ``nulls``,
    when given, are the only CSV and TSV values read as null, in every column
    (text columns too; by default pyarrow's list, and never in text). A
    malformed file is an :class:`AssemblyError` naming the chunk, the file and,
    for CSV and TSV, the line.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "r.csv")
    >>> _ = open(path, "w").write("id,n\\n007,1\\n8,2,3\\n")
    >>> read_table(ResultFile("r.csv", 17, "file://" + path, path), 4)
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.AssemblyError: chunk 4 (r.csv), line 3: expected 2 columns, got 3
    """
    import pyarrow as pa

    fmt = input_format(result, chunk, given)
    with result.open() as f:
        data = f.read()
    where = f"chunk {chunk} ({result.name})"
    if fmt in ("csv", "tsv"):
        import pyarrow.csv as pcsv

        if not data.strip():
            return pa.table({})
        delimiter = "\t" if fmt == "tsv" else ","
        try:
            # Keys stay text: "007" and "7" are two words, not one number.
            with pa.BufferReader(data) as source:
                header = pcsv.open_csv(source, parse_options=pcsv.ParseOptions(delimiter=delimiter)).schema.names
            types = {name: pa.string() for name in text_columns if name in header}
            null_options = {} if nulls is None else {"null_values": list(nulls), "strings_can_be_null": True}
            return pcsv.read_csv(pa.BufferReader(data), read_options=pcsv.ReadOptions(),
                                 parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                                 convert_options=pcsv.ConvertOptions(column_types=types, **null_options))
        except pa.ArrowInvalid as exc:
            raise AssemblyError(_csv_problem(data, delimiter, where, exc)) from exc
    try:
        if fmt == "jsonl":
            import pyarrow.json as pjson

            if not data.strip():
                return pa.table({})
            try:
                return pjson.read_json(pa.BufferReader(data))
            except pa.ArrowInvalid:
                # pyarrow wants one type per column; read it line by line to keep
                # the rows (a column of mixed types as text) or name the bad line
                return read_json_lines(data, where)
        import pyarrow.parquet as pq

        return pq.read_table(pa.BufferReader(data))
    except pa.ArrowInvalid as exc:
        raise AssemblyError(f"{where}: not valid {fmt}: {exc}") from exc


def read_json_lines(data: bytes, where: str = "data"):
    """JSON Lines as an Arrow table, line by line: a column whose values are of
    more than one JSON type (or nested) holds them as text (JSON text, strings as
    they are). A line that is not a JSON object is an error naming its line.

    >>> read_json_lines(b'{"a": 1}\\n\\n{"a": "x", "b": [1]}\\n').to_pylist()
    [{'a': '1', 'b': None}, {'a': 'x', 'b': '[1]'}]
    >>> read_json_lines(b'{"a": 1}\\n{"a": \\n', "chunk 2 (r.jsonl)")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.AssemblyError: chunk 2 (r.jsonl), line 2: not valid JSON: Expecting value: line 1 column 7 (char 6)
    """
    import pyarrow as pa

    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise AssemblyError(f"{where}, line {number}: not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise AssemblyError(f"{where}, line {number}: not a JSON object")
        rows.append(row)
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        kinds = {type(v) for v in values if v is not None}
        if kinds <= {int} or kinds <= {int, float} or kinds <= {str} or kinds <= {bool}:
            columns[name] = pa.array(values)
        else:
            columns[name] = pa.array([v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                                      for v in values], pa.string())
    return pa.table(columns)


def _csv_problem(data: bytes, delimiter: str, where: str, exc: Exception) -> str:
    """Say which line of a CSV file is wrong (pyarrow says only what is wrong)."""
    import csv
    import io

    reader = csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline=""), delimiter=delimiter)
    line = 1
    try:
        width = len(next(reader))
        for row in reader:
            if row and len(row) != width:
                return f"{where}, line {line + 1}: expected {width} columns, got {len(row)}"
            line = reader.line_num
    except (csv.Error, StopIteration):
        pass
    return f"{where}: {exc}"


def write_table(table, path: str, fmt: str) -> None:
    """Write ``table`` to ``path`` as csv, tsv, jsonl or parquet.

    >>> import os, tempfile, pyarrow as pa
    >>> path = os.path.join(tempfile.mkdtemp(), "t.jsonl")
    >>> write_table(pa.table({"k": ["a"], "n": [1]}), path, "jsonl")
    >>> open(path).read()
    '{"k": "a", "n": 1}\\n'
    """
    if fmt in ("csv", "tsv"):
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path, pcsv.WriteOptions(delimiter="\t" if fmt == "tsv" else ","))
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        with open(path, "w", encoding="utf-8") as out:
            for batch in table.to_batches(65536):
                for row in batch.to_pylist():
                    out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
