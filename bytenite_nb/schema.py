"""JSON Schema checks whose errors name the field, the way users read them.

>>> schema = {"type": "object", "properties": {"chunk_size": {"type": "integer"}}}
>>> [str(e) for e in check({"chunk_size": "64k"}, schema, "params.partitioner")]
['params.partitioner.chunk_size: expected integer, got "64k"']
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import sys
import threading
from typing import TYPE_CHECKING, Any, Iterable

from .exceptions import FieldError, JobValidationError

if TYPE_CHECKING:
    import jsonschema

_import_lock = threading.Lock()


def _jsonschema():
    """``jsonschema``, imported on first use, without compiling its IRI grammar.

    Importing ``jsonschema`` registers every format checker it can, and where
    ``rfc3987_syntax`` is installed (Jupyter brings it) that compiles a grammar
    for over a second. bytenite-nb validates without format checking, so while
    jsonschema is imported here ``rfc3987_syntax`` is a stand-in that imports the
    real module the first time anyone checks an ``iri`` format: the checkers stay,
    their cost moves to the one who uses them.

    >>> _jsonschema().Draft202012Validator({"type": "integer"}).is_valid(3)
    True
    """
    module = sys.modules.get("jsonschema")
    if module is not None and hasattr(module, "validators"):
        return module
    with _import_lock:
        if "rfc3987_syntax" in sys.modules or importlib.util.find_spec("rfc3987_syntax") is None:
            return importlib.import_module("jsonschema")
        sys.modules["rfc3987_syntax"] = _DeferredIRISyntax()
        try:
            return importlib.import_module("jsonschema")
        finally:
            if isinstance(sys.modules.get("rfc3987_syntax"), _DeferredIRISyntax):
                del sys.modules["rfc3987_syntax"]


class _DeferredIRISyntax(type(sys)):
    """Stands in for ``rfc3987_syntax`` while jsonschema is imported; its one
    function loads the real module when it is first called."""

    def __init__(self):
        super().__init__("rfc3987_syntax")

    @staticmethod
    def is_valid_syntax(*args, **kwargs):
        return importlib.import_module("rfc3987_syntax").is_valid_syntax(*args, **kwargs)

_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def show(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of a value, for error messages."""
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def join_field(prefix: str, *parts: Any) -> str:
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` when a close match exists, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _describe(error: "jsonschema.ValidationError", prefix: str) -> list[FieldError]:
    field = join_field(prefix, *error.absolute_path)
    v, inst, val = error.validator, error.instance, error.validator_value
    if inst == "" and (v == "pattern" or v == "minLength" and val == 1):
        return [FieldError(field, "must not be empty")]
    # A schema may say in words what it wants (``x-expected``), for any failure: "expected an image name, got 7".
    expected = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if expected and v not in ("required", "additionalProperties"):
        return [FieldError(field, f"expected {expected}, got {show(inst)}")]
    if v == "type":
        wanted = " or ".join(val) if isinstance(val, list) else val
        # JSON has no separate integer type, but bool is not a number to a user.
        return [FieldError(field, f"expected {wanted}, got {show(inst)}")]
    if v == "required":
        missing = [name for name in val if isinstance(inst, dict) and name not in inst]
        return [FieldError(join_field(field, name), "is required") for name in missing]
    if v == "additionalProperties" and isinstance(inst, dict):
        known = list((error.schema.get("properties") or {}).keys())
        extra = [k for k in inst if k not in known]
        return [
            FieldError(join_field(field, k), "unknown field" + suggest(k, known)) for k in extra
        ]
    if v == "enum":
        options = ", ".join(show(o) for o in val)
        return [FieldError(field, f"expected one of {options}; got {show(inst)}")]
    if v == "minimum":
        return [FieldError(field, f"must be >= {val}, got {show(inst)}")]
    if v == "exclusiveMinimum":
        return [FieldError(field, f"must be > {val}, got {show(inst)}")]
    if v == "maximum":
        return [FieldError(field, f"must be <= {val}, got {show(inst)}")]
    if v == "pattern":
        # A schema may say in words what its pattern means (``x-message``).
        return [FieldError(field, f"{error.schema.get('x-message') or f'does not match {val}'}, got {show(inst)}")]
    if v == "minItems":
        return [FieldError(field, f"needs at least {val} item(s)")]
    if v in ("anyOf", "oneOf") and error.context:
        # Report the branch that got furthest: usually the one the user meant.
        best = _jsonschema().exceptions.best_match(error.context)
        return _describe(best, prefix)
    return [FieldError(field, error.message)]


#: a file name inside a folder: relative, no "..", no NUL (for names of outputs)
SAFE_NAME = {
    "type": "string",
    "pattern": r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\x00\\]+$",
    "x-message": "must be a relative name inside the output folder (no '..', not absolute)",
}


def check(instance: Any, schema: dict | None, prefix: str = "") -> list[FieldError]:
    """Validate ``instance`` against ``schema``; return every error, each naming its field.

    >>> check(3, {"type": "integer", "minimum": 5}, "params.app.n")[0].message
    'must be >= 5, got 3'
    """
    if not schema:
        return []
    jsonschema = _jsonschema()
    # No format_checker: formats are not checked, as JSON Schema's drafts 2019-09 and later say by default.
    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = validator_cls(schema)
    errors: list[FieldError] = []
    seen: set[str] = set()
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        for found in _describe(err, prefix):
            # one "required" error per missing field, each listing them all: say each once
            if str(found) not in seen:
                seen.add(str(found))
                errors.append(found)
    return errors


def require(instance: Any, schema: dict | None, prefix: str = "") -> None:
    """Raise what :func:`check` finds: the :class:`FieldError` when there is one,
    a :class:`JobValidationError` listing them all when there are several.

    >>> require({"cwd": "x"}, {"type": "object", "required": ["command"]}, "app")
    Traceback (most recent call last):
    ...
    bytenite_nb.exceptions.FieldError: app.command: is required
    """
    raise_errors(check(instance, schema, prefix))


def raise_errors(errors: list[FieldError]) -> None:
    """Raise ``errors``, if any: the one :class:`FieldError`, or a :class:`JobValidationError` of several."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise JobValidationError(errors)


def check_schema(schema: dict, where: str) -> list[FieldError]:
    """Check that ``schema`` is itself a valid JSON Schema."""
    jsonschema = _jsonschema()
    try:
        validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return [FieldError(where, f"not a valid JSON Schema: {exc.message}")]
    return []


def with_defaults(params: dict | None, schema: dict | None) -> dict:
    """``params`` with the top-level ``default`` values of ``schema`` filled in.

    >>> with_defaults({"a": 1}, {"properties": {"b": {"default": 2}}})
    {'a': 1, 'b': 2}
    """
    out = dict(params or {})
    for name, prop in ((schema or {}).get("properties") or {}).items():
        if name not in out and isinstance(prop, dict) and "default" in prop:
            out[name] = prop["default"]
    return out
