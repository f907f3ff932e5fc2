"""Queue on Azure Queue Storage: `azurequeue://QUEUE`.

Each WorkItem is one message whose text is the core wire format
(core.service.messages), base64-encoded on the wire (TextBase64EncodePolicy): what the
Functions host's queue trigger decodes by default (host.json `messageEncoding`). The
worker function's queue trigger delivers each message; handlers_azure acknowledges it
(returns) or raises so the host makes it visible again after the visibility timeout,
and after `maxDequeueCount` deliveries moves it to `QUEUE-poison`.

Queue Storage has no batch send: one PutMessage per item, in order, each within the
client's CallLimits; the first outage ends the send with UnavailableError
`store_unavailable` (the jobs stay accepted; the reconciler dispatches them later). A
missing queue is raised as it is: a deployment mistake.

The client is built on the first send, so a cold start that never queues pays nothing.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.adapters.azure import clients
from core.adapters.azure.errors import unavailable_on_outage
from core.adapters.outages import DEFAULT_LIMITS, CallLimits
from core.ports import WorkItem, check_delay
from core.service.messages import encode_work_item

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

BACKEND = "Queue Storage"
_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]")


def parse_url(url: str) -> str:
    """`azurequeue://work` -> "work" (3-63 lowercase letters, digits, single hyphens)."""
    scheme, sep, rest = url.partition("://")
    if scheme != "azurequeue" or not sep or not _QUEUE_NAME.fullmatch(rest):
        raise ValueError("an Azure queue URL is azurequeue://NAME (lowercase, digits, hyphens)")
    return rest


class StorageQueue:
    def __init__(
        self,
        name: str,
        *,
        connection: str | None = None,
        limits: CallLimits = DEFAULT_LIMITS,
    ) -> None:
        """`connection`: a connection string, instead of the account the environment
        names (core.adapters.azure.clients)."""
        self.name = name
        self._client: QueueClient | None = None
        self._connection = connection
        self._limits = limits
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> StorageQueue:
        return cls(parse_url(url))

    max_delay_s = 7 * 24 * 3600.0  # a message's visibility timeout at most

    def send(self, items: Sequence[WorkItem], *, delay_s: float = 0.0) -> None:
        check_delay(self, delay_s)
        if not items:
            return
        client = self.client
        hidden = math.ceil(delay_s) or None
        for item in items:
            with unavailable_on_outage(BACKEND):
                client.send_message(encode_work_item(item), visibility_timeout=hidden)

    def create(self) -> None:
        """Create the queue and its poison queue (tests, local stacks; Bicep on Azure)."""
        from azure.core.exceptions import ResourceExistsError

        for name in (self.name, f"{self.name}-poison"):
            try:
                with unavailable_on_outage(BACKEND):
                    _client(name, self._limits, self._connection).create_queue()
            except ResourceExistsError:
                pass

    @property
    def client(self) -> QueueClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = _client(self.name, self._limits, self._connection)
        return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _client(name: str, limits: CallLimits, connection: str | None) -> QueueClient:
    from azure.storage.queue import LinearRetry, QueueClient, TextBase64EncodePolicy

    address, credential = (connection, None) if connection else clients.account("queue")
    options = {
        **clients.storage_options(limits, LinearRetry),
        "message_encode_policy": TextBase64EncodePolicy(),
    }
    if credential is None:
        return QueueClient.from_connection_string(address, name, **options)
    return QueueClient(address, name, credential=credential, **options)


def from_url(url: str) -> StorageQueue:
    """What core.bootstrap calls for `azurequeue://` queue URLs."""
    return StorageQueue.from_url(url)


__all__ = ["BACKEND", "StorageQueue", "from_url", "parse_url"]
