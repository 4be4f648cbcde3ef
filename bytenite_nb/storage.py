"""Sources and destinations over fsspec.

A job names its data with ByteNite descriptors or a plain fsspec URL; this
module turns either into a :class:`Location` (URL + storage options), lists
the files a source covers, and checks that storage is reachable before any
work starts.

>>> loc = parse_location({"dataSourceDescriptor": "aws",
...                       "params": {"bucketName": "b", "name": "in/"}}, field="dataSource")
>>> loc.url
's3://b/in/'
"""

from __future__ import annotations

import copy
import os
import posixpath
from dataclasses import dataclass, field as dc_field
from typing import Any

from .exceptions import FieldError, StorageError
from .schema import show

#: descriptor name -> (URL scheme, can be a destination)
DESCRIPTORS = {
    "url": ("https", False),
    "file": ("file", True),
    "aws": ("s3", True),
    "s3": ("s3", True),
    "gcp": ("gs", True),
    "gcs": ("gs", True),
    "azure": ("az", True),
    "bypass": (None, True),
}

GLOB_CHARS = set("*?[")

# -- descriptor schemas -----------------------------------------------------------
# ByteNite's ``{"dataSourceDescriptor": ..., "params": {...}}``, one JSON Schema per
# descriptor; ``params`` may carry ByteNite's ``@type`` and ``secret_id``, which are
# read and not used (credentials come from each backend's environment here).

_BYTENITE_TYPE = {"type": "string", "description": "ByteNite's params type (type.googleapis.com/bytenite.data_source...); "
                                                   "not needed here."}
_SECRET_ID = {"type": "string", "description": "ByteNite's secret id; not used here: credentials come from the "
                                               "backend's environment or the job's storageOptions."}
_BUCKET = {"type": "string", "minLength": 1, "description": "The bucket's name."}
_REGION = {"type": "string", "description": "The bucket's region, e.g. us-east-2."}


def _key(what: str) -> dict:
    return {"type": "string", "description": f"The {what} after the bucket name: an object, a folder (a key prefix "
                                            "ending in /) or a glob; for a destination, the folder to write to."}


_BUCKET_PARAMS = {"bucketName": _BUCKET, "name": _key("key"), "cloudRegion": _REGION, "secret_id": _SECRET_ID,
                  "@type": _BYTENITE_TYPE}

#: descriptor -> (title, description, params properties, required params)
_DESCRIPTOR_FORMS: dict[str, tuple[str, str, dict, list[str]]] = {
    "url": ("HTTP(S) URL", "A file on the web (a data source only).",
            {"url": {"type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://", "x-expected": "an http(s) URL",
                     "description": "The URL of the file."},
             "@type": _BYTENITE_TYPE}, ["url"]),
    "file": ("Local file or folder", "A file, a folder or a glob on this machine (or on a disk every worker shares).",
             {"path": {"type": "string", "minLength": 1,
                       "description": "The path: a file, a folder or a glob, relative to the job file's folder."},
              "@type": _BYTENITE_TYPE}, ["path"]),
    "aws": ("AWS S3 (ByteNite's name for S3)", "An S3 bucket (or an S3-compatible store: AWS_ENDPOINT_URL).",
            _BUCKET_PARAMS, ["bucketName"]),
    "s3": ("Amazon S3 (or compatible)", "An S3 bucket (or an S3-compatible store: AWS_ENDPOINT_URL).",
           _BUCKET_PARAMS, ["bucketName"]),
    "gcp": ("Google Cloud Storage (ByteNite's name for GCS)", "A Google Cloud Storage bucket.",
            _BUCKET_PARAMS, ["bucketName"]),
    "gcs": ("Google Cloud Storage", "A Google Cloud Storage bucket.", _BUCKET_PARAMS, ["bucketName"]),
    "azure": ("Azure Blob Storage", "An Azure Blob Storage container.",
              {"bucketName": {**_BUCKET, "description": "The container's name."}, "name": _key("blob name"),
               "accountName": {"type": "string", "description": "The storage account (default: from the environment)."},
               "secret_id": _SECRET_ID, "@type": _BYTENITE_TYPE}, ["bucketName"]),
    "bypass": ("No data (bypass)", "No data: the partitioner gets no files (a data source only).",
               {"@type": _BYTENITE_TYPE}, []),
}
#: other names of params, as earlier versions read them: alias -> name
PARAM_ALIASES = {"bucket": "bucketName", "path": "name"}
_OPTIONS = {"type": "object", "additionalProperties": True,
            "description": "fsspec storage options for this location (credentials, endpoint; also spelled "
                           "storage_options); never written into records or outputs."}


def descriptor_schema(descriptor: str) -> dict:
    """The JSON Schema of a ``{"dataSourceDescriptor": descriptor, "params": {...}}`` object.

    >>> sorted(descriptor_schema("aws")["properties"]["params"]["properties"])
    ['@type', 'bucketName', 'cloudRegion', 'name', 'secret_id']
    """
    title, description, params, required = _DESCRIPTOR_FORMS[descriptor]
    return {
        "type": "object",
        "title": title,
        "description": description,
        "properties": {
            "dataSourceDescriptor": {"const": descriptor, "description": "The kind of storage (ByteNite's name for it; "
                                                                         "a destination says dataSourceDescriptor too)."},
            "params": {"type": "object", "title": "Where", "description": "Where the data is.",
                       "properties": params, "required": required, "additionalProperties": False},
            "storageOptions": _OPTIONS,
        },
        "required": ["dataSourceDescriptor"],
        "additionalProperties": False,
    }


def destination_descriptors() -> list[str]:
    """The descriptors a destination may name (a bypass has nowhere to write).

    >>> destination_descriptors()
    ['aws', 'azure', 'file', 'gcp', 'gcs', 's3']
    """
    return sorted(name for name, (scheme, writable) in DESCRIPTORS.items() if writable and scheme is not None)


def descriptor_schemas() -> dict[str, dict]:
    """Every descriptor's schema, by descriptor name (what ``/bytenite-nb/components`` serves)."""
    return {name: descriptor_schema(name) for name in DESCRIPTORS}


@dataclass(frozen=True)
class FileInfo:
    """One file a source covers: its full URL, its name relative to the source
    root (used to name members and outputs), and its size (None if unknown)."""

    url: str
    name: str
    size: int | None


@dataclass
class Location:
    """Where data comes from or goes to.

    ``url`` is an fsspec URL (``None`` for a ``bypass`` source, which carries no
    data); ``storage_options`` go to the fsspec filesystem; ``spec`` is what the
    job file said, kept so that ``to_dict`` gives it back unchanged.
    """

    url: str | None
    storage_options: dict = dc_field(default_factory=dict)
    spec: Any = None

    @property
    def bypass(self) -> bool:
        return self.url is None

    @property
    def protocol(self) -> str | None:
        if self.url is None:
            return None
        return split_protocol(self.url)[0]

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def filesystem(self):
        """``(fs, path)`` for this location."""
        if self.url is None:
            raise StorageError("a bypass location has no filesystem")
        from fsspec.core import url_to_fs

        return url_to_fs(self.url, **self.storage_options)

    def to_spec(self) -> Any:
        return copy.deepcopy(self.spec) if self.spec is not None else self.url

    def url_of(self, fs, path: str) -> str:
        """The URL of ``path`` (as ``fs`` names it, without a scheme) in this location's
        own scheme: fsspec would name every path of a filesystem with several schemes
        with its first one (``abfs://`` for an ``az://`` location, ``gs://`` for ``gcs://``).

        >>> class BlobFS:  # adlfs answers to three schemes
        ...     protocol = ("abfs", "az", "abfss")
        >>> Location("az://container/out/").url_of(BlobFS(), "container/out/x.bin")
        'az://container/out/x.bin'
        """
        proto = self.protocol
        protos = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        if proto and proto != "file" and proto in protos and "://" not in path:
            return f"{proto}://{path}"
        return fs.unstrip_protocol(path)


def split_protocol(url: str) -> tuple[str, str]:
    if "://" in url:
        proto, rest = url.split("://", 1)
        return proto.lower(), rest
    return "file", url


def _local_url(path: str, base_dir: str | None) -> str:
    path = os.path.expanduser(path)
    if not os.path.isabs(path):
        path = os.path.join(base_dir or os.getcwd(), path)
    # Keep a trailing slash: it says "a folder" for a destination.
    trailing = path.endswith(("/", os.sep))
    path = os.path.normpath(path)
    return "file://" + path + ("/" if trailing and not path.endswith("/") else "")


def _join(bucket: str, name: str) -> str:
    return bucket.strip("/") + ("/" + name.lstrip("/") if name else "")


def parse_location(value: Any, *, field: str, base_dir: str | None = None,
                   storage_options: dict | None = None, destination: bool = False) -> Location:
    """Turn a job's ``dataSource``/``dataDestination`` into a :class:`Location`.

    Accepts an fsspec URL or local path string, or a ByteNite descriptor
    ``{"dataSourceDescriptor": ..., "params": {...}}``. Raises
    :class:`FieldError` naming ``field`` when the value cannot be understood.

    >>> parse_location("s3://bucket/key", field="dataSource").url
    's3://bucket/key'
    """
    options = dict(storage_options or {})
    if isinstance(value, str):
        if not value.strip():
            raise FieldError(field, "must not be empty")
        proto, _ = split_protocol(value)
        url = _local_url(value.split("://", 1)[-1], base_dir) if proto == "file" else value
        if proto in ("http", "https") and destination:
            raise FieldError(field, "an HTTP URL can only be a data source")
        return Location(url, options, value)
    if not isinstance(value, dict):
        raise FieldError(field, f"expected a URL string or a descriptor object, got {show(value)}")
    descriptor = value.get("dataSourceDescriptor")
    if descriptor is None and "dataDestinationDescriptor" in value:
        raise FieldError(f"{field}.dataDestinationDescriptor", 'unknown field (ByteNite names the kind '
                                                               '"dataSourceDescriptor" in a destination too)')
    if descriptor is None:
        raise FieldError(f"{field}.dataSourceDescriptor", "is required")
    if not isinstance(descriptor, str) or descriptor not in DESCRIPTORS:
        from .schema import suggest

        raise FieldError(
            f"{field}.dataSourceDescriptor",
            f"unknown descriptor {show(descriptor)}{suggest(str(descriptor), DESCRIPTORS)}; "
            f"expected one of {', '.join(sorted(DESCRIPTORS))}",
        )
    scheme, can_write = DESCRIPTORS[descriptor]
    if destination and not can_write:
        raise FieldError(f"{field}.dataSourceDescriptor", f"{descriptor!r} can only be a data source")
    params = _read_params(value, descriptor, field)
    options.update(value.get("storageOptions") or value.get("storage_options") or {})
    if descriptor == "bypass":
        return Location(None, options, value)
    if descriptor == "url":
        return Location(params["url"], options, value)
    if descriptor == "file":
        return Location(_local_url(params["path"], base_dir), options, value)
    bucket = params["bucketName"]
    name = params.get("name") or ""
    if scheme == "s3" and params.get("cloudRegion"):
        kwargs = dict(options.get("client_kwargs") or {})
        kwargs.setdefault("region_name", params["cloudRegion"])
        options["client_kwargs"] = kwargs
    if scheme == "az" and params.get("accountName"):
        options.setdefault("account_name", params["accountName"])
    return Location(f"{scheme}://{_join(bucket, name)}", options, value)


def _read_params(value: dict, descriptor: str, field: str) -> dict:
    """A descriptor's params, checked by :func:`descriptor_schema` (earlier names of
    params read as today's); raises naming every field that is wrong."""
    value = dict(value)
    if "storage_options" in value:
        if "storageOptions" in value:
            raise FieldError(f"{field}.storage_options", "the same as storageOptions; give one of them")
        value["storageOptions"] = value.pop("storage_options")
    if value.get("params") is None:
        value["params"] = {}
    params = value["params"]
    if isinstance(params, dict) and descriptor not in ("url", "file"):
        params = dict(params)
        for alias, name in PARAM_ALIASES.items():
            if alias in params and name in _DESCRIPTOR_FORMS[descriptor][2]:
                if name in params:
                    raise FieldError(f"{field}.params.{alias}", f"the same as {name}; give one of them")
                params[name] = params.pop(alias)
        value["params"] = params
    from .schema import require

    require(value, descriptor_schema(descriptor), field)
    return params


# -- listing ------------------------------------------------------------------


def _root_of(path: str) -> str:
    """The folder part of a glob pattern (what member names are relative to)."""
    parts = path.split("/")
    keep = []
    for part in parts:
        if GLOB_CHARS & set(part):
            break
        keep.append(part)
    return "/".join(keep)


def list_source(location: Location, field: str = "dataSource") -> list[FileInfo]:
    """Every file a source covers, sorted by name: one object, a glob, a folder
    or a key prefix. Raises :class:`StorageError` naming the field when nothing
    matches or the storage cannot be reached.

    >>> list_source(Location(None))
    []
    """
    if location.bypass:
        return []
    url = location.url
    try:
        fs, path = location.filesystem()
    except ImportError as exc:
        raise StorageError(f"{field}: no filesystem for {url}: {exc}") from exc
    except Exception as exc:
        raise StorageError(f"{field}: cannot open {url}: {exc}") from exc
    proto = location.protocol
    try:
        if proto in ("http", "https"):
            info = fs.info(url)
            name = posixpath.basename(url.split("?", 1)[0]) or "data"
            return [FileInfo(url, name, info.get("size"))]
        if GLOB_CHARS & set(path):
            root = _root_of(path).rstrip("/")
            found = fs.glob(path, detail=True)
            infos = [i for i in found.values() if i.get("type") != "directory"]
        elif fs.isdir(path):
            root = path.rstrip("/")
            infos = list(fs.find(path, detail=True).values())
        elif fs.isfile(path):
            info = fs.info(path)
            root = posixpath.dirname(path.rstrip("/"))
            infos = [info]
        else:
            # A key prefix: every object whose key starts with it.
            root = posixpath.dirname(path)
            stem = path
            infos = [i for p, i in fs.find(root, detail=True).items() if p.startswith(stem)] if root else []
    except (FileNotFoundError, PermissionError) as exc:
        detail = str(exc)
        if isinstance(exc, FileNotFoundError) and "bucket" not in detail.lower():
            # gcsfs says only which API path was not found: say when it is the bucket
            gone = _missing_bucket(location, fs, path)
            detail = f"bucket {gone!r} does not exist" if gone else detail
        raise StorageError(f"{field}: cannot list {url}: {detail}") from exc
    except OSError as exc:
        raise StorageError(f"{field}: storage not reachable for {url}: {exc}") from exc
    except Exception as exc:  # botocore, aiohttp, azure errors: say where, keep the cause
        raise StorageError(f"{field}: storage not reachable for {url}: {type(exc).__name__}: {exc}") from exc
    files = []
    for info in infos:
        p = info["name"]
        rel = p[len(root):].lstrip("/") if root and p.startswith(root) else posixpath.basename(p)
        files.append(FileInfo(location.url_of(fs, p), rel or posixpath.basename(p), info.get("size")))
    files.sort(key=lambda f: f.name)
    if not files:
        gone = _missing_bucket(location, fs, path)  # adlfs lists a missing container as empty
        if gone:
            raise StorageError(f"{field}: cannot list {url}: bucket {gone!r} does not exist")
        raise StorageError(f"{field}: nothing matches {url}")
    return files


def _missing_bucket(location: Location, fs, path: str) -> str | None:
    """The bucket (or container) of ``path`` on an object store when it does not
    exist; None when it does, when that cannot be told, or on a local disk."""
    bucket = path.split("/", 1)[0]
    if location.is_local or not bucket:
        return None
    try:
        return None if fs.exists(bucket) else bucket
    except Exception:
        return None


def check_destination(location: Location, field: str = "dataDestination") -> None:
    """Fail early, naming the field, if the destination cannot be written."""
    if location.bypass:
        raise StorageError(f"{field}: bypass cannot be a destination")
    try:
        fs, path = location.filesystem()
    except Exception as exc:
        raise StorageError(f"{field}: cannot open {location.url}: {exc}") from exc
    if location.is_local:
        probe = path.rstrip("/")
        while probe and not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if os.path.exists(path) and not os.path.isdir(path):
            raise StorageError(f"{field}: {path} exists and is not a folder")
        if not os.access(probe or "/", os.W_OK):
            raise StorageError(f"{field}: cannot write under {probe}")
        return
    bucket = path.split("/", 1)[0]
    try:
        ok = fs.exists(bucket)
    except Exception as exc:
        raise StorageError(f"{field}: storage not reachable for {location.url}: {type(exc).__name__}: {exc}") from exc
    if not ok:
        raise StorageError(f"{field}: bucket {bucket!r} does not exist or is not reachable ({location.url})")
