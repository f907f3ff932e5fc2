"""Input that an attacker or a buggy client sends: every answer is a 4xx envelope (never
a 500), and nothing refused is stored."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from core.adapters.stores.memory import MemoryJobStore
from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request
from core.domain import json_input
from core.service.webhook import SIGNATURE_HEADER, sign
from tests.fakes import FakeImggo, make_services

KEY = "key-tenant-a"
SECRET = "whsec_test_0123456789"
URL = "https://images.example/a.png"


@pytest.fixture
def app() -> HttpApp:
    return HttpApp(make_services(imggo=FakeImggo(), api_key_hashes={hash_key(KEY): "a"}))


def call(app, method, path, *, body=b"", ctype="application/json", headers=None, query=None):
    hdrs = Headers({"Authorization": f"Bearer {KEY}", **(headers or {})})
    if ctype:
        hdrs["Content-Type"] = ctype
    return app.handle(Request(method, path, hdrs, query or {}, body))


def envelope(response, status, code):
    assert response.status == status, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == code, error
    return error


def stored_jobs(app) -> list:
    listing = call(app, "GET", "/v1/jobs", ctype=None)
    assert listing.status == 200, listing.body
    return json.loads(listing.body)["items"]


def job_text(extras: str, url: str = '"' + URL + '"') -> str:
    """A job request as raw JSON text: json.dumps cannot write most of these."""
    return '{"pattern_id":"invoice","image_url":' + url + ',"extras":' + extras + "}"


UNCARRIABLE = {
    "lone surrogate in extras": job_text('{"a":"\\ud800"}'),
    "lone surrogate as a key": job_text('{"\\udfff":1}'),
    "lone surrogate in image_url": job_text("{}", url='"https://x.example/\\ud800"'),
    "NaN": job_text('{"a":NaN}'),
    "Infinity": job_text('{"a":-Infinity}'),
    "1e999": job_text('{"a":1e999}'),
    "huge integer": job_text('{"a":1' + "0" * 400 + "}"),
    "past 2**53": job_text('{"a":9007199254740993}'),
    "a float past 2**53": job_text('{"a":-1.5e300}'),
    "deep nesting": job_text('{"a":' * 40 + "1" + "}" * 40),
    "very deep nesting": job_text("[" * 100_000 + "]" * 100_000),
}


@pytest.mark.parametrize("raw", UNCARRIABLE.values(), ids=UNCARRIABLE.keys())
def test_uncarriable_json_is_a_400_and_nothing_is_stored(app, raw):
    error = envelope(call(app, "POST", "/v1/jobs", body=raw.encode()), 400, "invalid_json")
    assert error["details"]["reason"] in {
        "lone_surrogate",
        "non_finite_number",
        "number_out_of_range",
        "too_deep",
        "syntax",
    }
    assert stored_jobs(app) == []


@pytest.mark.parametrize("raw", list(UNCARRIABLE.values())[:4])
def test_uncarriable_json_in_batches_and_uploads_is_refused_too(app, raw):
    item = raw.replace('"pattern_id":"invoice",', "")
    batch = '{"pattern_id":"invoice","items":[' + item + "]}"
    envelope(call(app, "POST", "/v1/batches", body=batch.encode()), 400, "invalid_json")
    upload = raw.replace('"image_url"', '"filename"').replace(
        "{", '{"content_type":"image/png","size":10,', 1
    )
    envelope(call(app, "POST", "/v1/uploads", body=upload.encode()), 400, "invalid_json")
    assert stored_jobs(app) == []


def test_extras_sent_as_a_form_field_is_read_strictly(app):
    boundary = "b0undary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="pattern_id"\r\n\r\ninvoice\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="extras"\r\n\r\n{{"a": NaN}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"\x89PNG\r\n\x1a\n"
        + b"\x00" * 32
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = call(
        app, "POST", "/v1/jobs", body=form, ctype=f"multipart/form-data; boundary={boundary}"
    )
    assert envelope(response, 422, "invalid_extras")["details"]["reason"] == "non_finite_number"
    assert stored_jobs(app) == []


def test_the_strict_reader_keeps_what_is_fine():
    value = {"a": [1, -2.5, 9007199254740991, "\U0001f600", None, True], "b": {"c": "é"}}
    assert json_input.loads(json.dumps(value)) == value
    assert json_input.loads('"\\ud83d\\ude00"') == "\U0001f600"  # a pair, not a lone half


@pytest.mark.parametrize(
    "header",
    ["sha256=\u00e9\u00e9", "sha256=\U0001f600", "\ud800", "sha256=" + "0" * 64 + "\x00"],
)
def test_a_signature_header_with_any_characters_is_a_401(app, header):
    body = b'{"event":"job.succeeded","job_id":"x","timestamp":"2026-01-01T00:00:00Z"}'
    response = call(
        app, "POST", "/v1/webhooks/imggo", body=body, headers={SIGNATURE_HEADER: header}
    )
    envelope(response, 401, "signature_invalid")


def test_a_signed_webhook_with_uncarriable_json_is_a_400(app):
    body = (
        b'{"event":"job.succeeded","job_id":"x","manifest":{"a":NaN},'
        b'"timestamp":"2026-01-01T00:00:00Z"}'
    )
    response = call(
        app, "POST", "/v1/webhooks/imggo", body=body, headers={SIGNATURE_HEADER: sign(SECRET, body)}
    )
    envelope(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "given",
    ["x" * 60_000, "abc\r\nSet-Cookie: a=b", "id\x00", "caf\u00e9", "", "a b"],
)
def test_an_unsafe_request_id_is_replaced(app, given):
    response = call(app, "GET", "/health", ctype=None, headers={"X-Request-Id": given})
    assert response.status == 200
    echoed = response.headers.get("x-request-id")
    assert echoed and echoed != given and len(echoed) <= 128 and echoed.isalnum()


def test_a_safe_request_id_is_kept(app):
    response = call(app, "GET", "/health", ctype=None, headers={"X-Request-Id": "req-1.a:B_2"})
    assert response.headers.get("x-request-id") == "req-1.a:B_2"


@pytest.mark.parametrize("method", ["TRACE", "FOO", "OPTIONS", "CONNECT", "PROPFIND"])
def test_a_method_the_route_table_does_not_know_is_a_405_with_allow(app, method):
    response = call(app, method, "/v1/jobs", ctype=None)
    envelope(response, 405, "method_not_allowed")
    assert response.headers.get("allow") == "GET, POST"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/jobs", "status"),
        ("/v1/jobs", "limit"),
        ("/v1/jobs", "cursor"),
        ("/v1/jobs/00000000-0000-0000-0000-000000000000", "format"),
    ],
)
def test_an_empty_query_parameter_is_a_422(app, path, name):
    envelope(call(app, "GET", path, ctype=None, query={name: ""}), 422, f"invalid_{name}")


@pytest.mark.parametrize("limit", [" 5", "1_0", "\u0665", "+5", "5.0", "9" * 400])
def test_limit_takes_plain_digits_only(app, limit):
    envelope(call(app, "GET", "/v1/jobs", ctype=None, query={"limit": limit}), 422, "invalid_limit")


def test_a_cursor_with_a_400_digit_number_is_a_422_not_a_500(app):
    import base64

    forged = base64.urlsafe_b64encode(b"[1,1" + b"0" * 400 + b',"j"]').decode().rstrip("=")
    envelope(
        call(app, "GET", "/v1/jobs", ctype=None, query={"cursor": forged}), 422, "invalid_cursor"
    )


@pytest.mark.parametrize("value", ["invoice\n", "invoice\r\n", "\ninvoice", ""])
def test_pattern_ids_are_matched_in_full(app, value):
    body = json.dumps({"pattern_id": value, "image_url": URL}).encode()
    envelope(call(app, "POST", "/v1/jobs", body=body), 422, "invalid_pattern_id")


@pytest.mark.parametrize("key", ["k1\n", "k1\r\n", "k 1"])
def test_idempotency_keys_are_matched_in_full(app, key):
    body = json.dumps({"pattern_id": "invoice", "image_url": URL}).encode()
    response = call(app, "POST", "/v1/jobs", body=body, headers={"Idempotency-Key": key})
    envelope(response, 422, "invalid_idempotency_key")
    batch = json.dumps({"pattern_id": "invoice", "items": [{"image_url": URL}]}).encode()
    response = call(app, "POST", "/v1/batches", body=batch, headers={"Idempotency-Key": key})
    envelope(response, 422, "invalid_idempotency_key")


def batch_body(*urls: str, pattern: str = "invoice") -> bytes:
    return json.dumps({"pattern_id": pattern, "items": [{"image_url": u} for u in urls]}).encode()


def test_a_batch_key_reused_with_another_payload_is_a_409(app):
    key = {"Idempotency-Key": "batch-1"}
    first = call(app, "POST", "/v1/batches", body=batch_body(URL), headers=key)
    again = call(app, "POST", "/v1/batches", body=batch_body(URL), headers=key)
    assert (first.status, again.status) == (202, 200)
    assert json.loads(first.body)["id"] == json.loads(again.body)["id"]
    other_url = call(app, "POST", "/v1/batches", body=batch_body(URL + "?2"), headers=key)
    envelope(other_url, 409, "idempotency_conflict")
    other_pattern = call(
        app, "POST", "/v1/batches", body=batch_body(URL, pattern="receipt"), headers=key
    )
    envelope(other_pattern, 409, "idempotency_conflict")


@pytest.mark.parametrize("pattern", ["", "bad pattern", "x" * 129])
def test_a_batch_that_can_never_succeed_is_a_422_and_stores_nothing(app, pattern):
    response = call(app, "POST", "/v1/batches", body=batch_body(URL, URL, pattern=pattern))
    envelope(response, 422, "invalid_pattern_id")
    assert stored_jobs(app) == []


class LookupRaceStore(MemoryJobStore):
    """Holds every batch look-up until all racers have looked: they all see no batch,
    as concurrent requests on separate instances can."""

    def __init__(self, racers: int, **kw) -> None:
        super().__init__(**kw)
        self.gate = threading.Barrier(racers, timeout=5)

    def get_batch(self, batch_id):
        found = super().get_batch(batch_id)
        self.gate.wait()
        return found


def test_concurrent_batch_creates_with_one_key_make_one_batch():
    racers = 8
    imggo = FakeImggo()
    services = make_services(imggo=imggo, api_key_hashes={hash_key(KEY): "a"})
    services = dataclasses.replace(services, store=LookupRaceStore(racers, clock=services.clock))
    app = HttpApp(services)
    statuses: list[int] = []
    ids: set[str] = set()

    def create() -> None:
        body = batch_body(URL, URL + "?b")
        response = call(app, "POST", "/v1/batches", body=body, headers={"Idempotency-Key": "race"})
        statuses.append(response.status)
        ids.add(json.loads(response.body)["id"])

    threads = [threading.Thread(target=create) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * (racers - 1) + [202]
    assert len(ids) == 1
    assert imggo.submit_calls == 2  # each item sent once, by the one request that won


@pytest.mark.parametrize("item", [{}, {"image_url": None}, {"image_url": 7}, {"extras": {}}])
def test_a_batch_item_without_a_url_string_refuses_the_request(app, item):
    body = json.dumps({"pattern_id": "invoice", "items": [{"image_url": URL}, item]}).encode()
    error = envelope(call(app, "POST", "/v1/batches", body=body), 422, "invalid_field")
    assert error["details"] == {"index": 1, "field": "image_url"}
    assert stored_jobs(app) == []
