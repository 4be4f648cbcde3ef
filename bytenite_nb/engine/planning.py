"""The plan task: run the partitioner near the data and number the chunks."""

from __future__ import annotations

import os

from ..exceptions import ByteniteNBError, PartitionError
from ..partitioners.base import ChunkRef, Source
from ..plan import SAMPLE_ROWS, Plan, sample_file
from ..storage import list_source


SAMPLE_RANGE = 128 * 2**10  # enough for the first rows of a table; a preview never copies a large chunk


def plan_chunks(spec, job_id: str | None = None) -> list[ChunkRef]:
    """Chunk references for a resolved job, numbered 0..N-1 (runs as a Dask task).

    With a ``job_id``, a partitioner that makes chunk data of its own (an
    engine folder) writes it into the job's staging area.
    """
    files = spec.files if spec.files or spec.source.bypass else list_source(spec.source)
    workspace = None
    if job_id is not None:
        from .staging import Staging

        workspace = Staging.of(spec, job_id).url + "/chunks"
    source = Source(spec.source, files, workspace=workspace)
    try:
        refs = list(spec.partitioner.plan(source, spec.partitioner_params))
    except ByteniteNBError:
        raise
    except Exception as exc:
        raise PartitionError(f"partitioner {spec.partitioner_name!r} failed: {type(exc).__name__}: {exc}") from exc
    out = []
    for i, ref in enumerate(refs):
        if not isinstance(ref, ChunkRef):
            raise PartitionError(f"partitioner {spec.partitioner_name!r} returned {type(ref).__name__} "
                                 f"for chunk {i}; expected ChunkRef")
        out.append(ref.numbered(i))
    return out


def plan_and_stage(spec, job_id: str) -> list[ChunkRef]:
    """Plan, and save the plan in staging so that a resumed run uses the very same chunks."""
    from .staging import Staging

    from .. import supervision as control
    from ..bad_records import collecting, summary

    with control.job_scope(job_id), collecting() as found:
        refs = plan_chunks(spec, job_id)
    staging = Staging.of(spec, job_id)
    skipped = summary(found)
    if skipped["count"]:
        staging.save_skipped(skipped)
    staging.save_plan(refs)
    return refs


def preview_chunks(spec, sample_rows: int = SAMPLE_ROWS):
    """:func:`plan_chunks` for a look only (``job.plan()``), as a
    :class:`~bytenite_nb.plan.Plan` with the first rows of the first chunk:
    what a partitioner engine copied to make the chunks is removed at once,
    in the process that made it."""
    from ..engine_folders.partitioner import discard_previews

    refs = plan_chunks(spec)
    try:
        sample = None
        if refs and sample_rows:
            sample = media_chunks_sample(spec, refs) or sample_chunk(spec, refs[0], sample_rows)
    finally:
        discard_previews(refs)
    return Plan(refs, sample)


def media_chunks_sample(spec, refs: list[ChunkRef]) -> dict | None:
    """Pictures of a media plan (see :func:`bytenite_nb.media_preview.media_sample`),
    read from the source here, where the plan runs; None when the chunks are not media.
    A source that cannot be read makes an ``error`` sample naming it, not a failed plan."""
    from ..media_preview import media_sample

    try:
        return media_sample(refs, spec.partitioner_name, spec.source.storage_options)
    except Exception as exc:
        return {"chunk": refs[0].index, "kind": "error", "error": f"{type(exc).__name__}: {exc}"[:500]}


def sample_chunk(spec, ref: ChunkRef, rows: int = SAMPLE_ROWS) -> dict:
    """The start of chunk ``ref`` as its app would see it (see
    :func:`bytenite_nb.plan.sample_file`). A byte range longer than
    :data:`SAMPLE_RANGE` is cut to its first :data:`SAMPLE_RANGE` bytes first,
    so a preview never copies a whole large chunk; an archive's names are
    listed without reading it."""
    import dataclasses
    import shutil
    import tempfile

    if ref.members:
        names = list(ref.names) or [m.rsplit("/", 1)[-1] for m in ref.members]
        return {"chunk": ref.index, "kind": "files", "count": len(names), "names": names[:rows]}
    whole_size = ref.size
    cut = ref.url is not None and (ref.end is None or ref.end - ref.start > SAMPLE_RANGE)
    if cut:
        ref = dataclasses.replace(ref, end=ref.start + SAMPLE_RANGE, size=None)
    folder = tempfile.mkdtemp(prefix="bytenite-nb-sample-")
    try:
        path = os.path.join(folder, "data.bin")
        try:
            spec.partitioner.materialise(ref, path, spec.source.storage_options)
        except PartitionError as exc:
            if not cut:  # a cut range may end early, or mid-record: not an error of the data
                return {"chunk": ref.index, "kind": "error", "error": str(exc)[:500]}
            if not os.path.exists(path):
                return {"chunk": ref.index, "kind": "error", "error": str(exc)[:500]}
        sample = sample_file(path, ref, rows, cut=cut)
        if cut and "size" in sample:
            sample["size"] = whole_size  # of the chunk, not of the part read
        return sample
    except Exception as exc:
        return {"chunk": ref.index, "kind": "error", "error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
