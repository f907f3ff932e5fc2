"""Bearer API keys mapped to tenants. Only SHA-256 hashes of keys are configured, and the
presented key's hash is compared against every one in constant time."""

from __future__ import annotations

import hashlib
import hmac

from core.domain.errors import UnauthorizedError


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class Authenticator:
    def __init__(self, key_hashes: dict[str, str]) -> None:
        self._hashes = dict(key_hashes)  # sha256 hex -> tenant

    def tenant_for(self, authorization: str | None) -> str:
        if not authorization:
            raise UnauthorizedError(
                "send Authorization: Bearer <api key>", code="missing_credentials"
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedError(
                "the Authorization header must be 'Bearer <api key>'", code="invalid_credentials"
            )
        presented = hash_key(token)
        tenant: str | None = None
        # No early exit: the time taken must not tell which prefix matched.
        for digest, owner in self._hashes.items():
            if hmac.compare_digest(presented, digest):
                tenant = owner
        if tenant is None:
            raise UnauthorizedError("the API key is not valid", code="invalid_credentials")
        return tenant
