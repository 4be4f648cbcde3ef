"""Where output is committed: publishing the assembled output to the destination.

Nothing reaches the destination before assembly has succeeded. Then every
output file is moved there (a rename on the same local filesystem, an upload
otherwise), and ``_SUCCESS`` - a JSON manifest with the job id, the chunk
count and every output's size and checksum (crc32c, or sha256 with
``config.checksum``) - is written last. A reader that sees ``_SUCCESS`` sees
complete output; a job that failed leaves no ``_SUCCESS`` and no output.

The files the previous ``_SUCCESS`` listed and this one does not are removed
after the new ones are in place, so the destination holds one job's output,
not a mix of runs; files bytenite-nb never wrote there are left alone.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor

from ..exceptions import StorageError
from ..iorw import current_checksum, file_checksum, list_tree, safe_join
from ..storage import Location

SUCCESS = "_SUCCESS"


def read_success(destination: Location) -> dict | None:
    """The ``_SUCCESS`` manifest at a destination, or None."""
    try:
        fs, root = destination.filesystem()
        return json.loads(fs.cat_file(root.rstrip("/") + "/" + SUCCESS))
    except (FileNotFoundError, ValueError):
        return None
    except Exception:
        return None


def publish(output_dir: str, destination: Location, manifest: dict, checksums: dict[str, str] | None = None) -> dict:
    """Move everything in ``output_dir`` to ``destination``, then write ``_SUCCESS``.

    Returns the manifest written (``manifest`` plus ``files``).
    """
    files = list_tree(output_dir, what="the assembler's output")
    if any(name == SUCCESS for name, _ in files):
        raise StorageError(f"an output may not be called {SUCCESS}")
    algorithm = current_checksum()
    checksums = dict(checksums or {})
    missing = [name for name, _ in files if name not in checksums]
    if missing:
        with ThreadPoolExecutor(max_workers=min(4, len(missing))) as pool:
            sums = pool.map(lambda n: file_checksum(os.path.join(output_dir, n), algorithm), missing)
            checksums.update(zip(missing, sums))
    fs, root = destination.filesystem()
    root = root.rstrip("/")
    entries = []
    for name, size in files:
        url = fs.unstrip_protocol(f"{root}/{name}")
        entries.append({"name": name, "size": size, algorithm: checksums[name], "url": url})
    manifest = {**manifest, "checksum": algorithm, "files": entries,
                "completedAt": _dt.datetime.now(_dt.timezone.utc).isoformat()}
    payload = json.dumps(manifest, indent=2).encode()
    previous = read_success(destination) or {}
    new_names = {name for name, _ in files}
    stale = [f["name"] for f in previous.get("files") or [] if isinstance(f, dict) and f.get("name") not in new_names]
    try:
        if destination.is_local:
            _publish_local(output_dir, files, root, payload, stale)
        else:
            _publish_remote(fs, output_dir, files, root, payload, stale)
    except OSError as exc:
        raise StorageError(f"dataDestination: cannot write to {destination.url}: {exc}") from exc
    return manifest


def _publish_local(output_dir: str, files: list[tuple[str, int]], root: str, payload: bytes,
                   stale: list[str]) -> None:
    os.makedirs(root, exist_ok=True)
    success = os.path.join(root, SUCCESS)
    if os.path.lexists(success):
        os.remove(success)  # never leave an old _SUCCESS beside new files
    for name, _ in files:
        src = os.path.join(output_dir, name)
        dst = safe_join(root, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.replace(src, dst)
        except OSError:  # another filesystem: copy beside, then rename into place
            tmp = f"{dst}.tmp-{uuid.uuid4().hex[:8]}"
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
    for name in stale:
        try:
            os.remove(safe_join(root, name))
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            pass
    tmp = f"{success}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, success)


def _publish_remote(fs, output_dir: str, files: list[tuple[str, int]], root: str, payload: bytes,
                    stale: list[str]) -> None:
    success = f"{root}/{SUCCESS}"
    try:
        if fs.exists(success):
            fs.rm_file(success)
    except FileNotFoundError:
        pass
    for name, _ in files:
        fs.put_file(os.path.join(output_dir, name), f"{root}/{name}")
    for name in stale:
        try:
            fs.rm_file(f"{root}/{safe_join('', name).lstrip('/')}")
        except FileNotFoundError:
            pass
    fs.pipe_file(success, payload)
