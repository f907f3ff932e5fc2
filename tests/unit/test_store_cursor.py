"""The listing cursor shared by every store: opaque, URL-safe, and refusing forgeries
with ValueError only (the HTTP layer maps exactly that to a 400)."""

from __future__ import annotations

import base64
import contextlib
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.adapters.stores._common import decode_cursor, encode_cursor, is_live

# Cursors hold timestamps: well inside the range every JSON reader agrees on.
finite = st.floats(min_value=-(2**53 - 1), max_value=2**53 - 1)


@given(created_at=finite | st.integers(-(2**53 - 1), 2**53 - 1), job_id=st.text())
def test_round_trip(created_at: float, job_id: str) -> None:
    cursor = encode_cursor((created_at, job_id))
    assert re.fullmatch(r"[A-Za-z0-9_-]*", cursor)  # safe in a query string unescaped
    assert decode_cursor(cursor) == (created_at, job_id)


@given(st.text())
def test_any_text_decodes_or_raises_value_error(text: str) -> None:
    try:
        created_at, job_id = decode_cursor(text)
    except ValueError:
        return
    assert isinstance(job_id, str)
    assert isinstance(created_at, int | float)


@given(st.binary(max_size=200))
def test_any_bytes_behind_base64_decode_or_raise_value_error(raw: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode_cursor(base64.urlsafe_b64encode(raw).decode())


@pytest.mark.parametrize(
    "payload",
    [
        [1, True, "j"],  # bool is an int to Python, not a time
        [1, "NaN", "j"],
        [1, 1.0, 7],
        [1, 1.0],
        {"c": 1.0, "i": "j"},
        "[" * 1500,  # deep enough to exhaust the recursion limit, short enough to parse
        "[" * 3000,  # longer than any cursor we mint
    ],
)
def test_forged_payloads_are_refused(payload: object) -> None:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    with pytest.raises(ValueError):
        decode_cursor(base64.urlsafe_b64encode(raw.encode()).decode().rstrip("="))


def test_nan_in_json_is_refused() -> None:
    raw = base64.urlsafe_b64encode(b'[1,NaN,"j"]').decode()
    with pytest.raises(ValueError):
        decode_cursor(raw)


def test_expiry_is_reached_at_the_instant() -> None:
    assert is_live(None, 1e12)
    assert is_live(10.0, 9.999)
    assert not is_live(10.0, 10.0)
    assert not is_live(10.0, 11.0)


@pytest.mark.parametrize(
    "forged",
    [
        '[1, 1%s, "j"]' % ("0" * 400),  # math.isfinite() would raise OverflowError
        '[1, 1e999, "j"]',
        '[1, 1.5, "\\ud800"]',  # a lone surrogate no store can hold
    ],
)
def test_out_of_range_numbers_and_lone_surrogates_are_value_errors(forged: str) -> None:
    cursor = base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")
    with pytest.raises(ValueError):
        decode_cursor(cursor)
