"""The pure helpers under ImggoClient: Retry-After, X-RateLimit-* and error envelopes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.adapters.imggo.errors import error_from_response, parse_envelope
from core.adapters.imggo.headers import RateLimit, parse_rate_limit, parse_retry_after

WALL = 1_736_935_200.0  # 2025-01-15T10:00:00Z


def wall() -> float:
    return WALL


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("0", 0.0),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("soon", None),
        ("inf", None),
        ("Wed, 15 Jan 2025 10:00:30 GMT", 30.0),
        ("Wed, 15 Jan 2025 09:00:00 GMT", 0.0),  # in the past: go now
        ("Wed, 15 Jan 2025 10:00:30 -0000", 30.0),
        ("Wednesday, 99 Foo 2025", None),
    ],
)
def test_parse_retry_after(raw: str | None, expected: float | None) -> None:
    assert parse_retry_after(raw, wall_now=wall) == expected


@given(st.text(max_size=40))
def test_parse_retry_after_never_raises_nor_goes_negative(raw: str) -> None:
    value = parse_retry_after(raw, wall_now=wall)
    assert value is None or value >= 0


def test_parse_rate_limit() -> None:
    assert parse_rate_limit({}) is None
    assert parse_rate_limit(
        {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1736935260"}
    ) == RateLimit(60, 0, 1736935260.0)
    assert parse_rate_limit({"x-ratelimit-limit": "60.0", "x-ratelimit-remaining": "lots"}) == (
        RateLimit(60, None, None)
    )


def test_rate_limit_is_frozen() -> None:
    limit = RateLimit(1, 1, None)
    with pytest.raises(AttributeError):
        limit.remaining = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"success": False, "error": {"code": "C", "message": "M", "details": {"a": 1}}},
            ("C", "M", {"a": 1}),
        ),
        ({"success": False, "error": {"code": "C"}}, ("C", "", {})),
        ({"error": "plain message"}, ("", "plain message", {})),
        ({"success": False}, None),
        ([1, 2], None),
    ],
)
def test_parse_envelope(body: object, expected: object) -> None:
    assert parse_envelope(json.dumps(body).encode()) == expected


@pytest.mark.parametrize("body", [b"", b"<html>", b"{trunc", b"\xff\xfe"])
def test_parse_envelope_rejects_non_json(body: bytes) -> None:
    assert parse_envelope(body) is None


def test_error_from_response_falls_back_on_status() -> None:
    error = error_from_response(503, b"", retry_after_s=2.0)
    assert (error.code, error.message, error.retryable, error.retry_after_s) == (
        "http_503",
        "ImgGo answered HTTP 503",
        True,
        2.0,
    )
    assert error.details == {}
    partial = error_from_response(404, json.dumps({"success": False, "error": {}}).encode())
    assert (partial.code, partial.message, partial.retryable) == (
        "http_404",
        "ImgGo answered HTTP 404",
        False,
    )
