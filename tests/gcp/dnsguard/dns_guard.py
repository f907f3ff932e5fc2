"""The DNS guard itself (importable both by sitecustomize and by the test process)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_ALLOWED = {"localhost", "localhost.", ""}
_original = socket.getaddrinfo


def _literal(host: Any) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in _ALLOWED:
        return True
    try:
        ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _literal(host):
        raise OSError(f"DNS lookup of {host!r} refused: the tests stay on loopback")
    return _original(host, *args, **kwargs)


def install() -> None:
    socket.getaddrinfo = guarded_getaddrinfo


def uninstall() -> None:
    socket.getaddrinfo = _original
