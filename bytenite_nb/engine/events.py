"""Events from the code running a chunk back to the process running the job.

On a Dask worker, events travel through the scheduler's event log
(``Worker.log_event`` -> ``Client.subscribe_topic``); with the synchronous
scheduler they go straight to the sink registered in this process.
"""

from __future__ import annotations

import threading
from typing import Callable

_sinks: dict[str, Callable[[dict], None]] = {}
_lock = threading.Lock()


def topic(job_id: str) -> str:
    return f"bytenite-nb:{job_id}"


def register_sink(job_id: str, sink: Callable[[dict], None]) -> None:
    with _lock:
        _sinks[job_id] = sink


def unregister_sink(job_id: str) -> None:
    with _lock:
        _sinks.pop(job_id, None)


def emit(job_id: str, event: dict) -> None:
    """Send ``event`` to whoever runs the job (never raises: events are best effort)."""
    sink = _sinks.get(job_id)
    if sink is not None:
        sink(event)
        return
    try:
        from distributed import get_worker

        get_worker().log_event(topic(job_id), event)
    except Exception:
        pass
