"""Staging: where a job's chunk results wait, committed, until assembly.

Layout under ``<staging>/<job id>/``::

    job.json                 the job's fingerprint (a reused id must be the same job)
    plan.json                the chunk references (a resumed run uses the same plan)
    results/<i>-<token>/     what one attempt of chunk i wrote
    commits/<i>.json         the commit marker: which attempt's results count

A chunk is committed when its marker exists. The marker is written last and
atomically (a rename on a local filesystem, a single PUT on an object store),
and it names the attempt folder it vouches for, so a half-written attempt or a
straggler from an older run can never be mistaken for a result. A committed
chunk is never run again for the same job id: that is resume.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid

from fsspec.core import url_to_fs

from ..assemblers.base import ChunkResult, ResultFile
from ..exceptions import ResumeConflict
from ..iorw import list_tree
from ..partitioners.base import ChunkRef


class Staging:
    """The staging area of one job.

    >>> s = Staging("file:///tmp/bnb-doc-staging", "job-1")
    >>> s.is_committed(0)
    False
    """

    def __init__(self, root_url: str, job_id: str, storage_options: dict | None = None):
        self.job_id = job_id
        self.storage_options = dict(storage_options or {})
        self.url = root_url.rstrip("/") + "/" + job_id
        self.fs, self.path = url_to_fs(self.url, **self.storage_options)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        if self.local:
            os.makedirs(self.path, exist_ok=True)

    @classmethod
    def of(cls, spec, job_id: str) -> "Staging":
        """The staging area of a job (``config.staging`` or the default)."""
        return cls(spec.staging_url, job_id, spec.storage_options)

    # -- small JSON files ------------------------------------------------------------

    def _p(self, *parts: str) -> str:
        return "/".join([self.path.rstrip("/"), *parts])

    def _write_json(self, rel: str, data) -> None:
        payload = json.dumps(data).encode()
        path = self._p(rel)
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as f:
                f.write(payload)
            os.replace(tmp, path)  # atomic: readers see the old file or the new one
        else:
            self.fs.pipe_file(path, payload)  # one PUT: atomic on object stores

    def _read_json(self, rel: str):
        path = self._p(rel)
        try:
            if self.local:
                with open(path, "rb") as f:
                    return json.load(f)
            return json.loads(self.fs.cat_file(path))
        except FileNotFoundError:
            return None

    # -- job and plan --------------------------------------------------------------------

    def claim(self, fingerprint: str, *, force: bool = False) -> bool:
        """Bind the staging area to a job; True if it already held work of that job.

        Raises :class:`ResumeConflict` if the id was used for a different job.
        """
        if force:
            self.clear()
        current = self._read_json("job.json")
        if current is not None:
            if current.get("fingerprint") != fingerprint:
                raise ResumeConflict(
                    f"job id {self.job_id!r} already belongs to a different job (its source, partitioner, app "
                    f"or params differ); pick another id, or run with force to start it over")
            return True
        self._write_json("job.json", {"id": self.job_id, "fingerprint": fingerprint, "created": time.time()})
        return False

    def save_plan(self, refs: list[ChunkRef]) -> None:
        self._write_json("plan.json", [r.to_dict() for r in refs])

    def load_plan(self) -> list[ChunkRef] | None:
        data = self._read_json("plan.json")
        return None if data is None else [ChunkRef.from_dict(d) for d in data]

    # -- commits -------------------------------------------------------------------------

    def _marker(self, index: int) -> str:
        return f"commits/{index:08d}.json"

    def committed(self) -> set[int]:
        """Indices of the committed chunks (one listing, not one request per chunk)."""
        folder = self._p("commits")
        try:
            names = os.listdir(folder) if self.local else [p.rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)]
        except FileNotFoundError:
            return set()
        return {int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit()}

    def is_committed(self, index: int) -> bool:
        path = self._p(self._marker(index))
        return os.path.exists(path) if self.local else self.fs.exists(path)

    def new_attempt(self, index: int) -> tuple[str, str]:
        """``(token, local results folder)`` for a new attempt of chunk ``index``.

        On a local staging area the app writes straight into staging (commit
        is then a rename-free marker write); otherwise into a temporary folder
        uploaded at commit.
        """
        token = uuid.uuid4().hex[:12]
        if self.local:
            folder = self._p("results", f"{index:08d}-{token}")
        else:
            folder = tempfile.mkdtemp(prefix=f"bytenite-nb-{self.job_id}-{index}-")
        os.makedirs(folder, exist_ok=True)
        return token, folder

    def commit(self, index: int, token: str, results_dir: str, stats: dict | None = None) -> dict:
        """Commit one attempt's results: check them, upload them if needed, write the marker last."""
        files = list_tree(results_dir, what=f"chunk {index}: the results folder")
        if not self.local:
            remote = self._p("results", f"{index:08d}-{token}")
            for name, _ in files:
                self.fs.put_file(os.path.join(results_dir, name), f"{remote}/{name}")
            shutil.rmtree(results_dir, ignore_errors=True)
        marker = {"index": index, "token": token, "files": files, "time": time.time(), **(stats or {})}
        self._write_json(self._marker(index), marker)
        return marker

    def discard(self, index: int, token: str, results_dir: str) -> None:
        """Throw away a failed attempt's results."""
        shutil.rmtree(results_dir, ignore_errors=True)
        if not self.local:
            try:
                self.fs.rm(self._p("results", f"{index:08d}-{token}"), recursive=True)
            except FileNotFoundError:
                pass

    def result(self, index: int) -> ChunkResult:
        """The committed results of chunk ``index``."""
        marker = self._read_json(self._marker(index))
        if marker is None:
            raise FileNotFoundError(f"chunk {index} is not committed")
        folder = self._p("results", f"{index:08d}-{marker['token']}")
        files = []
        for name, size in marker["files"]:
            path = f"{folder}/{name}"
            files.append(ResultFile(
                name=name, size=size, url=self.fs.unstrip_protocol(path),
                local_path=path if self.local else None, storage_options=self.storage_options))
        return ChunkResult(index=index, files=tuple(files))

    # -- assembly output and cleanup -----------------------------------------------------

    def output_dir(self) -> str:
        """A fresh local folder for the assembler's output."""
        if self.local:
            folder = self._p(f"output-{uuid.uuid4().hex[:8]}")
            os.makedirs(folder)
            return folder
        return tempfile.mkdtemp(prefix=f"bytenite-nb-{self.job_id}-output-")

    def clear(self) -> None:
        """Delete everything staged for this job."""
        if self.local:
            shutil.rmtree(self.path, ignore_errors=True)
            os.makedirs(self.path, exist_ok=True)
        else:
            try:
                self.fs.rm(self.path, recursive=True)
            except FileNotFoundError:
                pass

    def remove(self) -> None:
        if self.local:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.clear()
