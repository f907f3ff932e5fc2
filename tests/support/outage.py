"""Real outages on loopback, for the adapters' outage tests: a port nobody listens on
(connections are refused at once) and a tarpit (connections are accepted by the
kernel and then never answered, so only a read timeout ends the wait)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


def dead_port() -> int:
    """A loopback port that was free a moment ago and is closed now: connect() is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def tarpit() -> Iterator[int]:
    """A listening socket that never accepts: the kernel completes the TCP handshake
    (up to the backlog), nothing ever reads the request or answers it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def timed(action: Callable[[], T]) -> tuple[float, T | BaseException]:
    """(seconds taken, what `action` returned or raised)."""
    start = time.monotonic()
    try:
        outcome: T | BaseException = action()
    except Exception as exc:
        outcome = exc
    return time.monotonic() - start, outcome
