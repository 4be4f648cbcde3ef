"""Job ids: fresh ones, and the rule a given one must follow.

An id that is used again means "resume this job", so fresh ids must never
collide, even for jobs started in the same second.
"""

from __future__ import annotations

import datetime as _dt
import re
import secrets


def new_job_id(name: str | None = None) -> str:
    """A fresh, readable, unique job id: ``wordcount-20261128-041300-9f2c04d1``.

    The random part must make ids started within the same second distinct:
    an id that is reused means "resume this job".
    """
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "job").lower()).strip("-")[:40] or "job"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{slug}-{stamp}-{secrets.token_hex(4)}"


JOB_ID_RULE = "expected letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit)"


def valid_job_id(job_id: str) -> bool:
    """Whether ``job_id`` follows :data:`JOB_ID_RULE`.

    >>> valid_job_id("wordcount-2026"), valid_job_id("../etc")
    (True, False)
    """
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", job_id))
