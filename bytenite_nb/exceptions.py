"""Every error bytenite-nb raises, in one place.

All of them derive from :class:`ByteniteNBError`, so ``except ByteniteNBError``
catches anything the library means to tell a user. Messages name what is wrong:
the field of a job file, the chunk, the file and the byte offset.
"""

from __future__ import annotations


class ByteniteNBError(Exception):
    """Base class of every bytenite-nb error."""


class PermanentError(ByteniteNBError):
    """An error another attempt cannot fix (a missing image, an unsafe file name):
    the chunk fails at once instead of being retried."""


# -- validation ---------------------------------------------------------------


class FieldError(ByteniteNBError):
    """One thing wrong with one field of a job, e.g.
    ``params.partitioner.chunk_size: expected integer, got "64k"``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class JobValidationError(ByteniteNBError):
    """A job is invalid. ``errors`` lists every :class:`FieldError` found."""

    def __init__(self, errors: list[FieldError] | FieldError, source: str | None = None):
        if isinstance(errors, FieldError):
            errors = [errors]
        self.errors = list(errors)
        self.source = source
        head = f"invalid job{f' {source}' if source else ''}"
        if len(self.errors) == 1:
            text = f"{head}: {self.errors[0]}"
        else:
            text = head + ":\n" + "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(text)

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]


class ManifestError(PermanentError):
    """A ByteNite app or engine folder is malformed (names the file and field)."""


class ComponentNotFound(ByteniteNBError):
    """No partitioner, app or assembler is registered under a name."""


# -- storage ------------------------------------------------------------------


class StorageError(ByteniteNBError):
    """A source or destination cannot be read or written."""


class StagingGone(PermanentError):
    """A chunk's job has no staging area any more (it ended, and a late worker
    finished an attempt of it): the attempt's results are thrown away."""


class StagingFull(StorageError, PermanentError):
    """Staging (or a chunk's task folder beside it) ran out of space; names the folder."""


class UnsafePathError(PermanentError):
    """A file name from data would escape its folder (``..``, absolute, symlink)."""


class UnsafeArchiveError(UnsafePathError):
    """An archive member that must not be unpacked: a name with ``..`` or an
    absolute one, a symlink, a hard link or a device, or more expanded bytes
    (or a higher compression ratio) than allowed. Names the archive and the member."""

    def __init__(self, archive: str, member: str | None, reason: str):
        self.archive, self.member, self.reason = archive, member, reason
        super().__init__(f"archive {archive}: member {member!r}: {reason}" if member is not None
                         else f"archive {archive}: {reason}")

    def __reduce__(self):
        return UnsafeArchiveError, (self.archive, self.member, self.reason)


# -- running ------------------------------------------------------------------


class PartitionError(ByteniteNBError):
    """The partitioner could not split the source (names the file and offset)."""


def describe_place(file: str | None = None, line: int | None = None, offset: int | None = None,
                   chunk: int | None = None) -> str:
    """``chunk 3: in.csv: line 7 (byte 120)``: a place in the data, for messages.

    >>> describe_place("in.csv", line=7, offset=120, chunk=3)
    'chunk 3: in.csv: line 7 (byte 120)'
    """
    parts = []
    if chunk is not None:
        parts.append(f"chunk {chunk}")
    if file:
        parts.append(str(file))
    if line is not None:
        parts.append(f"line {line}" + (f" (byte {offset})" if offset is not None else ""))
    elif offset is not None:
        parts.append(f"byte {offset}")
    return ": ".join(parts)


class MediaToolMissing(PermanentError):
    """No ``ffmpeg`` program or PyAV to read media with (says what to install)."""


class BadRecordError(PartitionError, PermanentError):
    """A record of the data cannot be read (a ragged CSV row, invalid JSON, a
    timestamp that does not parse): names the file and the line or byte offset.
    Raised where ``on_bad`` is ``fail`` (see :mod:`bytenite_nb.bad_records`)."""

    def __init__(self, reason: str, *, file: str | None = None, line: int | None = None,
                 offset: int | None = None, chunk: int | None = None):
        self.reason, self.file, self.line, self.offset, self.chunk = reason, file, line, offset, chunk
        place = describe_place(file, line, offset, chunk)
        super().__init__(f"{place}: {reason}" if place else reason)

    def __reduce__(self):
        return _rebuild_bad_record, (self.reason, self.file, self.line, self.offset, self.chunk)


def _rebuild_bad_record(reason, file, line, offset, chunk):
    return BadRecordError(reason, file=file, line=line, offset=offset, chunk=chunk)


class AppError(ByteniteNBError):
    """One attempt of an app on one chunk failed.

    ``stderr_tail`` holds the end of what the app wrote to stderr.
    """

    def __init__(self, message: str = "the app failed", *, exit_code: int | None = None, stderr_tail: str = ""):
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        text = message
        if stderr_tail:
            text += "\n--- stderr (tail) ---\n" + stderr_tail.rstrip()
        super().__init__(text)


class TaskTimeoutError(AppError):
    """An attempt ran longer than ``config.taskTimeout``."""


class AppOutputTooLarge(AppError):
    """An app printed more than ``config.maxAppOutput`` to stdout and stderr."""


class ContainerError(AppError):
    """A container could not be run: no container engine, an engine error, a
    missing image. Names the engine and the image."""


class ImageNotFound(ContainerError, PermanentError):
    """The image an app or engine names is not on the machine and could not be pulled."""


class ResourceUnavailable(ByteniteNBError):
    """No worker of the cluster offers the resources (cpu, memory, gpu) a job's app needs."""


class TaskCancelled(ByteniteNBError):
    """An attempt was stopped because its job was cancelled."""


class AssemblyError(ByteniteNBError):
    """The assembler failed; nothing was written to the destination."""


class ResultFormatError(AssemblyError):
    """A chunk's result cannot be assembled as asked: a header that differs from
    the first result's, a missing column, a value of the wrong type, a row out of
    order. Names the chunk, the file and the row."""


class JobFailed(ByteniteNBError):
    """A job ended in FAILED. ``result`` is its :class:`~bytenite_nb.engine.JobResult`."""

    def __init__(self, message: str, result=None):
        self.result = result
        super().__init__(message)


class JobCancelled(JobFailed):
    """A job was cancelled, by ``cancel()`` or by ``config.jobTimeout``."""


class ResumeConflict(ByteniteNBError):
    """A job id is reused for a different job: its staged chunks do not belong to it."""


class JobAlreadyRunning(ByteniteNBError):
    """Another process runs a job with the same id right now."""


class RetriesExhausted(ByteniteNBError):
    """Every attempt of a chunk failed; ``last`` is the last attempt's error."""

    def __init__(self, last: BaseException, attempts: int):
        self.last = last
        self.attempts = attempts
        super().__init__(f"failed after {attempts} attempt(s): {last}")


class ProgressError(ByteniteNBError, ValueError):
    """A job's chunk counts cannot be what they are asked to be: an unknown state,
    a chunk moved back to PENDING, more chunks in a state than there are, counts
    that do not add up to the total (the message names the state or the count)."""


class NotAnImage(ByteniteNBError, ValueError):
    """A ``data:`` URL of a preview picture holds no image a browser can show
    (another media type, no base64, bytes Pillow cannot read)."""


class ClusterUnavailable(ByteniteNBError):
    """The Dask cluster a job should run on cannot be reached (names the address)."""


class SchedulerLost(ClusterUnavailable):
    """The client lost its Dask scheduler while a job ran (it died, or the network
    failed): the job's tasks are gone with it."""


class GatewayRefused(ClusterUnavailable):
    """The Dask Gateway refused the credentials it was given (names the Gateway
    and the ``gateway.auth.type`` in use)."""


class VersionMismatch(ByteniteNBError):
    """The cluster's scheduler or workers run other versions of bytenite-nb,
    dask, distributed or cloudpickle than the client (names each package,
    where, and both versions): tasks pickled here may not load there."""


class CodeNotShipped(ByteniteNBError):
    """A job's local module or package could not be sent to the workers (names it)."""


# -- Jupyter server


class JobNotFound(ByteniteNBError):
    """No job with this id in the job store (a 404 from the server extension)."""


class ChunkNotFound(JobNotFound):
    """A job has no chunk of this index (names the job, the chunk and how many it has)."""


class ClusterNotFound(ByteniteNBError):
    """No cluster of this kind and name is listed (names the kind, the name and those listed)."""


class ClusterNotYours(ByteniteNBError):
    """A cluster this user did not make cannot be scaled or shut down from here (names it)."""


class JobConflict(ByteniteNBError):
    """The job is not in a state that allows what was asked (cancel a finished
    job, start an id whose process still runs...): a 409 from the server extension."""
