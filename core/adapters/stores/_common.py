"""What every JobStore adapter must agree on, kept in one place so they cannot drift.

A cursor minted by one page of a listing must mean the same thing to every store,
expiry must be judged by the same rule everywhere, a store URL's options are parsed
and refused alike, and a backend that sorts on strings only (DynamoDB's range keys,
Azure Tables' row keys) orders jobs exactly as one that sorts (created_at, id) pairs.
How long one call to a networked backend may take is decided here too. (The stored
form of a job, and what counts as readable, is _records'; what every store does with
it, _base's.)
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from core.adapters.outages import CallLimits
from core.domain import json_input
from core.domain.job import Job

_CURSOR_FORMAT = 1  # bump if the cursor's contents change, so old cursors fail loudly
_MAX_CURSOR_CHARS = 2048  # ours are ~100; a cap keeps hostile input cheap to refuse

SortKey = tuple[float, str]
"""(created_at, id): the total order of a tenant's listing. The id breaks created_at ties,
so keyset pagination never skips or repeats a job that shares a timestamp."""


def is_live(expires_at: float | None, now: float) -> bool:
    """Alive until the instant `expires_at` is reached; no expiry means forever.

    Every store filters with this exact rule so an item is never visible in one adapter
    and gone in another at the same `now`.
    """
    return expires_at is None or expires_at > now


def sort_key(job: Job) -> SortKey:
    return (job.created_at, job.id)


def encode_cursor(key: SortKey) -> str:
    """Opaque to callers (URL-safe, no padding) so the encoding may change behind
    `_CURSOR_FORMAT`; keyset rather than offset so inserts between pages cannot shift it."""
    raw = json.dumps([_CURSOR_FORMAT, key[0], key[1]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> SortKey:
    """The sort key a cursor resumes after. ValueError for anything we did not mint:
    the HTTP layer turns that into a 400 instead of a 500."""
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise ValueError("malformed cursor")
    try:
        padded = cursor.encode("ascii") + b"=" * (-len(cursor) % 4)
        # Strict: a 400-digit created_at or a lone surrogate in the id is not ours either.
        decoded = json_input.loads(base64.urlsafe_b64decode(padded).decode("utf-8"))
    except (ValueError, binascii.Error, json_input.JsonInputError) as exc:
        raise ValueError("malformed cursor") from exc
    if not isinstance(decoded, list) or len(decoded) != 3 or decoded[0] != _CURSOR_FORMAT:
        raise ValueError("malformed cursor")
    _, created_at, job_id = decoded
    # bool is an int subclass; a float('nan') would compare false with everything.
    if (
        isinstance(created_at, bool)
        or not isinstance(created_at, int | float)
        or not math.isfinite(created_at)
        or not isinstance(job_id, str)
    ):
        raise ValueError("malformed cursor")
    return (created_at, job_id)


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


# ---------------------------------------------------------------------------- ordering keys
def sortable(value: float) -> str:
    """16 hex digits that sort as strings exactly as the floats sort as numbers: the
    IEEE-754 bits, sign-flipped so negatives come first and in reverse."""
    value += 0.0  # -0.0 == 0.0 as numbers, so they must encode alike
    bits: int = struct.unpack(">Q", struct.pack(">d", value))[0]
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


def unsortable(key: str) -> float:
    """The inverse of sortable."""
    bits = int(key, 16)
    bits = bits ^ (1 << 63) if bits >> 63 else bits ^ 0xFFFF_FFFF_FFFF_FFFF
    value: float = struct.unpack(">d", struct.pack(">Q", bits))[0]
    return value


def order_key(value: float, item_id: str) -> str:
    """(value, id) as one string that sorts like the pair: equal values fall back to
    comparing ids. A key range (`< order_key(*cursor)`) is then keyset pagination."""
    return f"{sortable(value)}|{item_id}"


def parse_order_key(key: str) -> SortKey:
    """The inverse of order_key (the hex part holds no '|'; the id may)."""
    value, _, item_id = key.partition("|")
    return unsortable(value), item_id


# ---------------------------------------------------------------------------- store URLs
def parse_store_url(
    url: str, scheme: str, options: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """`scheme://NAME[?name=value&...]` -> (NAME, {name: value}). `options` maps each
    option the store knows to a description for the error message: an unknown one is
    refused (a typo must not silently fall back to a default), and so are a path, a
    fragment and an empty NAME. Messages name the scheme and options, never the URL,
    which may one day carry a credential."""
    parts = urlsplit(url)
    if parts.scheme.lower() != scheme:
        raise ValueError(f"not a {scheme} URL: {parts.scheme}://")
    name = unquote(parts.netloc)
    if not name or parts.path not in ("", "/") or parts.fragment:
        raise ValueError(f"a {scheme} URL names one thing: {scheme}://NAME[?options]")
    given: dict[str, str] = {}
    for option, value in parse_qsl(parts.query, keep_blank_values=False):
        if option not in options:
            known = ", ".join(f"{k} ({v})" for k, v in options.items()) or "none"
            raise ValueError(f"unknown {scheme} URL option {option!r}; known options: {known}")
        given[option] = value
    return name, given


# ---------------------------------------------------------------------------- call limits
STORE_LIMITS = CallLimits(connect_s=1.0, read_s=2.5, attempts=2, retry_s=3.5)
"""The bounds of one call to a networked job store (DynamoDB, Firestore, ...). Tighter
than core.adapters.outages.DEFAULT_LIMITS: nearly every request and queue message makes
a store call first, items are small (a manifest too large for one is in the blob store),
and an outage must answer 503 within seconds, not spend a function's whole timeout.
A store that never answers holds a call for about 2 x 2.5 s (botocore) or 3.5 s (Google's
retry deadline); at worst STORE_LIMITS.worst_case_s."""
