"""The plain, cloud-neutral request and response every handler translates to and from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl


class Headers:
    """Case-insensitive header map (HTTP names are case-insensitive; clouds disagree on case)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        if items is None:
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self[name] = value

    def __setitem__(self, name: str, value: str) -> None:
        self._items[name.lower()] = (name, value)

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self._items.get(name.lower())
        return found[1] if found is not None else default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def items(self) -> list[tuple[str, str]]:
        return list(self._items.values())

    def as_dict(self) -> dict[str, str]:
        return dict(self._items.values())


@dataclass(eq=False)
class Request:
    """An HTTP request as every cloud's handler hands it to the core: the method, the
    path, case-insensitive headers, the query (first value of a name), the body
    read whole, and what routing and authentication add."""

    method: str
    path: str
    headers: Headers = field(default_factory=Headers)
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)
    tenant: str | None = None  # set by authentication

    @staticmethod
    def parse_query(raw: str) -> dict[str, str]:
        """First value wins for a repeated name; our API takes single values only."""
        query: dict[str, str] = {}
        for key, value in parse_qsl(raw, keep_blank_values=True):
            query.setdefault(key, value)
        return query

    @property
    def content_type(self) -> str:
        """The bare media type, lower-cased (`application/json`), or ''."""
        return (self.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


@dataclass(eq=False)
class Response:
    """What the core answers, for the cloud's handler to turn into its platform's
    response."""

    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=Headers)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        hdrs = Headers(headers)
        hdrs["Content-Type"] = "application/json"
        return cls(status, body, hdrs)

    def json_body(self) -> Any:
        return json.loads(self.body)
