"""``schema-merge``: every result row checked against one schema, written as one table."""

from __future__ import annotations

import datetime
import decimal
import fnmatch
import json
import os
import tempfile
from typing import Sequence

from ..bad_records import POLICIES, BadRecords
from ..exceptions import FieldError, ResultFormatError
from ..schema import SAFE_NAME
from .base import Assembler, ChunkResult, ResultFile, output_path
from .tables import FORMATS, input_format, read_table

#: where invalid rows go (``on_invalid: skip``), beside the output
INVALID_NAME = "_invalid.jsonl"
#: rows validated against a JSON Schema at a time
BATCH = 4096
#: rows cast at a time; a slice that fails is cast value by value to find the rows at fault
CAST_SLICE = 1024
#: the only CSV and TSV value read as null
CSV_NULLS = ("",)
#: a JSON Schema property's ``type`` -> the Arrow type of its column
JSON_TYPES = {"integer": "int64", "number": "double", "string": "string", "boolean": "bool"}


class SchemaMerge(Assembler):
    """Check every row of every result table (CSV, TSV, JSON Lines, Parquet)
    against one schema and write the valid rows as one table ``output_name``
    (default ``output`` + the extension of ``format``: ``parquet``, the default,
    ``csv``, ``tsv`` or ``jsonl``), result after result (memory holds one result).

    ``schema`` is either

    - a JSON Schema of a row (an object schema: ``properties``, ``required``,
      ``enum``, ``format``...). A property whose ``type`` is ``integer``,
      ``number``, ``string`` or ``boolean`` (alone or with ``null``) is a column
      of that type (int64, double, string, bool); a value that cannot be one is
      an invalid row. Other columns take the type the results give them (below).
      A null value counts as absent, so ``required`` means present and not null;
    - an Arrow schema, ``{"fields": [{"name": "n", "type": "int64", "nullable":
      false}, ...]}``, ``type`` being any name ``pyarrow.type_for_alias`` knows
      (``int64``, ``double``, ``string``, ``bool``, ``date32``, ``timestamp[us]``...),
      ``nullable`` true unless said. The output has exactly these columns, in this
      order (other columns are dropped); a value that cannot be cast to its
      column's type (``"abc"`` in an ``int64`` column) or a null in a column that
      is not nullable is an invalid row;
    - absent: the output has every column of every result, in the order first
      seen; a result without a column gets nulls there.

    Column types without a schema widen along: null < any type; int8 < ... <
    int64 < double (and the other promotions of ``pyarrow.unify_schemas(...,
    promote_options="permissive")``: narrower floats, timestamp units...); any two
    types that do not promote (an integer and text, a boolean and a number)
    become string. An integer beyond 2**53 widened to double loses precision.
    CSV and TSV values are read with pyarrow's type inference (columns a schema
    types are read as text, then cast); an empty field is null, nothing else is.
    A JSON Lines column whose values mix JSON types is read as text. Unless an
    Arrow schema is given, CSV, TSV and JSON Lines results are read twice: once
    for their columns (the parsed tables kept as Arrow files beside the output
    folder), then for their rows.

    An invalid row fails the assembly (``on_invalid: fail``, the default) with a
    :class:`~bytenite_nb.exceptions.ResultFormatError` naming the chunk, the file,
    the row (1-based, the header not counted) and the reason; with ``skip`` it is
    written to ``_invalid.jsonl`` beside the output, one JSON object a line:
    ``{"chunk", "file", "row", "reason", "record"}`` (the row as read), and
    counted in ``_SUCCESS`` under ``"skipped"``.

    >>> import os, tempfile, pyarrow.parquet as pq
    >>> folder = tempfile.mkdtemp()
    >>> results = []
    >>> for i, text in enumerate(["id,n\\n1,2\\n", "id,n,note\\n2,2.5,hi\\n"]):
    ...     path = os.path.join(folder, f"{i}.csv")
    ...     _ = open(path, "w").write(text)
    ...     results.append(ChunkResult(i, (ResultFile("part.csv", len(text), "file://" + path, path),)))
    >>> SchemaMerge().assemble(results, folder, {})
    >>> table = pq.read_table(os.path.join(folder, "output.parquet"))
    >>> [str(t) for t in table.schema.types], table.to_pylist()
    (['int64', 'double', 'string'], [{'id': 1, 'n': 2.0, 'note': None}, {'id': 2, 'n': 2.5, 'note': 'hi'}])
    """

    schema = {
        "type": "object",
        "properties": {
            "schema": {"type": "object",
                       "description": "A JSON Schema of a row, or an Arrow schema {\"fields\": [{\"name\", \"type\", "
                                      "\"nullable\"}]} (default: the union of the results' columns)."},
            "on_invalid": {"enum": list(POLICIES), "default": "fail",
                           "description": "An invalid row: fail the job, or skip it into _invalid.jsonl "
                                          "(counted in _SUCCESS)."},
            "format": {"enum": list(FORMATS), "default": "parquet", "description": "Format of the output."},
            "input_format": {"enum": list(FORMATS),
                             "description": "Format of the result files (default: from each file's extension)."},
            "output_name": {**SAFE_NAME, "description": "Name of the output file (default: output.<format>)."},
            "pattern": {"type": "string", "description": "Only result files matching this glob."},
        },
        "additionalProperties": False,
    }

    def assemble(self, results: Sequence[ChunkResult], output_dir: str, params: dict):
        policy = params.get("on_invalid") or "fail"
        bad = BadRecords(policy, field="params.assembler.on_invalid")
        fmt = params.get("format") or "parquet"
        files = [(chunk.index, f) for chunk in results for f in sorted(chunk.files, key=lambda f: f.name)
                 if not params.get("pattern") or fnmatch.fnmatch(f.name, params["pattern"])]
        name = params.get("output_name") or "output" + FORMATS[fmt]
        path = output_path(output_dir, name)
        # Text results parsed to learn their columns are kept as Arrow files next to
        # the output folder (the engine's staging), never in it, for the second pass.
        with tempfile.TemporaryDirectory(prefix="schema-merge-", dir=os.path.dirname(os.path.abspath(output_dir))) \
                as spill:
            tables = ResultTables(files, params.get("input_format"), spill)
            target, validator = self.target_schema(params.get("schema"), tables)
            with TableWriter(path, fmt, target) as writer, \
                    InvalidRows(os.path.join(os.path.dirname(path), INVALID_NAME), bad) as invalid:
                for n, (index, result) in enumerate(files):
                    table = tables.read(n)
                    if not table.column_names:  # an empty file
                        continue
                    rows, reasons = conform(table, target)
                    if validator is not None:
                        reasons.update(validate(rows, validator, skip=reasons))
                    if reasons and policy == "fail":
                        row = min(reasons)
                        raise ResultFormatError(f"chunk {index}, file {result.name!r}: row {row + 1}: {reasons[row]}")
                    if reasons:
                        invalid.add(table, reasons, index, result.name)
                        rows = rows.filter([i not in reasons for i in range(rows.num_rows)])
                    writer.write(rows)

    @staticmethod
    def target_schema(spec: dict | None, tables: "ResultTables"):
        """The output's schema, and the JSON Schema validator of rows (or None)."""
        import pyarrow as pa

        if spec is not None and "fields" in spec:
            target = arrow_schema(spec)
            tables.text_columns = target.names  # CSV values are cast from their text, not from a guess
            return target, None
        validator, typed = None, {}
        if spec is not None:
            validator, typed = json_validator(spec), json_schema_types(spec)
        tables.text_columns = list(typed)
        found = union_schema(tables.schemas())
        # the schema's properties first, in its order (typed ones always), then the other columns
        named = [n for n in (spec or {}).get("properties") or {} if n in typed or n in found.names]
        target = pa.schema([pa.field(n, typed[n] if n in typed else found.field(n).type) for n in named]
                           + [field for field in found if field.name not in named])
        return target, validator


class ResultTables:
    """The result files as Arrow tables. :meth:`schemas` reads every one for its
    columns (a Parquet file only its footer) and keeps the parsed text results
    as Arrow files in ``spill``, so that :meth:`read` does not parse them again."""

    def __init__(self, files: list[tuple[int, ResultFile]], given: str | None, spill: str):
        self.files, self.given, self.spill = files, given, spill
        self.text_columns: list[str] = []
        self.spilled: dict[int, str] = {}

    def schemas(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        for n, (index, result) in enumerate(self.files):
            if input_format(result, index, self.given) == "parquet":
                with result.open() as stream:
                    try:
                        yield pq.ParquetFile(stream).schema_arrow
                    except Exception as exc:
                        raise ResultFormatError(f"chunk {index}, file {result.name!r}: not a Parquet file: "
                                                f"{exc}") from None
                continue
            table = self._parse(n)
            path = os.path.join(self.spill, f"{n:06d}.arrow")
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as spilled:
                spilled.write_table(table)
            self.spilled[n] = path
            yield table.schema

    def read(self, n: int):
        """The table of the ``n``-th result file."""
        import pyarrow as pa

        if n in self.spilled:
            path = self.spilled.pop(n)
            with pa.memory_map(path) as source:
                table = pa.ipc.open_file(source).read_all()
            os.remove(path)  # the mapping stays while the table uses it; the disk space goes with it
            return table
        return self._parse(n)

    def _parse(self, n: int):
        index, result = self.files[n]
        return read_table(result, index, self.given, text_columns=self.text_columns, nulls=CSV_NULLS)


class InvalidRows:
    """``_invalid.jsonl``: made at the first invalid row, one JSON object a line;
    every row also counted in ``bad`` (and so in ``_SUCCESS``)."""

    def __init__(self, path: str, bad: BadRecords):
        self.path, self.bad, self.out = path, bad, None

    def __enter__(self):
        return self

    def add(self, table, reasons: dict, chunk: int, file: str) -> None:
        """Write the invalid rows of ``table`` (as read): ``reasons`` maps their index to why."""
        import pyarrow as pa

        if self.out is None:
            self.out = open(self.path, "w", encoding="utf-8")
        indices = list(reasons)
        records = table.take(pa.array(indices, pa.int64())).to_pylist()
        for row, record in zip(indices, records):
            line = json.dumps({"chunk": chunk, "file": file, "row": row + 1, "reason": reasons[row],
                               "record": {k: _jsonable(v) for k, v in record.items()}}, ensure_ascii=False)
            self.out.write(line + "\n")
            self.bad.add(f"row {row + 1}: {reasons[row]}", file=file, chunk=chunk, record=line)

    def __exit__(self, *exc) -> None:
        if self.out is not None:
            self.out.close()


# -- schemas --------------------------------------------------------------------------------


def arrow_schema(spec: dict):
    """The Arrow schema ``{"fields": [{"name", "type", "nullable"}]}`` describes.

    >>> arrow_schema({"fields": [{"name": "t", "type": "timestamp[us]"}, {"name": "n", "type": "int64", "nullable": False}]})
    t: timestamp[us]
    n: int64 not null
    >>> arrow_schema({"fields": [{"name": "n", "type": "integer"}]})
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.FieldError: params.assembler.schema.fields.0.type: no Arrow type "integer" (int64, double, string, bool, timestamp[us]...)
    """
    import pyarrow as pa

    where = "params.assembler.schema.fields"
    fields = spec.get("fields")
    if not isinstance(fields, list) or set(spec) - {"fields"}:
        raise FieldError("params.assembler.schema", 'an Arrow schema is {"fields": [{"name", "type", "nullable"}]}')
    out, seen = [], set()
    for n, field in enumerate(fields):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str) or \
                not isinstance(field.get("type"), str) or set(field) - {"name", "type", "nullable"}:
            raise FieldError(f"{where}.{n}", 'expected {"name": ..., "type": ..., "nullable": true|false}')
        if field["name"] in seen:
            raise FieldError(f"{where}.{n}.name", f'"{field["name"]}" is named twice')
        seen.add(field["name"])
        try:
            arrow_type = pa.type_for_alias(field["type"])
        except (ValueError, KeyError):
            raise FieldError(f"{where}.{n}.type", f'no Arrow type "{field["type"]}" '
                                                  "(int64, double, string, bool, timestamp[us]...)") from None
        out.append(pa.field(field["name"], arrow_type, nullable=bool(field.get("nullable", True))))
    return pa.schema(out)


def json_validator(spec: dict):
    """A validator of rows for the JSON Schema ``spec`` (formats checked), made once."""
    import jsonschema

    cls = jsonschema.validators.validator_for(spec)
    try:
        cls.check_schema(spec)
    except jsonschema.SchemaError as exc:
        raise FieldError("params.assembler.schema", f"not a valid JSON Schema: {exc.message}") from None
    if spec.get("type", "object") != "object":
        raise FieldError("params.assembler.schema", 'the schema of a row has "type": "object"')
    return cls(spec, format_checker=cls.FORMAT_CHECKER)


def json_schema_types(spec: dict) -> dict:
    """Column name -> Arrow type, for the properties whose JSON type is one of
    :data:`JSON_TYPES` (maybe with ``null``).

    >>> json_schema_types({"properties": {"n": {"type": ["integer", "null"]}, "tags": {"type": "array"}}})
    {'n': DataType(int64)}
    """
    import pyarrow as pa

    out = {}
    for name, prop in (spec.get("properties") or {}).items():
        kinds = prop.get("type") if isinstance(prop, dict) else None
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
        kinds = [k for k in kinds if k != "null"]
        if len(kinds) == 1 and kinds[0] in JSON_TYPES:
            out[name] = pa.type_for_alias(JSON_TYPES[kinds[0]])
    return out


def widen(a, b):
    """The type holding values of types ``a`` and ``b``: pyarrow's permissive
    promotion, else string.

    >>> import pyarrow as pa
    >>> widen(pa.int64(), pa.float64()), widen(pa.null(), pa.bool_()), widen(pa.int64(), pa.string())
    (DataType(double), DataType(bool), DataType(string))
    """
    import pyarrow as pa

    if a == b:
        return a
    try:
        return pa.unify_schemas([pa.schema([("x", a)]), pa.schema([("x", b)])],
                                promote_options="permissive").field("x").type
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.string()


def union_schema(schemas):
    """Every column of ``schemas`` in the order first seen, its types widened (:func:`widen`).

    >>> import pyarrow as pa
    >>> union_schema([pa.schema([("a", pa.int64())]), pa.schema([("b", pa.string()), ("a", pa.float64())])])
    a: double
    b: string
    """
    import pyarrow as pa

    types: dict = {}
    for schema in schemas:
        for field in schema:
            types[field.name] = widen(types[field.name], field.type) if field.name in types else field.type
    return pa.schema(list(types.items()))


# -- rows -----------------------------------------------------------------------------------


def conform(table, target):
    """``table`` with the columns of ``target`` (missing ones null), and the
    reasons of the rows that cannot be: ``{row index: reason}``.

    >>> import pyarrow as pa
    >>> rows, reasons = conform(pa.table({"n": ["1", "abc"]}), pa.schema([("n", pa.int64()), ("m", pa.string())]))
    >>> rows.to_pylist(), reasons
    ([{'n': 1, 'm': None}, {'n': None, 'm': None}], {1: 'column "n": \\'abc\\' is not int64'})
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    reasons: dict[int, str] = {}
    arrays = []
    for field in target:
        if field.name in table.column_names:
            column = table[field.name].combine_chunks()
            array, bad = cast_column(column, field.type)
            for row in bad:
                reasons.setdefault(row, f'column "{field.name}": {_jsonable(column[row].as_py())!r} '
                                        f"is not {field.type}")
        else:
            array = pa.nulls(table.num_rows, field.type)
        if not field.nullable and array.null_count:
            for row in pc.indices_nonzero(pc.is_null(array)).to_pylist():
                reasons.setdefault(row, f'column "{field.name}": no value, and it is not nullable')
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=target), dict(sorted(reasons.items()))


def cast_column(column, arrow_type):
    """``column`` cast to ``arrow_type``, and the rows whose value cannot be (null in the cast)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    if column.type == arrow_type:
        return column, []
    if t.is_null(column.type):
        return pa.nulls(len(column), arrow_type), []
    if t.is_string(arrow_type) and (t.is_nested(column.type) or t.is_binary(column.type)):
        return pa.array([None if v is None else json.dumps(_jsonable(v), ensure_ascii=False, sort_keys=True)
                         for v in column.to_pylist()], pa.string()), []
    # widening an integer to a float may round beyond 2**53: the documented cost, not an error
    safe = not (t.is_integer(column.type) and t.is_floating(arrow_type))
    try:
        return pc.cast(column, arrow_type, safe=safe), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    pieces, bad = [], []
    for start in range(0, len(column), CAST_SLICE):
        piece = column.slice(start, CAST_SLICE)
        try:
            pieces.append(pc.cast(piece, arrow_type, safe=safe))
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        values = []
        for i in range(len(piece)):
            try:
                values.append(pc.cast(piece.slice(i, 1), arrow_type, safe=safe)[0])
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                values.append(pa.scalar(None, arrow_type))
                bad.append(start + i)
        pieces.append(pa.array([v.as_py() for v in values], arrow_type))
    return (pa.concat_arrays(pieces) if pieces else pa.array([], arrow_type)), bad


def validate(rows, validator, skip: dict) -> dict[int, str]:
    """The rows of ``rows`` the JSON Schema ``validator`` rejects (but those in
    ``skip``): ``{row index: the first error}``."""
    import pyarrow.types as t

    # numbers, text and booleans are JSON values as they are: only other columns are converted
    convert = [f.name for f in rows.schema if not (t.is_integer(f.type) or t.is_floating(f.type) or
                                                   t.is_string(f.type) or t.is_boolean(f.type) or t.is_null(f.type))]
    reasons = {}
    start = 0
    for batch in rows.to_batches(BATCH):
        for n, row in enumerate(batch.to_pylist()):
            if skip and start + n in skip:
                continue
            doc = {k: v for k, v in row.items() if v is not None}
            for name in convert:
                if name in doc:
                    doc[name] = _jsonable(doc[name])
            error = next(validator.iter_errors(doc), None)
            if error is not None:
                place = error.json_path
                reasons[start + n] = error.message + (f" (at {place})" if place != "$" else "")
        start += batch.num_rows
    return reasons


def _jsonable(value):
    """A Python value from Arrow as JSON has it (dates as ISO text, decimals as numbers)."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


# -- output ---------------------------------------------------------------------------------


class TableWriter:
    """One output table written a piece at a time: Parquet (a ParquetWriter), CSV,
    TSV (a pyarrow CSVWriter) or JSON Lines."""

    def __init__(self, path: str, fmt: str, schema):
        import pyarrow.types as t

        self.path, self.fmt, self.schema = path, fmt, schema
        if fmt in ("csv", "tsv"):
            for field in schema:
                if t.is_nested(field.type):
                    raise ResultFormatError(f'column "{field.name}" holds {field.type}, which {fmt} cannot hold; '
                                            "set format to parquet or jsonl")

    def __enter__(self):
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            self.writer = pq.ParquetWriter(self.path, self.schema)
        elif self.fmt in ("csv", "tsv"):
            import pyarrow.csv as pcsv

            self.writer = pcsv.CSVWriter(self.path, self.schema,
                                         write_options=pcsv.WriteOptions(delimiter="\t" if self.fmt == "tsv" else ","))
        else:
            self.writer = open(self.path, "w", encoding="utf-8")
        return self

    def write(self, table) -> None:
        if not table.num_rows:
            return
        if self.fmt == "jsonl":
            for batch in table.to_batches(BATCH):
                self.writer.write("".join(json.dumps({k: _jsonable(v) for k, v in row.items()}, ensure_ascii=False)
                                          + "\n" for row in batch.to_pylist()))
        else:
            self.writer.write_table(table)

    def __exit__(self, *exc) -> None:
        self.writer.close()
