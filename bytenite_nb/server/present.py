"""A job as the REST answers show it, in one shape built here only.

- :func:`job_entry`: a job of ``GET /bytenite-nb/jobs`` (and the answer to
  submit, cancel and rerun): its store record without the spec and result,
  with its progress (:class:`bytenite_nb.states.Progress`, as the store
  counts it), destination, outputs and what the browser may do with it.
- :func:`starting_record`: the record of a job whose process has not
  recorded it yet, shaped as the store's, so it goes through :func:`job_entry` too.
- :func:`job_detail`: ``GET /bytenite-nb/jobs/ID``: the entry, its chunks
  that need a look, a page of the others, its spec, its output's end and
  where it runs.

Nothing here writes or looks at processes: a job is shown as recorded.
"""

from __future__ import annotations

import os
import time

from .. import store as st
from ..exceptions import ByteniteNBError
from ..states import Progress

CHUNK_PAGE_LIMIT = 100  # chunks of a job's detail page, by default...
CHUNK_PAGE_MAX = 1000  # ...and at most
ATTENTION_LIMIT = 500  # failed, retrying and running chunks listed in a job's detail
ATTENTION_STATES = (st.CHUNK_FAILED, st.RETRYING, st.CHUNK_RUNNING)


def starting_record(launch: dict) -> dict:
    """The record of a job submitted from JupyterLab whose process has not written one yet.

    >>> record = starting_record({"id": "j1", "name": "upper", "submitted": 1.0, "pid": 42})
    >>> record["state"], record["progress"]["total"], record["pid"]
    ('NEW', 0, 42)
    """
    now = time.time()
    return {"id": launch["id"], "name": launch.get("name"), "kind": "job", "state": st.NEW,
            "created": launch.get("submitted", now), "updated": launch.get("started", now),
            "started": None, "finished": None, "n_chunks": None, "error": None, "host": launch.get("host"),
            "pid": launch.get("pid"), "runs": launch.get("runs", 1), "duration": None,
            "progress": Progress().to_dict()}


def job_entry(record: dict | None, launch: dict | None, root_dir: str) -> dict:
    """One job as the jobs list shows it, from its store ``record`` (None: not
    recorded yet) and its ``launch`` record (None: started elsewhere);
    ``root_dir`` is the Jupyter root paths are shown relative to.

    >>> entry = job_entry(None, {"id": "j1", "name": "upper", "baseDir": "/srv/jobs",
    ...                          "path": "jobs/upper.bnjob.json", "scheduler": None}, "/srv")
    >>> entry["state"], entry["startedFrom"], entry["jobFile"], entry["canCancel"], entry["canRerun"]
    ('NEW', 'jupyterlab', 'jobs/upper.bnjob.json', True, False)
    """
    if record is None:
        record = starting_record(launch)
    elif launch and record["state"] in st.FINAL_STATES and (launch.get("started") or 0) > (record.get("finished") or 0):
        # A rerun whose process has not recorded its start yet (had it died, its end would be recorded since).
        record = {**record, "state": st.NEW, "error": None}
    out = {k: v for k, v in record.items() if k not in ("spec", "result")}
    result = record.get("result") or {}
    destination = result.get("destination") or _destination_url(record.get("spec") or {}, launch)
    out["destination"] = destination
    out["destinationPath"] = relative_to_root(destination, root_dir)
    out["outputs"] = [{**o, "path": relative_to_root(o.get("url"), root_dir)} for o in (result.get("outputs") or [])]
    out["startedFrom"] = "jupyterlab" if launch else "elsewhere"
    out["jobFile"] = (launch or {}).get("path")
    out["scheduler"] = (launch or {}).get("scheduler")
    out["runsOn"] = (launch or {}).get("runsOn")
    # minSuccessRatio: COMPLETE without these chunks; a rerun runs them and publishes the whole output
    out["failedChunks"] = len((result.get("manifest") or {}).get("failedChunks") or [])
    out["canRerun"] = bool(launch) and (out["state"] in (st.FAILED, st.CANCELLED)
                                        or (out["state"] == st.COMPLETE and out["failedChunks"] > 0))
    out["canCancel"] = out["state"] not in st.FINAL_STATES
    return out


def job_detail(record: dict | None, launch: dict | None, root_dir: str, *, store: st.JobStore,
               offset: int = 0, limit: int = CHUNK_PAGE_LIMIT, log: str = "") -> dict:
    """One job: its :func:`job_entry`, the chunks that failed or are running or
    retrying (``attention``, at most :data:`ATTENTION_LIMIT`; their number in
    ``attentionTotal``), a page of the other chunks (``chunks``, from
    ``offset``, at most ``limit``; ``chunkPage`` tells the page and the number
    of those chunks), its ``spec``, the end of its output (``log``), and where
    it runs (``cluster``, as its process recorded it).

    A job of 100 000 chunks answers with a few hundred of them, not all.
    """
    out = job_entry(record, launch, root_dir)
    job_id = out["id"]
    out["attention"] = [chunk_entry(c) for c in store.chunks(job_id, states=ATTENTION_STATES, limit=ATTENTION_LIMIT)]
    out["attentionTotal"] = store.count_chunks(job_id, states=ATTENTION_STATES)
    out["chunks"] = [chunk_entry(c) for c in store.chunks(job_id, exclude=ATTENTION_STATES, offset=offset, limit=limit)]
    out["chunkPage"] = {"offset": offset, "limit": limit, "total": store.count_chunks(job_id, exclude=ATTENTION_STATES)}
    out["spec"] = (record or {}).get("spec")
    out["log"] = log
    cluster = store.last_event(job_id, "cluster")
    out["cluster"] = cluster["data"] if cluster else None
    return out


def chunk_entry(row: dict) -> dict:
    """A chunk of the store as a job's detail shows it.

    >>> chunk_entry({"idx": 3, "state": "FAILED", "attempts": 2, "duration": 0.5, "size": 10,
    ...              "covers": "rows 30-39", "error": "boom", "updated": 1.0})["index"]
    3
    """
    return {"index": row["idx"], "state": row["state"], "attempts": row["attempts"], "duration": row["duration"],
            "size": row["size"], "covers": row["covers"], "error": row["error"]}


def relative_to_root(url: str | None, root_dir: str) -> str | None:
    """A local URL or path as a path relative to ``root_dir``, if it is inside it.

    >>> relative_to_root("file:///srv/jobs/out/", "/srv"), relative_to_root("s3://b/out", "/srv")
    ('jobs/out', None)
    """
    if not url:
        return None
    path = url[len("file://"):] if url.startswith("file://") else url
    if "://" in path:
        return None
    path = os.path.realpath(path)
    if path == root_dir:
        return ""
    if path.startswith(root_dir + os.sep):
        return os.path.relpath(path, root_dir)
    return None


def _destination_url(spec: dict, launch: dict | None) -> str | None:
    from ..storage import parse_location

    value = spec.get("dataDestination")
    if value is None:
        return None
    try:
        return parse_location(value, field="dataDestination", base_dir=(launch or {}).get("baseDir"),
                              destination=True).url
    except ByteniteNBError:
        return None
