"""Secrets: plain environment variables, and the one caching policy every secret store
sits behind.

The readers (EnvSecrets here, core.adapters.aws.secrets for SSM and Secrets Manager,
core.adapters.gcp.secret_manager for Secret Manager) only read. `secret_store` puts a
reader behind CachedSecrets, with the TTL from IMGGO_FN_SECRETS_TTL_S (default 300 s):

- A warm function asks its secret store at most once per TTL per secret, and still
  sees a rotated secret within the TTL (core.runtime rebuilds the services then).
- The function's own references (core.config's NAME_SECRET_REF variables) are read
  together when the reader can read many in one round trip (BulkSecrets: SSM).
- An outage of the secret store after a value was read keeps that value, rechecked
  every STALE_RECHECK_S, rather than failing every invocation: the value was good
  until a moment ago, and a rotation keeps the old one valid for a while. Without a
  value to keep, the outage is raised (UnavailableError `store_unavailable`: a 503).

Values are never logged and never part of a repr; only reference names are.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from core.config import SECRET_NAMES, SECRET_REF_SUFFIX, secrets_ttl_s
from core.domain.errors import UnavailableError
from core.ports import BulkSecrets, Secrets

log = logging.getLogger("imggo.secrets")

STALE_RECHECK_S = 30.0  # how often a kept value's store is asked again during an outage


class EnvSecrets:
    """Secrets that are environment variables (or any mapping): an empty one is unset."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env

    def get(self, name: str) -> str | None:
        return self._env.get(name) or None

    def __repr__(self) -> str:
        return "EnvSecrets()"


def secret_refs_in(env: Mapping[str, str]) -> list[str]:
    """Every secret reference the environment names (NAME_SECRET_REF), in SECRET_NAMES order."""
    refs = (env.get(name + SECRET_REF_SUFFIX) for name in SECRET_NAMES)
    return [ref for ref in refs if ref]


class CachedSecrets:
    def __init__(
        self,
        inner: Secrets,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        together: Sequence[str] = (),
    ) -> None:
        self._inner = inner
        self.ttl_s = ttl_s
        self._clock = clock
        self._together = tuple(dict.fromkeys(together))
        self._cache: dict[str, tuple[float, str | None]] = {}  # name -> (fresh until, value)
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and now < hit[0]:
                return hit[1]
            names = [name]
            if isinstance(self._inner, BulkSecrets) and name in self._together:
                names += [n for n in self._together if n != name and not self._fresh(n, now)]
        try:
            values = self._read(names)
        except UnavailableError:
            if hit is None:
                raise
            with self._lock:
                self._cache[name] = (now + min(self.ttl_s, STALE_RECHECK_S), hit[1])
            log.warning(
                "the secret store is unreachable: keeping the value read before for %s", name
            )
            return hit[1]
        with self._lock:
            for read, value in values.items():
                self._cache[read] = (now + self.ttl_s, value)
        return values[name]

    def _fresh(self, name: str, now: float) -> bool:
        hit = self._cache.get(name)
        return hit is not None and now < hit[0]

    def _read(self, names: list[str]) -> dict[str, str | None]:
        if len(names) > 1 and isinstance(self._inner, BulkSecrets):
            return self._inner.get_many(names)
        return {names[0]: self._inner.get(names[0])}

    def __repr__(self) -> str:  # never show cached values
        return f"CachedSecrets({self._inner!r}, ttl_s={self.ttl_s}, names={sorted(self._cache)})"


def secret_store(
    reader: Secrets, env: Mapping[str, str], *, clock: Callable[[], float] = time.monotonic
) -> CachedSecrets:
    """`reader` behind the one caching policy, configured from `env`."""
    return CachedSecrets(reader, secrets_ttl_s(env), clock, together=secret_refs_in(env))


__all__ = [
    "STALE_RECHECK_S",
    "CachedSecrets",
    "EnvSecrets",
    "secret_refs_in",
    "secret_store",
]


def env_from_url(url: str) -> EnvSecrets:
    """`env://`: the process environment (a reference names a variable)."""
    return EnvSecrets()
