"""What every store shares that no backend is needed to check: ordering keys for stores
that sort strings only, store URL options, and the bounds of one store call."""

from __future__ import annotations

import pytest

from core.adapters.stores._common import (
    STORE_LIMITS,
    order_key,
    parse_order_key,
    parse_store_url,
)


def test_order_keys_sort_like_the_pairs_they_encode() -> None:
    values = [-1e300, -2.5, -1.0, -0.0, 0.0, 1e-300, 1.0, 1.5, 1_700_000_000.123456, 1e300]
    pairs = [(v, i) for v in values for i in ("a", "ab", "b")]
    assert sorted(pairs, key=lambda p: order_key(*p)) == sorted(pairs)


def test_order_keys_read_back_as_the_pairs_they_encode() -> None:
    # Cursors are made from the key of the last item of a page, which may be unreadable.
    for value in (-1e300, -2.5, 0.0, 1e-300, 1_700_000_000.123456, 1e300):
        for item_id in ("a", "job|with|bars", ""):
            assert parse_order_key(order_key(value, item_id)) == (value, item_id)


OPTIONS = {"endpoint": "where", "region": "which"}


def test_store_urls_name_one_thing_and_known_options() -> None:
    assert parse_store_url("kv://jobs", "kv", OPTIONS) == ("jobs", {})
    assert parse_store_url("KV://jobs/?region=r&endpoint=http://h:1", "kv", OPTIONS) == (
        "jobs",
        {"region": "r", "endpoint": "http://h:1"},
    )
    assert parse_store_url("kv://a%20b", "kv", OPTIONS) == ("a b", {})


@pytest.mark.parametrize(
    "url", ["kv://", "kv://a/b", "kv://a#f", "kv://a?colour=red", "other://a", "kv:a"]
)
def test_malformed_store_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_store_url(url.replace("a", "s3cret-a"), "kv", OPTIONS)
    assert "s3cret" not in str(caught.value)


def test_unknown_options_are_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'colour'.*endpoint.*region"):
        parse_store_url("kv://a?colour=red", "kv", OPTIONS)


def test_a_store_call_is_bounded_well_inside_the_outage_budget() -> None:
    # The cloud scenarios allow an outage 10 s to answer 503: one store call, the first
    # of the request, must give up well before that, retries and backoff included.
    assert STORE_LIMITS.worst_case_s <= 8.5, STORE_LIMITS.worst_case_s
    assert STORE_LIMITS.attempts >= 2  # one blip is retried, not answered 503
