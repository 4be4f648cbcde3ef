"""Checks the test modules share. (Test modules import this, never conftest:
a worker that unpickles a test function imports its module, and conftest
would start over there.)"""

from __future__ import annotations

import json


def crc32c(data: bytes) -> str:
    """The crc32c of ``data`` as _SUCCESS writes it (8 hex digits)."""
    import google_crc32c

    return f"{google_crc32c.value(data):08x}"


def check_success_objects(objects: dict[str, bytes], result, url_prefix: str) -> dict:
    """``_SUCCESS`` among ``objects`` (name -> bytes, at one destination whose URL is
    ``url_prefix``) lists exactly the others, with true sizes and crc32c; it is removed
    from ``objects`` and returned."""
    manifest = json.loads(objects.pop("_SUCCESS"))
    assert manifest["jobId"] == result.job_id
    assert manifest["chunkCount"] == result.n_chunks
    assert manifest["checksum"] == "crc32c"
    assert sorted(f["name"] for f in manifest["files"]) == sorted(objects)
    for entry in manifest["files"]:
        data = objects[entry["name"]]
        assert entry["size"] == len(data)
        assert entry["crc32c"] == crc32c(data)
        assert entry["url"] == f"{url_prefix}/{entry['name']}"
    assert result.success_url == f"{url_prefix}/_SUCCESS"
    return manifest
