"""What partitioner and assembler engine folders share: the folder, its manifest, its image."""

from __future__ import annotations

from ..apps.folder import FolderRef, folder_spec_schema
from ..exceptions import FieldError
from ..schema import require

#: ``{"folder": "path", "container": false|"image"}`` where a job names a partitioner or an assembler
SPEC_SCHEMA = folder_spec_schema(
    "ByteNite engine folder",
    "A ByteNite partitioner or assembler engine folder (manifest.json and app/), run in the image its "
    "manifest names or as a process.")


class EngineFolderSpec(FolderRef):
    """An engine folder named by a job (see :class:`~bytenite_nb.apps.folder.FolderRef`)."""

    kind = ""
    SPEC_SCHEMA = SPEC_SCHEMA

    @classmethod
    def check_spec(cls, spec: dict, field: str) -> None:
        """Raise a :class:`FieldError` naming the field when ``spec`` is not an engine folder spec.

        >>> EngineFolderSpec.check_spec({"folder": "engines/split", "contaner": False}, "partitioner")
        Traceback (most recent call last):
        ...
        bytenite_nb.exceptions.FieldError: partitioner.contaner: unknown field (did you mean "container"?)
        """
        require(spec, cls.SPEC_SCHEMA, field)

    @property
    def schema(self) -> dict:
        return self.manifest.schema() or {"type": "object"}

    def check(self, field: str) -> list[FieldError]:
        """Problems visible before running: a broken manifest, the wrong type."""
        return self.check_folder(field, field)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"
