"""Where output is published: the assembled output moved to the destination.

Nothing reaches the destination before assembly has succeeded. Then every
output file is moved there - uploaded beside the destination first, then
swapped in (renames on a local filesystem, with the previous files kept until
the swap succeeds and put back if it fails; server-side copies on an object
store) - and ``_SUCCESS`` - a JSON manifest with the job id, the chunk
count and every output's size and checksum (crc32c, or sha256 with
``config.checksum``) - is written last. A reader that sees ``_SUCCESS`` sees
complete output; a job that failed leaves no ``_SUCCESS`` and no output.

The files the previous ``_SUCCESS`` listed and this one does not are removed
after the new ones are in place, so the destination holds one job's output,
not a mix of runs; files bytenite-nb never wrote there are left alone.

A publish that dies half-way (its process killed between moving outputs and
writing ``_SUCCESS``) leaves no ``_SUCCESS``, so no reader trusts what is
there, and a journal, ``.bytenite-nb-publish.json``, written before the first
change: the names of the outputs it was replacing and those it was moving
in, and its hidden work folders. The next publish to that destination - the
next run of the job - reads it and rolls forward: every name of either list
that it does not write itself is removed with the stale files, the work
folders too, and the journal goes once ``_SUCCESS`` is written.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .. import supervision as control
from ..exceptions import ByteniteNBError, StorageError
from ..transfer import current_checksum, file_checksum, list_tree, safe_join
from ..storage import Location

SUCCESS = "_SUCCESS"
JOURNAL = ".bytenite-nb-publish.json"


def read_success(destination: Location) -> dict | None:
    """The ``_SUCCESS`` manifest at a destination, or None."""
    try:
        fs, root = destination.filesystem()
        return json.loads(fs.cat_file(root.rstrip("/") + "/" + SUCCESS))
    except (FileNotFoundError, ValueError):
        return None
    except Exception:
        return None


def publish(output_dir: str, destination: Location, manifest: dict, checksums: dict[str, str] | None = None,
            *, before_swap: Callable[[], None] | None = None) -> dict:
    """Move everything in ``output_dir`` to ``destination``, then write ``_SUCCESS``.

    Outputs first travel to the destination's storage beside it (a hidden
    ``.bytenite-nb-*`` folder or prefix), so that a failure while moving bytes
    leaves the destination as it was. ``before_swap`` is called just before
    the first visible change (the last moment a cancel can stop the job).
    Returns the manifest written (``manifest`` plus ``files``).

    >>> import os
    >>> os.makedirs("assembled/parts")
    >>> for name in ("summary.txt", "parts/0.txt"):
    ...     _ = open(f"assembled/{name}", "w").write("hello\\n")
    >>> manifest = publish("assembled", Location("out/"), {"jobId": "j1", "chunkCount": 1})
    >>> sorted(f["name"] for f in manifest["files"]), sorted(os.listdir("out"))
    (['parts/0.txt', 'summary.txt'], ['_SUCCESS', 'parts', 'summary.txt'])
    >>> read_success(Location("out/"))["jobId"], manifest["checksum"]
    ('j1', 'crc32c')
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
        url = destination.url_of(fs, f"{root}/{name}")
        entries.append({"name": name, "size": size, algorithm: checksums[name], "url": url})
    manifest = {**manifest, "checksum": algorithm, "files": entries,
                "completedAt": _dt.datetime.now(_dt.timezone.utc).isoformat()}
    payload = json.dumps(manifest, indent=2).encode()
    previous = read_success(destination) or {}
    interrupted = _read_journal(fs, root)  # a publish that died half-way here
    new_names = {name for name, _ in files}
    owned = {f.get("name") for f in previous.get("files") or [] if isinstance(f, dict)}
    owned |= set(interrupted.get("previous") or []) | set(interrupted.get("files") or [])
    stale = sorted(name for name in owned if isinstance(name, str) and name not in new_names and _is_safe(name))
    journal = {"jobId": manifest.get("jobId"), "previous": sorted(owned - {None}), "files": sorted(new_names)}
    leftovers = [w for w in interrupted.get("work") or [] if isinstance(w, str) and w.startswith(".bytenite-nb-")
                 and "/" not in w]
    try:
        if destination.is_local:
            _publish_local(output_dir, files, root, payload, stale, before_swap, journal, leftovers)
        else:
            _publish_remote(fs, output_dir, files, root, payload, stale, before_swap, journal, leftovers)
    except ByteniteNBError:
        raise
    except Exception as exc:  # OSError, or a client library's own (botocore's EndpointConnectionError...)
        detail = str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        raise StorageError(f"dataDestination: cannot write to {destination.url}: {detail}") from exc
    return manifest


def _read_journal(fs, root: str) -> dict:
    """The journal a publish to ``root`` left when it died half-way ({} if none)."""
    try:
        journal = json.loads(fs.cat_file(f"{root}/{JOURNAL}"))
    except Exception:  # none (the usual case), or torn: then there is nothing to roll forward
        return {}
    return journal if isinstance(journal, dict) else {}


def _is_safe(name: str) -> bool:
    try:
        safe_join("/", name)
        return True
    except Exception:
        return False


def _write_local_journal(root: str, journal: dict) -> None:
    tmp = os.path.join(root, JOURNAL + ".tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(journal).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(root, JOURNAL))


def _publish_local(output_dir: str, files: list[tuple[str, int]], root: str, payload: bytes,
                   stale: list[str], before_swap: Callable[[], None] | None, journal: dict,
                   leftovers: list[str]) -> None:
    os.makedirs(root, exist_ok=True)
    # 1. Bring the outputs onto the destination's filesystem, so the swap is renames only.
    incoming = None
    if os.stat(output_dir).st_dev == os.stat(root).st_dev:
        source_dir = output_dir
    else:
        source_dir = incoming = tempfile.mkdtemp(prefix=".bytenite-nb-incoming-", dir=root)
        for name, _ in files:
            target = safe_join(incoming, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(output_dir, name), target)
    backup = tempfile.mkdtemp(prefix=".bytenite-nb-previous-", dir=root)
    moved: list[tuple[str, str | None]] = []  # (destination path, where its old file waits)
    try:
        # 2. Refuse what would block a rename before changing anything.
        for name, _ in files:
            dst = safe_join(root, name)
            if os.path.isdir(dst) and not os.path.islink(dst):
                raise StorageError(f"dataDestination: {dst} is a folder; the output {name!r} cannot replace it")
            parent = os.path.dirname(dst)
            while parent.startswith(root) and parent != root:
                if os.path.lexists(parent) and not os.path.isdir(parent):
                    raise StorageError(f"dataDestination: {parent} is a file; the output {name!r} needs a folder there")
                parent = os.path.dirname(parent)
        if before_swap is not None:
            before_swap()
        work = [os.path.basename(backup)] + ([os.path.basename(incoming)] if incoming else [])
        _write_local_journal(root, {**journal, "work": leftovers + work})
        control.pause_point("publish-swap")
        # 3. Swap in, keeping what was there so that a failure can put it back.
        for name in [SUCCESS, *stale]:
            dst = safe_join(root, name)
            if os.path.lexists(dst) and not os.path.isdir(dst):
                kept = os.path.join(backup, f"{len(moved)}")
                os.replace(dst, kept)
                moved.append((dst, kept))
        for name, _ in files:
            dst = safe_join(root, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            kept = None
            if os.path.lexists(dst):
                kept = os.path.join(backup, f"{len(moved)}")
                os.replace(dst, kept)
            moved.append((dst, kept))
            os.replace(os.path.join(source_dir, name), dst)
        control.pause_point("publish-success")
        tmp = os.path.join(backup, "_SUCCESS.new")
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, os.path.join(root, SUCCESS))
    except BaseException:
        for dst, kept in reversed(moved):
            try:
                if kept is not None:
                    os.replace(kept, dst)
                elif os.path.lexists(dst):
                    os.remove(dst)
            except OSError:
                pass
        if not leftovers:  # put back as it was, but for the work of a publish that died here before
            try:
                os.remove(os.path.join(root, JOURNAL))
            except FileNotFoundError:
                pass
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
        if incoming:
            shutil.rmtree(incoming, ignore_errors=True)
    # Complete: the work folders of a publish that died here, then the journals, go.
    for name in leftovers:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    try:
        os.remove(os.path.join(root, JOURNAL))
    except FileNotFoundError:
        pass


def _publish_remote(fs, output_dir: str, files: list[tuple[str, int]], root: str, payload: bytes,
                    stale: list[str], before_swap: Callable[[], None] | None, journal: dict,
                    leftovers: list[str]) -> None:
    # Object stores have no multi-object transaction: upload beside the destination
    # first (the slow part, where failures happen), then copy into place on the
    # server and write _SUCCESS, the marker readers trust, last.
    incoming = f"{root}/.bytenite-nb-incoming-{uuid.uuid4().hex[:12]}"
    try:
        for name, _ in files:
            fs.put_file(os.path.join(output_dir, name), f"{incoming}/{name}")
        if before_swap is not None:
            before_swap()
        work = leftovers + [incoming.rsplit("/", 1)[-1]]
        fs.pipe_file(f"{root}/{JOURNAL}", json.dumps({**journal, "work": work}).encode())
        control.pause_point("publish-swap")
        success = f"{root}/{SUCCESS}"
        try:
            fs.rm_file(success)
        except FileNotFoundError:
            pass
        for name, _ in files:
            fs.copy(f"{incoming}/{name}", f"{root}/{name}")
        for name in stale:
            try:
                fs.rm_file(f"{root}/{name}")
            except FileNotFoundError:
                pass
        control.pause_point("publish-success")
        fs.pipe_file(success, payload)
        for name in leftovers:
            try:
                fs.rm(f"{root}/{name}", recursive=True)
            except (FileNotFoundError, OSError):
                pass
        fs.rm_file(f"{root}/{JOURNAL}")
    finally:
        try:
            fs.rm(incoming, recursive=True)
        except Exception:  # a store that is down: never hide why the publish failed
            pass
