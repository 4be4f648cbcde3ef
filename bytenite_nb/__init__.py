"""bytenite-nb: ByteNite-style partition -> app -> assemble jobs on Dask, from Jupyter.

>>> import bytenite_nb as bn
>>> job = bn.Job(source="data/*.txt", partitioner="files", app="identity",
...              assembler="concat", destination="out/")
>>> job.to_dict()["dataSource"], job.to_dict()["assembler"]
('data/*.txt', 'concat')

``job.run()`` runs it; :class:`Job` has a complete example.
"""

__version__ = "0.1.0"

from .exceptions import (  # noqa: E402
    AppError,
    ByteniteNBError,
    JobCancelled,
    JobFailed,
    JobValidationError,
    StorageError,
)
from .job import Job  # noqa: E402
from .registry import app, assembler, partitioner  # noqa: E402
from . import registry  # noqa: E402,F401
from .partitioners import ChunkRef, Partitioner  # noqa: E402
from .assemblers import Assembler  # noqa: E402
from .store import JobStore  # noqa: E402


def __getattr__(name):
    if name == "Progress":
        from .states import Progress

        return Progress
    if name in ("JobHandle", "JobResult"):
        from .engine import runner

        return getattr(runner, name)
    raise AttributeError(name)


__all__ = [
    "AppError", "Assembler", "ByteniteNBError", "ChunkRef", "Job", "JobCancelled", "JobFailed",
    "JobHandle", "JobResult", "JobStore", "JobValidationError", "Partitioner", "Progress", "StorageError",
    "app", "assembler", "partitioner", "registry",
]
