"""Who is calling: the id of the API key presented (the unit of rate limits and stats)
and the tenant it belongs to (jobs, patterns, webhooks).

ImgGo limits each API key, not each account (CONTRACT.md: "limits are per API key"), so
the window and the counters hang off the key's id, never off the tenant: if tenants ever
hold several keys here, as ImgGo's accounts do, each key still gets its own window.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

_USER_NAMESPACE = uuid.UUID("5b7c3a52-2f57-4f0e-9e35-6a0b7b1c9d11")


def key_id(api_key: str) -> str:
    """A short, stable name for an API key, safe to show (in /_sim/stats, in logs).

    12 hex digits of its SHA-256: keys are long random secrets, so this names one without
    revealing it, and 48 bits keep a handful of test keys from ever colliding."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]


def user_id_for(api_key: str) -> str:
    """A stable uuid per API key: the tenant id (requested_by, user_id). The key itself is
    never stored or logged."""
    return str(uuid.uuid5(_USER_NAMESPACE, api_key))


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str  # rate-limit window and stats bucket
    user_id: str  # tenant: owns jobs, private patterns and webhooks

    @classmethod
    def of(cls, api_key: str) -> Caller:
        return cls(key_id(api_key), user_id_for(api_key))


# What the endpoints that need no key (the health check) are handed.
NOBODY = Caller(key_id="", user_id="")
