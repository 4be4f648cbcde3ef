"""The plan task: run the partitioner near the data and number the chunks."""

from __future__ import annotations

from ..exceptions import ByteniteNBError, PartitionError
from ..partitioners.base import ChunkRef, Source
from ..storage import list_source


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


def preview_chunks(spec) -> list[ChunkRef]:
    """:func:`plan_chunks` for a look only (``job.plan()``): what a partitioner
    engine copied to make the chunks is removed at once, in the process that made it."""
    from ..engine_folders.partitioner import discard_previews

    refs = plan_chunks(spec)
    discard_previews(refs)
    return refs
