"""A ByteNite assembler engine folder as an :class:`~bytenite_nb.assemblers.Assembler`.

The engine gets every committed result in ``TASK_RESULTS_DIR`` (read-only),
writes what goes to the destination into ``OUTPUT_DIR`` and reads its params
from ``ASSEMBLER_PARAMS`` (JSON). Results are named after their chunk so that
names never collide: chunk 3's ``out.txt`` is ``chunk_0003_out.txt`` (the
number's width is the same for every chunk of a job, so name order is chunk
order).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ..assemblers.base import Assembler, ChunkResult, chunk_folder
from ..exceptions import AppError, AssemblyError
from ..transfer import safe_join
from .folder import EngineFolderSpec
from .run import EngineFolder, run_engine


def result_name(index: int, count: int, name: str) -> str:
    """Where one chunk's result file appears in ``TASK_RESULTS_DIR``.

    >>> result_name(3, 12, "out.txt")
    'chunk_0003_out.txt'
    """
    return f"{chunk_folder(index, count)}_{name}"


class EngineAssembler(EngineFolderSpec, Assembler):
    """An assembler engine folder (``type: assembler``), run as a process or in its image.

    >>> EngineAssembler("engines/merge-csv").to_spec()
    {'folder': 'engines/merge-csv'}
    """

    kind = "assembler"

    def assemble(self, results: list[ChunkResult], output_dir: str, params: dict) -> None:
        m = self.manifest
        what = f"assembler engine {m.tag}"
        work = tempfile.mkdtemp(prefix="bytenite-nb-assembler-")
        try:
            results_dir = os.path.join(work, "results")
            os.mkdir(results_dir)
            count = len(results)
            for chunk in results:
                for f in chunk.files:
                    dest = safe_join(results_dir, result_name(chunk.index, count, f.name))
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    f.copy_to(dest)
            try:
                run_engine(m, self.image, [EngineFolder("TASK_RESULTS_DIR", results_dir),
                                           EngineFolder("OUTPUT_DIR", output_dir, writable=True)],
                           "ASSEMBLER_PARAMS", params, what)
            except AppError as exc:
                raise AssemblyError(str(exc)) from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
