"""Which proxy the environment names for a URL, chosen as httpx itself chooses it, except
that loopback always goes direct.

httpx mounts the environment's proxies (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY, in
either case, read through `urllib.request.getproxies`) only when a client has no
transport of its own; ours has one (bounded_network), so it asks here instead. The
rules are httpx's: a scheme's variable for that scheme, ALL_PROXY for any, NO_PROXY's
`*` turning every proxy off and its other entries sending matching hosts direct (a
host, `.domain` for its subdomains, `domain` for it and them, an IP address, `host:port`;
like httpx, an entry `a.b.c.d/n` matches the address `a.b.c.d` only, not its range), the
most specific pattern winning.

The one difference from httpx, which proxies loopback too unless NO_PROXY names it: a URL
whose host is loopback - `localhost`, `*.localhost`, any 127.0.0.0/8 address, `::1` -
always goes direct, whatever the variables say (as Go's net/http does). The real ImgGo is
never on loopback, so a loopback ImgGo is the built-in simulator (`make demo`, `imggo-fn
simulator`, the CLI's embedded mode) or a local tunnel, and a proxy cannot reach this
machine's loopback: behind a corporate proxy, every simulator call would fail through it.

Why httpx's own private `get_environment_proxies` and `URLPattern` rather than a copy of
them: a second implementation of those rules could drift from what `httpx.Client` does,
which is the behaviour users expect (the regression this fixes was exactly that); both
are unchanged from httpx 0.27.0 to 0.28.1, the range pyproject pins (<1). An httpx that
moved them fails this module's import - every test and every cold start - and so can
never quietly send ImgGo's traffic direct; the wire tests compare our choice with an
`httpx.Client`'s, so one that changed the rules shows up there.

The environment is read once, when the ImgGo client is built (as httpx reads it when a
client is built), and a proxy our transport cannot speak - SOCKS, which would need extra
packages - is refused then, by the name of the variable that holds it, rather than
quietly bypassed. No message here quotes a proxy URL: it may carry credentials.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import httpx
from httpx._utils import URLPattern, get_environment_proxies

T = TypeVar("T")
U = TypeVar("U")

SUPPORTED_SCHEMES = ("http", "https")


class ProxyRoutes(Generic[T]):
    """URL patterns, most specific first, each to a proxy (or what is built for one: a
    connection pool) or to None, "go direct"."""

    def __init__(self, routes: Iterable[tuple[URLPattern, T | None]] = ()) -> None:
        # URLPattern orders by specificity (a port, then a longer host, then a scheme),
        # and the sort is stable, as in httpx.Client's sorted mounts.
        self._routes = sorted(routes, key=lambda route: route[0])

    def through(self, url: httpx.URL) -> T | None:
        """What `url` goes through: None for loopback, else the first pattern that
        matches it decides."""
        if is_loopback(url.host):
            return None
        for pattern, target in self._routes:
            if pattern.matches(url):
                return target
        return None

    def map(self, build: Callable[[T], U]) -> ProxyRoutes[U]:
        return ProxyRoutes(
            (pattern, None if target is None else build(target)) for pattern, target in self._routes
        )

    def targets(self) -> list[T]:
        return [target for _, target in self._routes if target is not None]


def is_loopback(host: str) -> bool:
    """Whether `host` (a URL's, IPv6 without its brackets) is this machine's loopback:
    the name `localhost` and its subdomains (RFC 6761 keeps them there), or a loopback
    address. A name is never looked up: that is the resolver's, at connect time."""
    name = host.lower().removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def environment_proxies() -> ProxyRoutes[httpx.Proxy]:
    """The environment's proxies, or ValueError for one the ImgGo client cannot use."""
    routes: list[tuple[URLPattern, httpx.Proxy | None]] = []
    for key, url in get_environment_proxies().items():
        routes.append((URLPattern(key), None if url is None else _proxy(key, url)))
    return ProxyRoutes(routes)


def _proxy(key: str, url: str) -> httpx.Proxy:
    scheme = key.removesuffix("://")  # "http", "https" or "all": which variable it came from
    variable = _variable(scheme)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ValueError(
            f"{variable} is not a URL: set it to http://[user:password@]host:port"
        ) from None  # the parser's message may quote the value, and so its password
    if parsed.scheme not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"{variable} names a {parsed.scheme or 'schemeless'} proxy, which the ImgGo "
            "client cannot use (it speaks to http:// and https:// proxies only, no SOCKS): "
            f"set {variable} to an http:// proxy, or unset it for this process"
        )
    # httpx.Proxy takes the credentials out of the URL (they go in Proxy-Authorization)
    # and masks the password in its repr.
    return httpx.Proxy(parsed)


def _variable(scheme: str) -> str:
    """The variable urllib read the `scheme` proxy from: the lower-case name wins there,
    then any other spelling; outside the environment (macOS, Windows) it is the
    system's settings."""
    name = f"{scheme}_proxy"
    if os.environ.get(name):
        return name
    spelled = [key for key, value in os.environ.items() if key.lower() == name and value]
    return spelled[0] if spelled else f"the system's {scheme} proxy setting"
