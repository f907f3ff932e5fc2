"""SSRF guard for `image_url`: ImgGo (or a worker of ours) will fetch it, so it must not
point into a private network, the loopback or a cloud metadata endpoint.

Checked after name resolution, on every address the name resolves to, so a public
name that resolves to 169.254.169.254 is refused as well. Numeric hosts in decimal,
hex or octal spellings (`2130706433`, `0x7f.1`, `0177.0.0.1`) are normalised the way
the C resolver would read them before the check. The resolver is injected: tests
stub it and never touch DNS.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from core.domain.errors import ValidationError
from core.ports import Resolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


def system_resolver(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def no_resolver(host: str) -> list[str]:
    """IMGGO_FN_RESOLVE_NAMES=0: no name is ever looked up."""
    raise OSError(f"name resolution is off (IMGGO_FN_RESOLVE_NAMES=0): {host}")


def _numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host spells, in any spelling inet_aton accepts, or None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if all(c in "0123456789abcdefxABCDEFX." for c in host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _blocked(addr: IPAddress) -> bool:
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped or addr.sixtofour
        if mapped is not None:
            return _blocked(mapped)
    return (
        addr.is_loopback
        or addr.is_link_local
        or addr.is_private
        or addr.is_multicast
        or addr.is_unspecified
        or addr.is_reserved
        or not addr.is_global
    )


# Unreserved, reserved and '%' of RFC 3986: printable ASCII without space, quotes,
# angle brackets, braces, '|', '\\', '^' and '`'.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


class UrlGuard:
    """Decides whether an image URL may be handed on. `allow` lists host names or CIDRs
    that are let through anyway (the local simulator on 127.0.0.1, a test host)."""

    def __init__(self, resolver: Resolver = system_resolver, allow: Iterable[str] = ()) -> None:
        self._resolve = resolver
        self._allow_hosts: set[str] = set()
        self._allow_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            try:
                self._allow_nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._allow_hosts.add(entry.lower().rstrip("."))

    def _allowed(self, addr: IPAddress) -> bool:
        return any(addr in net for net in self._allow_nets)

    def check(self, url: str) -> str:
        """Return the URL unchanged if it may be fetched; raise ValidationError otherwise."""
        if len(url) > MAX_URL_LENGTH:
            raise ValidationError("image_url is too long", code="invalid_image_url")
        if not _URL_CHARS.fullmatch(url):
            # RFC 3986 has no place for spaces, controls or raw non-ASCII: every fetcher
            # (ImgGo's included) would read such a URL its own way, or not at all.
            raise ValidationError(
                "image_url may hold only URL characters (percent-encode the rest)",
                code="invalid_image_url",
            )
        try:
            parts = urlsplit(url)
            port = parts.port  # raises on a non-numeric or out-of-range port
        except ValueError as exc:
            raise ValidationError(
                f"image_url is not a valid URL: {exc}", code="invalid_image_url"
            ) from exc
        del port
        if parts.scheme not in ("http", "https"):
            raise ValidationError("image_url must use http or https", code="invalid_image_url")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise ValidationError("image_url has no host", code="invalid_image_url")
        if parts.username or parts.password:
            raise ValidationError("image_url must not carry credentials", code="invalid_image_url")
        if host in self._allow_hosts:
            return url
        numeric = _numeric_host(host)
        if numeric is not None:
            addresses: list[IPAddress] = [numeric]
        else:
            try:
                resolved = self._resolve(host)
            except (OSError, UnicodeError) as exc:
                raise ValidationError(
                    f"image_url host {host!r} does not resolve", code="unresolvable_image_url"
                ) from exc
            try:
                addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
            except ValueError as exc:
                raise ValidationError(
                    "image_url host resolved oddly", code="invalid_image_url"
                ) from exc
            if not addresses:
                raise ValidationError(
                    f"image_url host {host!r} does not resolve", code="unresolvable_image_url"
                )
        for addr in addresses:
            if _blocked(addr) and not self._allowed(addr):
                raise ValidationError(
                    "image_url points at a private, loopback, link-local or otherwise "
                    "non-public address",
                    code="forbidden_image_url",
                    details={"host": host},
                )
        return url
