"""A blob store the job store contract can look into: which keys are held right now.

The job stores keep a manifest too large for their items in a blob store and delete it
with its job; the contract proves that by listing what is left. The blob port of this
branch has no `delete` yet (it comes with the blob port's own contract), so this adds
one, with the meaning that port gives it: the key is gone afterwards, and deleting a
key that is not there is no error.
"""

from __future__ import annotations

from core.adapters.blobs import MemoryBlobStore


class MemoryBlobs(MemoryBlobStore):
    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)

    def stored_keys(self) -> set[str]:
        with self._lock:
            return set(self._blobs)
