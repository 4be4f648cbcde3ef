"""``merge-key``: the fan-in of a map-reduce - one row per key, other columns aggregated."""

from __future__ import annotations

import fnmatch
from typing import Sequence

from ..exceptions import AssemblyError, FieldError
from ..schema import SAFE_NAME
from .base import Assembler, ChunkResult, ResultFile, output_path  # noqa: F401 (ResultFile: the docstring example)
from .tables import FORMATS, input_format, read_table, write_table

#: how the values of a column can combine per key
AGGREGATIONS = ("sum", "min", "max", "first", "last", "count", "mean")
#: aggregations that need numbers (min and max take anything ordered, text too)
NUMERIC = ("sum", "mean")


class MergeKey(Assembler):
    """Merge result tables whose rows share key columns into one table with one
    row per key: the fan-in of a map-reduce (word counts, per-key statistics).

    ``on`` names the key column(s); ``aggregations`` maps every other column to
    keep onto how its values combine: ``sum``, ``min``, ``max``, ``mean`` (nulls
    skipped; ``mean`` is the mean of every row, not of per-chunk means),
    ``count`` (rows with a value), ``first`` and ``last`` (the value of the first
    or last row of the key, null included, in chunk order then row order).
    Columns named nowhere are dropped. Results may be CSV, TSV, JSON Lines or
    Parquet (by extension, or ``input_format``); ``pattern`` keeps only result
    files whose name matches a glob. The output ``output_name`` (default
    ``output`` + the extension of ``format``, which defaults to the first
    result's format) is sorted by key, nulls last. CSV and TSV keys are read as
    text, so ``007`` and ``7`` stay two keys.

    Memory holds one result file and one row per distinct key: it grows with
    the number of distinct keys, not with the size of the input.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> results = []
    >>> for i, text in enumerate(["word,n\\nto,2\\nbe,1\\n", "word,n\\nbe,3\\nor,1\\n"]):
    ...     path = os.path.join(folder, f"{i}.csv")
    ...     _ = open(path, "w").write(text)
    ...     results.append(ChunkResult(i, (ResultFile("part.csv", len(text), "file://" + path, path),)))
    >>> _ = MergeKey().assemble(results, folder, {"on": "word", "aggregations": {"n": "sum"}})
    >>> print(open(os.path.join(folder, "output.csv")).read())
    "word","n"
    "be",4
    "or",1
    "to",2
    <BLANKLINE>
    """

    schema = {
        "type": "object",
        "properties": {
            "on": {
                "anyOf": [{"type": "string", "minLength": 1},
                          {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}],
                "description": "The key column, or a list of key columns.",
            },
            "aggregations": {
                "type": "object",
                "additionalProperties": {"enum": list(AGGREGATIONS)},
                "default": {},
                "description": "Column name -> how its values combine per key: sum, min, max, first, last, "
                               "count or mean. Columns not named are dropped.",
            },
            "format": {"enum": list(FORMATS),
                       "description": "Format of the output: csv, tsv, jsonl or parquet "
                                      "(default: the format of the first result)."},
            "input_format": {"enum": list(FORMATS),
                             "description": "Format of the result files (default: from each file's extension)."},
            "output_name": {**SAFE_NAME, "description": "Name of the output file (default: output.<format>)."},
            "pattern": {"type": "string", "description": "Only result files matching this glob."},
        },
        "required": ["on"],
        "additionalProperties": False,
    }

    def assemble(self, results: Sequence[ChunkResult], output_dir: str, params: dict):
        keys = [params["on"]] if isinstance(params["on"], str) else list(params["on"])
        aggregations = dict(params.get("aggregations") or {})
        for column in aggregations:
            if column in keys:
                raise FieldError(f"params.assembler.aggregations.{column}",
                                 f'"{column}" is a key column (params.assembler.on)')
        files = [(chunk.index, f) for chunk in results for f in chunk.files
                 if not params.get("pattern") or fnmatch.fnmatch(f.name, params["pattern"])]
        merger = KeyMerger(keys, aggregations)
        for index, result in files:
            merger.add(read_table(result, index, params.get("input_format"), text_columns=keys), index, result.name)
        fmt = params.get("format") or (input_format(files[0][1], files[0][0], params.get("input_format"))
                                       if files else "csv")
        name = params.get("output_name") or "output" + FORMATS[fmt]
        write_table(merger.result(), output_path(output_dir, name), fmt)


class KeyMerger:
    """One row per distinct key, holding each column's running aggregate.

    Tables are added in order; each is reduced to one row per key at once, and
    the reduced tables are folded into the running state whenever they hold as
    many rows as it (so the work stays proportional to the rows, not to rows x
    tables). ``mean`` keeps a sum and a count, so it is exact across tables.

    >>> import pyarrow as pa
    >>> merger = KeyMerger(["k"], {"v": "mean", "n": "count"})
    >>> merger.add(pa.table({"k": ["a", "b"], "v": [1, 10], "n": [1, None]}), 0, "x.csv")
    >>> merger.add(pa.table({"k": ["a", "a"], "v": [2, 3], "n": [5, 6]}), 1, "x.csv")
    >>> merger.result().to_pylist()
    [{'k': 'a', 'v': 2.0, 'n': 3}, {'k': 'b', 'v': 10.0, 'n': 0}]
    """

    def __init__(self, keys: list[str], aggregations: dict[str, str]):
        self.keys = keys
        self.aggregations = aggregations
        self.state = None  # one row per key: k0.., then each column's partial values
        self.pending: list = []
        self.origins: list[str] = []  # where each pending table came from
        self.pending_rows = 0

    def add(self, table, chunk: int, file_name: str) -> None:
        """Reduce ``table`` (the result ``file_name`` of chunk ``chunk``) and fold it in."""
        import pyarrow as pa
        import pyarrow.compute as pc

        names = table.column_names
        if not names:  # an empty file
            return
        for key in self.keys:
            if key not in names:
                raise AssemblyError(f'chunk {chunk} ({file_name}): no column "{key}"')
        for column, how in self.aggregations.items():
            if column not in names:
                raise FieldError(f"params.assembler.aggregations.{column}",
                                 f'no column "{column}" in chunk {chunk} ({file_name}); it has {", ".join(names)}')
            if how in NUMERIC and not _numeric(table[column].type):
                raise AssemblyError(f'chunk {chunk} ({file_name}): column "{column}" holds '
                                    f"{table[column].type}, {how} needs numbers")
        internal = {}
        for i, key in enumerate(self.keys):
            internal[f"k{i}"] = table[key]
        for i, (column, how) in enumerate(self.aggregations.items()):
            values = table[column]
            if how == "mean":
                values = pc.cast(values, pa.float64())
            internal[f"v{i}"] = values
        partial = self._reduce(pa.table(internal), first=True)
        self.pending.append(partial)
        self.origins.append(f"chunk {chunk} ({file_name})")
        self.pending_rows += partial.num_rows
        if self.state is None or self.pending_rows >= self.state.num_rows:
            self._fold()

    def _fold(self) -> None:
        import pyarrow as pa

        tables = ([self.state] if self.state is not None else []) + self.pending
        try:
            combined = pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise AssemblyError(self._type_clash(tables, exc)) from exc
        self.state = self._reduce(combined, first=False) if len(tables) > 1 else combined
        self.pending, self.origins, self.pending_rows = [], [], 0

    def _type_clash(self, tables: list, exc: Exception) -> str:
        """Name the first result whose column types clash with those before it."""
        import pyarrow as pa

        origins = (["the results before"] if self.state is not None else []) + self.origins
        columns = list(self.aggregations)
        for i in range(1, len(tables)):
            try:
                pa.concat_tables(tables[:i + 1], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                before = pa.concat_tables(tables[:i], promote_options="permissive").schema
                for internal in before.names:
                    name = (self.keys if internal[0] == "k" else columns)[int(internal[1:])]
                    if before.field(internal).type != tables[i].schema.field(internal).type:
                        return (f'{origins[i]}: column "{name}" holds {tables[i].schema.field(internal).type}, '
                                f"earlier results {before.field(internal).type}")
        return f"the results' columns have types that do not combine: {exc}"

    def _reduce(self, table, first: bool):
        """One row per key of ``table``: rows' values (``first``) or partials combined."""
        import pyarrow as pa
        import pyarrow.compute as pc

        keep_nulls = pc.ScalarAggregateOptions(skip_nulls=False)
        specs, out = [], []
        for i, how in enumerate(self.aggregations.values()):
            v = f"v{i}"
            if how == "mean":
                specs += [(v, "sum"), (v if first else f"c{i}", "count" if first else "sum")]
                out += [f"v{i}", f"c{i}"]
                continue
            if how == "count" and not first:
                how = "sum"
            specs.append((v, how, keep_nulls) if how in ("first", "last") else (v, how))
            out.append(v)
        # A column with no value at all has no type yet (null), and no kernel
        # aggregates it: its partials are nulls (zero for a count), and take
        # the type of the other results' column when combined with them.
        typed = [spec for spec in specs if not pa.types.is_null(table[spec[0]].type) or spec[1] == "count"]
        grouped = table.group_by([f"k{i}" for i in range(len(self.keys))], use_threads=False).aggregate(typed)
        columns = {f"k{i}": grouped[f"k{i}"] for i in range(len(self.keys))}
        for spec, name in zip(specs, out):
            source, how = spec[:2]
            columns[name] = grouped[f"{source}_{how}"] if spec in typed else pa.nulls(grouped.num_rows)
        return pa.table(columns)

    def result(self):
        """The merged table, sorted by key, with the user's column names."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.pending:
            self._fold()
        names = list(self.keys) + list(self.aggregations)
        if self.state is None:
            return pa.table({name: pa.array([], pa.string()) for name in names})
        state = self.state
        columns = [state[f"k{i}"] for i in range(len(self.keys))]
        for i, how in enumerate(self.aggregations.values()):
            if how == "mean":
                count = state[f"c{i}"]
                columns.append(pc.if_else(pc.equal(count, 0), pa.scalar(None, pa.float64()),
                                          pc.divide(state[f"v{i}"], pc.cast(count, pa.float64()))))
            else:
                columns.append(state[f"v{i}"])
        merged = pa.table(columns, names=names)
        order = pc.sort_indices(merged, sort_keys=[(key, "ascending", "at_end") for key in self.keys])
        return merged.take(order)


def _numeric(arrow_type) -> bool:
    import pyarrow.types as t

    return t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type) or t.is_null(arrow_type)
