"""What partitioner and assembler engine folders share: the folder, its manifest, its image."""

from __future__ import annotations

from ..apps.folder import FolderRef
from ..exceptions import FieldError


class EngineFolderSpec(FolderRef):
    """An engine folder named by a job (see :class:`~bytenite_nb.apps.folder.FolderRef`)."""

    kind = ""

    @property
    def schema(self) -> dict:
        return self.manifest.schema() or {"type": "object"}

    def check(self, field: str) -> list[FieldError]:
        """Problems visible before running: a broken manifest, the wrong type."""
        return self.check_folder(field, field)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"
