"""Keep secrets out of records, logs, outputs and notebooks.

>>> redact({"key": "AKIA...", "endpoint_url": "http://127.0.0.1:5000"})
{'key': '***', 'endpoint_url': 'http://127.0.0.1:5000'}
>>> redact_text("https://user:pw@host/x?sig=abc&a=1")
'https://***@host/x?sig=***&a=1'
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

_SECRET_NAME = re.compile(
    r"(secret|token|passw|credential|private|signature|^sig$|^sas|sas_|apikey|api_key|"
    r"access_key|account_key|connection_string|connectionstring|^key$|^auth|session)",
    re.IGNORECASE,
)
#: The same rule as a regular expression to apply case-insensitively, for code
#: that is not Python (the JupyterLab extension gets it from the server).
SECRET_NAME_PATTERN = _SECRET_NAME.pattern
# user:password@ before a host; a password may itself hold "@", so take up to the last one
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<info>[^/\s]*)@(?=[^@/\s]*(?:[/\s]|$))",
                           re.IGNORECASE)
# Azure-style connection strings: AccountKey=...; SharedAccessSignature=...; Password=...
_SECRET_PAIR = re.compile(r"(?P<name>\b(?:AccountKey|SharedAccessSignature|SharedAccessKey|Password|Pwd|"
                          r"client_secret|secret|token|api_key)=)(?P<value>[^;&\s]+)", re.IGNORECASE)
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
    r"x-goog-signature|x-goog-credential|token|access_token|sv|se|sp|st|skoid|sktid|skt|ske|sks|skv)=)"
    r"(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """Does a key name look like it holds a credential?"""
    return bool(_SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """Mask credentials embedded in URLs (user:password@, signed query strings)."""
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    text = _SECRET_QUERY.sub(lambda m: m.group("name") + MASK, text)
    return _SECRET_PAIR.sub(lambda m: m.group("name") + MASK, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking fields and URL credentials masked."""
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret_name(k) and v not in (None, "", False) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def drop_secrets(options: dict) -> dict:
    """``options`` without the secret-looking keys (for job files written back to disk)."""
    out = {}
    for k, v in options.items():
        if is_secret_name(str(k)):
            continue
        out[k] = drop_secrets(v) if isinstance(v, dict) else v
    return out


#: secret values shorter than this are not hunted for in free text (too many false hits)
MIN_SECRET_LENGTH = 6


def secret_values(*sources: Any, environ: dict | None = None) -> set[str]:
    """The values of secret-looking fields anywhere in ``sources`` (and of
    secret-looking variables of ``environ``), to be masked wherever an app
    might print them: strings and numbers (not booleans) of at least
    :data:`MIN_SECRET_LENGTH` characters. The one rule for what a secret
    value is, for the engine and the Jupyter server's job processes alike.

    >>> sorted(secret_values({"app": {"api_key": "k-123456789", "env": {"DB_PASSWORD": 12345678}}, "n": 3},
    ...                      environ={"GITHUB_TOKEN": "ghp_abcdefgh"}))
    ['12345678', 'ghp_abcdefgh', 'k-123456789']
    """
    found: set[str] = set()

    def walk(value: Any, secret: bool = False) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, secret or (isinstance(k, str) and is_secret_name(k)))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, secret)
        elif secret and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if len(text) >= MIN_SECRET_LENGTH:
                found.add(text)

    for source in sources:
        walk(source)
    walk({k: v for k, v in (environ or {}).items() if is_secret_name(k)}, True)
    return found


def mask_values(text: str, values: set[str]) -> str:
    """``text`` with every one of ``values`` masked (and URL credentials, as :func:`redact_text`).

    >>> mask_values("auth failed for k-123456789", {"k-123456789"})
    'auth failed for ***'
    """
    for value in sorted(values, key=len, reverse=True):  # a secret that contains another goes first
        if value in text:
            text = text.replace(value, MASK)
    return redact_text(text)


def masker(values: set[str]):
    """A function that masks ``values`` and URL credentials in a text (see :func:`mask_values`).

    >>> masker({"s3cr3t-v4lue"})("key=s3cr3t-v4lue at https://u:pw@host/x")
    'key=*** at https://***@host/x'
    """
    return lambda text: mask_values(text, values)
