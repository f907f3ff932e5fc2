"""Blob stores on this machine (in memory for tests, a file per key), and the one key
check every blob store runs, local or cloud.

The embedded default is a SQLite file (core.adapters.sqlite.blobs); the cloud stores
are core.adapters.aws.s3_blobs and core.adapters.gcp.gcs_blobs. The port's vocabulary
is in core.ports.BlobStore; tests/contract/blob_contract.py proves it on each.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from core.domain.errors import ValidationError
from core.ports import BlobInfo, SignedUpload

MAX_KEY_LENGTH = 512
# Parts of letters, digits, space (tenant names hold spaces), '.', '_' and '-', joined
# by single slashes. Nothing that a file system, an S3 or GCS object name, a URL or a
# log line reads differently: no empty parts, no backslash, '%', '?', '#', controls.
_PART = r"[A-Za-z0-9._ -]+"
_SAFE_KEY = re.compile(rf"{_PART}(?:/{_PART})*")
UNSAFE_BLOB_KEY = "unsafe_blob_key"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# A key that names a folder of other keys ("uploads/t"), or one below a file, is
# simply not there.
_ABSENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def is_safe_key(key: str) -> bool:
    return (
        len(key) <= MAX_KEY_LENGTH
        and _SAFE_KEY.fullmatch(key) is not None
        and not any(part in (".", "..") for part in key.split("/"))
    )


def check_key(key: str) -> str:
    """`key`, if every blob store may hold it; else ValidationError `unsafe_blob_key`.
    Keys are built by core from checked parts, so a refusal here means input got past
    a check upstream: refused alike on every backend, and never written anywhere."""
    if not is_safe_key(key):
        shown = repr(key)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ValidationError(f"unsafe blob key {shown}", code=UNSAFE_BLOB_KEY)
    return key


def key_under(head: str, name: str) -> str | None:
    """The key of object `name` stored as `head` + key by a cloud blob store, or None
    when it is not under `head` or not a key we could have handed out (an object event
    for someone else's file)."""
    if not name.startswith(head):
        return None
    key = name[len(head) :]
    return key if is_safe_key(key) else None


class LocalBlobs:
    """What the stores on this machine share: no URL another machine could use (ImgGo
    gets the bytes instead), and no object events to map back to keys."""

    def signed_get_url(self, key: str, *, expires_s: int) -> str | None:
        check_key(key)
        return None

    def signed_put_url(
        self, key: str, *, content_type: str, size: int, expires_s: int
    ) -> SignedUpload | None:
        check_key(key)
        return None

    def key_for_object(self, bucket: str, name: str) -> str | None:
        return None


class MemoryBlobStore(LocalBlobs):
    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with self._lock:
            self._blobs[check_key(key)] = (data, content_type)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._blobs.get(check_key(key))
        return None if found is None else found[0]

    def describe(self, key: str) -> BlobInfo | None:
        with self._lock:
            found = self._blobs.get(check_key(key))
        return None if found is None else BlobInfo(len(found[0]), found[1])

    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(check_key(key), None)


class FileBlobStore(LocalBlobs):
    """One file per key under `root`, its content type in a `<file>~type` file beside it
    ('~' is never in a key, so the two cannot collide). Writes go to a temp file that
    is renamed into place, so a reader in another process never sees half an image;
    the type is written first, so a reader that sees the new bytes sees their type."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._made_dirs: set[Path] = set()  # saves a mkdir per write on the hot path

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @staticmethod
    def _type_path(path: Path) -> Path:
        return path.with_name(path.name + "~type")

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        if path.parent not in self._made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path.parent)
        self._write(self._type_path(path), content_type.encode())
        self._write(path, data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except _ABSENT:
            return None

    def describe(self, key: str) -> BlobInfo | None:
        path = self._path(key)
        try:
            found = path.stat()
        except _ABSENT:
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        try:
            content_type = self._type_path(path).read_text()
        except _ABSENT:  # written before types were kept
            content_type = DEFAULT_CONTENT_TYPE
        return BlobInfo(found.st_size, content_type)

    def delete(self, key: str) -> None:
        path = self._path(key)
        for doomed in (path, self._type_path(path)):
            with contextlib.suppress(*_ABSENT):
                doomed.unlink()


__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "MAX_KEY_LENGTH",
    "UNSAFE_BLOB_KEY",
    "FileBlobStore",
    "LocalBlobs",
    "MemoryBlobStore",
    "check_key",
    "is_safe_key",
]


def container_url(url: str, scheme: str, name: str, form: str) -> tuple[str, str]:
    """`scheme://container/some/prefix` -> ("container", "some/prefix"), the URL form of
    every bucket-style blob store that takes no options. `name` ("a GCS") and `form`
    ("gs://bucket[/prefix]") word the errors."""
    parts = urlsplit(url)
    if parts.scheme != scheme or not parts.netloc:
        raise ValueError(f"{name} blob URL is {form}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} blob URL takes no query string or fragment")
    return parts.netloc, parts.path.strip("/")


def memory_from_url(url: str) -> MemoryBlobStore:
    """`memory://`: bytes in this process."""
    if url.partition("://")[2]:
        raise ValueError("memory:// takes no path or options")
    return MemoryBlobStore()


def file_from_url(url: str) -> FileBlobStore:
    """`file:///dir`: a file per blob under `dir`."""
    return FileBlobStore(url.removeprefix("file://"))
