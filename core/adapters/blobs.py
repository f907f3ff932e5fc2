"""Blob stores for uploaded image bytes: in memory (tests) and as files on local disk.
The embedded default is a SQLite file (core.adapters.sqlite.blobs). Cloud blob stores
(S3, GCS) also hand out signed URLs; local ones do not."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path

from core.ports import SignedUpload

_SAFE_KEY = re.compile(r"[A-Za-z0-9._/ -]{1,512}")  # tenants may hold spaces


def check_key(key: str) -> str:
    if not _SAFE_KEY.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"unsafe blob key {key!r}")
    return key


class Unsigned:
    """Local stores have no URL another machine could use: ImgGo gets the bytes."""

    def signed_get_url(self, key: str, *, expires_s: int) -> str | None:
        return None

    def signed_put_url(
        self, key: str, *, content_type: str, size: int, expires_s: int
    ) -> SignedUpload | None:
        return None


class MemoryBlobStore(Unsigned):
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with self._lock:
            self._blobs[check_key(key)] = data

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._blobs.get(key)


class FileBlobStore(Unsigned):
    """One file per key under `root`. Writes go to a temp file and are renamed into place,
    so a reader in another process never sees half an image."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._made_dirs: set[Path] = set()  # saves a mkdir per write on the hot path

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        if path.exists():  # keys are content hashes: same key, same bytes
            return
        if path.parent not in self._made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path.parent)
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
        except FileNotFoundError:
            return None
