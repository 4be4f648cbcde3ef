"""Retries: where a failed attempt of a chunk is tried again.

>>> calls = []
>>> def flaky(n):
...     calls.append(n)
...     if n < 3:
...         raise RuntimeError("not yet")
...     return "ok"
>>> run_with_retries(flaky, retries=2, backoff=0)
('ok', 3)
"""

from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

from ..exceptions import PermanentError, RetriesExhausted, TaskCancelled

T = TypeVar("T")
MAX_BACKOFF = 60.0


def backoff_delay(attempt: int, base: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): base * 2^(n-1), jittered, capped."""
    if base <= 0:
        return 0.0
    delay = min(MAX_BACKOFF, base * 2 ** (attempt - 1))
    return delay * random.uniform(0.8, 1.2)


def run_with_retries(fn: Callable[[int], T], *, retries: int, backoff: float,
                     on_retry: Callable[[int, BaseException, float], None] | None = None,
                     cancelled: Callable[[], bool] | None = None) -> tuple[T, int]:
    """Call ``fn(attempt)`` until it returns, at most ``retries + 1`` times.

    Returns ``(result, attempts)``. A :class:`TaskCancelled` is never retried,
    nor a :class:`PermanentError` (another attempt cannot fix it); any other
    exception is, after :func:`backoff_delay`. When no attempt is left,
    raises :class:`RetriesExhausted` carrying the last error.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(attempt), attempt
        except TaskCancelled:
            raise
        except Exception as exc:
            if attempt > retries or isinstance(exc, PermanentError):
                raise RetriesExhausted(exc, attempt) from exc
            delay = backoff_delay(attempt, backoff)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if cancelled is not None and cancelled():
                    raise TaskCancelled("cancelled while waiting to retry") from exc
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
