"""The assemble task: fan the committed results in, then publish."""

from __future__ import annotations

import shutil

from ..bad_records import collecting, summary
from ..exceptions import AssemblyError, ByteniteNBError
from ..transfer import checksum_algorithm
from .. import supervision as control
from .publish import publish
from .staging import Staging


def assemble_and_publish(spec, job_id: str, indices: list[int], manifest: dict) -> dict:
    """Run the assembler over the committed chunks ``indices`` (in order) and
    publish its output to the destination. Returns the ``_SUCCESS`` manifest."""
    control.check_cancelled(job_id)
    staging = Staging.of(spec, job_id)
    results = staging.results(indices)
    out_dir = staging.output_dir()
    algorithm = spec.config.get("checksum", "crc32c")
    try:
        try:
            with control.job_scope(job_id), checksum_algorithm(algorithm), collecting() as found:
                checksums = spec.assembler.assemble(results, out_dir, spec.assembler_params) or {}
        except ByteniteNBError:
            raise
        except Exception as exc:
            full = staging.out_of_space(exc, f"assembler {spec.assembler_name!r} wrote the output")
            if full is not None:
                raise full from exc
            raise AssemblyError(f"assembler {spec.assembler_name!r} failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(checksums, dict):
            checksums = {}
        skipped = summary(found, staging.skipped(indices))
        if skipped["count"]:
            manifest = {**manifest, "skipped": skipped}  # never a silent loss (on_bad: skip)
        control.check_cancelled(job_id)
        with checksum_algorithm(algorithm):
            # The destination changes only after the last moment a cancel or a
            # job timeout can stop the job.
            return publish(out_dir, spec.destination, manifest, checksums,
                           before_swap=lambda: control.check_cancelled(job_id))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
