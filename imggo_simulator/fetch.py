"""Outbound HTTP from the simulator (image_url fetches, webhook deliveries), allow-listed.

A URL may only be reached when its host is literally in `fetch_allow_hosts`. The check is
an exact string match on the parsed host, made before any connection, so names outside
the list are never resolved: a test double must not leak requests (or DNS queries) to
the internet, and must not become an open proxy when run on a laptop.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import certifi
import httpx

MAX_IMAGE_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT_S = 3.0
_MAX_REDIRECTS = 3


class FetchError(Exception):
    """The image could not be fetched; the message becomes the job's error."""


def host_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower()


def host_allowed(url: str, allow_hosts: Iterable[str]) -> bool:
    host = host_of(url)
    return host is not None and host in {h.lower().strip("[]") for h in allow_hosts}


_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms; tests start dozens of simulators, so pay it once.
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = ssl.create_default_context(cafile=certifi.where())
        return _ssl_context


def new_client(timeout_s: float) -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY in the environment must not reroute loopback calls.
    return httpx.Client(
        timeout=timeout_s,
        trust_env=False,
        follow_redirects=False,
        verify=_shared_ssl_context(),
    )


class ImageFetcher:
    def __init__(
        self, timeout_s: float = FETCH_TIMEOUT_S, max_bytes: int = MAX_IMAGE_BYTES
    ) -> None:
        self._client = new_client(timeout_s)
        self._max_bytes = max_bytes

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str, allow_hosts: Iterable[str]) -> bytes:
        allow = frozenset(allow_hosts)
        for _ in range(_MAX_REDIRECTS + 1):
            if not host_allowed(url, allow):
                shown = host_of(url) or "invalid URL"
                raise FetchError(f"fetch refused: host not allowed ({shown})")
            try:
                with self._client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        status = response.status_code
                        raise FetchError(f"fetch failed: HTTP {status} from image_url")
                    return self._read_capped(response)
            except httpx.HTTPError as exc:
                raise FetchError(f"fetch failed: {type(exc).__name__}") from exc
        raise FetchError("fetch failed: too many redirects")

    def _read_capped(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise FetchError(f"fetch failed: image larger than {self._max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
