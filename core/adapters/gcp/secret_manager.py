"""Secrets from Google Secret Manager, for `core.config.secret_refs`.

A reference (the value of IMGGO_API_KEY_SECRET_REF and friends) names a secret version
in any of these spellings:

    imggo-api-key                              latest version, project from the env
    imggo-api-key:3                            version 3 (gcloud --set-secrets style)
    projects/P/secrets/imggo-api-key           latest version
    projects/P/secrets/imggo-api-key/versions/3

A reference to a secret or version that does not exist reads as None (what
core.config.secret_refs then refuses to start with, naming the reference).

Put it behind core.adapters.secrets.secret_store: a warm function then asks Secret
Manager at most once per TTL per secret. Values are never logged. Each call carries
`limits`' timeout and a retry policy that stops after `limits.retry_s` (the library's
default retries for 60 s with no read timeout); what is still failing then is
UnavailableError `store_unavailable`. The client (and its ~0.5 s import) is built on the
first lookup; a deployment that injects secrets as environment variables
(`--set-secrets`) never builds it.

`endpoint` (tests only) points the REST transport at a loopback stand-in, without
credentials.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from core.adapters.gcp.errors import retry_policy, unavailable_on_outage
from core.adapters.outages import DEFAULT_LIMITS, CallLimits

_BACKEND = "Secret Manager"
_FULL_RE = re.compile(r"projects/([^/]+)/secrets/([^/]+)(?:/versions/([^/]+))?")
_SHORT_RE = re.compile(r"([A-Za-z0-9_-]{1,255})(?::([A-Za-z0-9_-]+))?")


def version_name(ref: str, project: str | None) -> str:
    """The full resource name of the secret version `ref` names."""
    ref = ref.strip()
    full = _FULL_RE.fullmatch(ref)
    if full:
        proj, secret, version = full.groups()
        return f"projects/{proj}/secrets/{secret}/versions/{version or 'latest'}"
    short = _SHORT_RE.fullmatch(ref)
    if not short:
        raise ValueError(
            "a secret reference is NAME, NAME:VERSION or projects/P/secrets/NAME[/versions/V]"
        )
    if not project:
        raise ValueError(
            "a short secret reference needs GOOGLE_CLOUD_PROJECT (or use projects/P/secrets/NAME)"
        )
    secret, version = short.groups()
    return f"projects/{project}/secrets/{secret}/versions/{version or 'latest'}"


class SecretManagerSecrets:
    """`Secrets` whose names are secret references."""

    def __init__(
        self,
        project: str | None,
        *,
        endpoint: str | None = None,
        limits: CallLimits = DEFAULT_LIMITS,
        client: Any = None,
    ) -> None:
        self._project = project
        self._endpoint = endpoint
        self._limits = limits
        self._client = client
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        from google.api_core.exceptions import NotFound

        resource = version_name(name, self._project)
        client = self._secret_client()
        with unavailable_on_outage(_BACKEND):
            try:
                response = client.access_secret_version(
                    name=resource,
                    retry=retry_policy(self._limits),
                    timeout=self._limits.per_try_s,
                )
            except NotFound:
                return None
        value: str = response.payload.data.decode("utf-8")
        return value

    def _secret_client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from google.cloud import secretmanager

                    if self._endpoint:
                        from google.auth.credentials import AnonymousCredentials

                        self._client = secretmanager.SecretManagerServiceClient(
                            transport="rest",
                            # untyped constructor in google-auth
                            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                            client_options={"api_endpoint": self._endpoint},
                        )
                    else:
                        self._client = secretmanager.SecretManagerServiceClient()
        return self._client

    def __repr__(self) -> str:
        return f"SecretManagerSecrets(project={self._project!r})"


__all__ = ["SecretManagerSecrets", "version_name"]


def from_url(url: str) -> SecretManagerSecrets:
    """`gcp://PROJECT[?endpoint=URL]`: Secret Manager; short references are read in
    PROJECT (empty: full `projects/...` references only)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    endpoint = parse_qs(parts.query).get("endpoint", [None])[0]
    return SecretManagerSecrets(parts.netloc or None, endpoint=endpoint)
