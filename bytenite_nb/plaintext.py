"""Docstrings as plain text, for places that show them to users.

Component docstrings are written in reStructuredText (``double backticks``,
``:func:`roles```, ``Example::``). The sidebar, the notebook builder and the
command line show them as text, so they go through :func:`plain_text` once,
on the Python side, before anyone sees them: nothing downstream interprets
markup.

>>> plain_text("Split on ``chunk_size`` bytes; see :func:`~bytenite_nb.storage.parse_location`.")
'Split on chunk_size bytes; see parse_location().'
"""

from __future__ import annotations

import re

# :role:`text` or :role:`title <target>`; also :domain:role:`...`
_ROLE = re.compile(r":(?:[a-zA-Z0-9_-]+:)?([a-zA-Z0-9_-]+):`([^`]+)`")
# `title <https://...>`_ and `name`_ (hyperlink references)
_LINK = re.compile(r"`([^`<]+?)\s*<([^>]+)>`__?")
_REFERENCE = re.compile(r"`([^`]+)`__?")
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_INTERPRETED = re.compile(r"(?<![`\w])`([^`]+)`(?![`\w])")
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_DIRECTIVE = re.compile(r"^([ \t]*)\.\. ([a-zA-Z-]+)::[ \t]*", re.MULTILINE)
_LITERAL_MARKER = re.compile(r"(\S)\s*::$", re.MULTILINE)
_LONE_MARKER = re.compile(r"^\s*::\s*$\n?", re.MULTILINE)
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
# roles that name callables read as calls: :func:`f` -> f()
_CALLABLE_ROLES = ("func", "meth")


def _role(match: re.Match) -> str:
    role, text = match.group(1), match.group(2).strip()
    titled = re.match(r"(.+?)\s*<[^>]+>$", text)
    if titled:
        return titled.group(1)
    if text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    text = text.lstrip("!")
    if role in _CALLABLE_ROLES and not text.endswith(")"):
        text += "()"
    return text


def plain_text(doc: str | None) -> str:
    """``doc`` (reST-ish) as plain text: literals, roles, links and ``::`` markers
    become their words; paragraphs and line breaks stay as they are.

    >>> plain_text("Reads ``CHUNK_NUMBER`` (a :class:`TaskContext` field).")
    'Reads CHUNK_NUMBER (a TaskContext field).'
    >>> plain_text("Run it like this::\\n\\n    bytenite-nb run job.json")
    'Run it like this:\\n\\n    bytenite-nb run job.json'
    >>> plain_text("See `the docs <https://example.org/docs>`_ and **this**.")
    'See the docs (https://example.org/docs) and this.'
    """
    if not doc:
        return ""
    text = _ROLE.sub(_role, doc)
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    text = _LITERAL.sub(lambda m: m.group(1), text)
    text = _REFERENCE.sub(lambda m: m.group(1), text)
    text = _INTERPRETED.sub(lambda m: m.group(1), text)
    text = _STRONG.sub(lambda m: m.group(1), text)
    text = _DIRECTIVE.sub(lambda m: f"{m.group(1)}{m.group(2).capitalize()}: ", text)
    text = _LONE_MARKER.sub("", text)
    text = _LITERAL_MARKER.sub(lambda m: m.group(1) + ":", text)
    return _TRAILING_SPACE.sub("", text)


def plain_descriptions(schema):
    """A copy of a JSON Schema with every ``description`` (and ``title``) as plain text.

    >>> plain_descriptions({"properties": {"n": {"description": "Uses ``n`` bytes."}}})
    {'properties': {'n': {'description': 'Uses n bytes.'}}}
    """
    if isinstance(schema, list):
        return [plain_descriptions(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("description", "title") and isinstance(value, str):
            out[key] = plain_text(value)
        elif key in ("default", "const", "enum", "examples"):
            out[key] = value  # values, not schemas
        else:
            out[key] = plain_descriptions(value)
    return out
