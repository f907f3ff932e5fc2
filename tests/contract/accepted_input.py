"""Accepted input is carriable input: a property every store must keep.

Hypothesis sends arbitrary JSON values (lone surrogates, NaN, huge integers, deep
nesting, any unicode, any type) in every field a caller controls, through the real HTTP
surface, to a service whose ImgGo is the real simulator over loopback HTTP and whose
store is the backend under test. For each request, either the answer is a 4xx envelope,
or the job is stored, readable, listed, sent to ImgGo, finished, and exported in every
`?format=` - nothing accepted fails later in a store, an encoder or httpx.

A store's test module mixes `AcceptedInputContract` into its contract class, next to
`StoreContract`; it needs only the `store` fixture that class already has.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request, Response
from core.bootstrap import Overrides, build_services
from core.config import Settings
from core.ports import JobStore
from core.service.query import EXPORT_FORMATS
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.support.images import ImageHost

KEY = "accepted-input-key"
PATTERN = "image-facts"

# Any JSON value Python can write: strings with lone surrogates (json.dumps escapes
# them), NaN and infinities (written NaN / Infinity), integers of any size.
_any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _any_text
)
any_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_any_text, inner, max_size=3),
    max_leaves=12,
)
# JSON every store should carry: any unicode but lone surrogates, finite numbers, safe
# integers. Accepted extras of this kind must come back intact.
_fine_text = st.text(max_size=12)
fine_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.floats(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | _fine_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_fine_text, inner, max_size=3),
    max_leaves=12,
)
# Deep enough to cross our nesting limit now and then.
deep_json = st.integers(min_value=1, max_value=40).map(
    lambda n: json.loads("[" * n + "]" * n) if n % 2 else {"k": json.loads("[" * n + "]" * n)}
)


@dataclass
class InputBed:
    app: HttpApp
    image_url: str

    def call(self, method: str, path: str, body: Any = None, **query: str) -> Response:
        headers = Headers({"Authorization": f"Bearer {KEY}"})
        raw = b""
        if body is not None:
            headers["Content-Type"] = "application/json"
            # allow_nan (the default) writes NaN / Infinity: hostile input on purpose.
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.app.handle(Request(method, path, headers, dict(query), raw))


def _extras() -> st.SearchStrategy[Any]:
    """An object (usually), holding fine values or, a third of the time, anything."""
    return _field(
        st.integers(0, 2).flatmap(
            lambda n: st.dictionaries(
                _any_text if n == 0 else _fine_text, any_json if n == 0 else fine_json, max_size=4
            )
        )
    )


def _url(good: str) -> st.SearchStrategy[Any]:
    """The image host's URL, sometimes with any text appended, else anything."""
    return _field(st.just(good) | _any_text.map(lambda tail: good + "?" + tail))


def _field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value (so the accepted path is exercised), else anything."""
    return st.integers(0, 9).flatmap(lambda n: valid if n < 8 else any_json | deep_json)


EXAMPLES = 60
# The store fixture lives across examples (each makes fresh jobs); one method runs in
# several classes (one per backend), which is the point.
_SUPPRESSED = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.differing_executors,
]


class AcceptedInputContract:
    """Mixed into a store's contract test class (which provides `store`)."""

    @pytest.fixture(scope="class")
    @classmethod
    def imggo_bed(cls) -> Iterator[tuple[SimulatorServer, ImageHost]]:
        simulator = SimulatorServer(SimulatorConfig(processing_s=0.0)).start()
        images = ImageHost()
        yield simulator, images
        images.close()
        simulator.stop()

    @pytest.fixture
    def bed(self, store: JobStore, imggo_bed: tuple[SimulatorServer, ImageHost]) -> InputBed:
        simulator, images = imggo_bed
        config = Settings(
            store_url="memory://",
            imggo_base_url=simulator.url,
            imggo_api_key=DEMO_API_KEY,
            imggo_timeout_s=2.0,
            api_key_hashes={hash_key(KEY): "tenant-input"},
            ssrf_allow=("127.0.0.1",),
            poll_after_s=0.0,
            dedupe_window_s=0,
        )
        services = build_services(
            config, Overrides(store=store, resolver=lambda host: ["127.0.0.1"])
        )
        return InputBed(HttpApp(services), images.url(7))

    def _assert_carried(self, bed: InputBed, response: Response) -> None:
        assert response.status < 500, response.body
        if response.status >= 400:
            error = json.loads(response.body)["error"]
            assert isinstance(error["code"], str) and error["message"]
            event(f"refused: {error['code']}")
            return
        event("accepted")
        job_id = json.loads(response.body)["id"]
        deadline = time.monotonic() + 10
        while True:
            got = bed.call("GET", f"/v1/jobs/{job_id}")
            assert got.status == 200, got.body
            status = json.loads(got.body)["status"]
            if status in ("succeeded", "failed", "rejected") or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert status == "succeeded", got.body  # the simulator took it and finished it
        listing = bed.call("GET", "/v1/jobs", limit="200")
        assert listing.status == 200, listing.body
        assert job_id in {item["id"] for item in json.loads(listing.body)["items"]}
        for fmt in EXPORT_FORMATS:
            export = bed.call("GET", f"/v1/jobs/{job_id}", format=fmt)
            assert export.status == 200, (fmt, export.body)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=_SUPPRESSED,
    )
    @given(data=st.data())
    def test_accepted_job_input_is_stored_listed_sent_and_exported(
        self, bed: InputBed, data: st.DataObject
    ) -> None:
        body = {
            "pattern_id": data.draw(_field(st.just(PATTERN))),
            "image_url": data.draw(_url(bed.image_url)),
            "extras": data.draw(_extras()),
        }
        if data.draw(st.booleans()):
            body["idempotency_key"] = data.draw(_field(st.uuids().map(str)))
        response = bed.call("POST", "/v1/jobs", body)
        self._assert_carried(bed, response)
        if response.status < 300:  # what was accepted comes back as it was sent
            sent = {} if body["extras"] is None else body["extras"]  # null: no extras
            assert json.loads(response.body)["extras"] == sent

    @settings(
        max_examples=EXAMPLES // 2,
        deadline=None,
        suppress_health_check=_SUPPRESSED,
    )
    @given(data=st.data())
    def test_accepted_batch_input_is_stored_and_readable(
        self, bed: InputBed, data: st.DataObject
    ) -> None:
        item = {
            "image_url": data.draw(_url(bed.image_url)),
            "extras": data.draw(_extras()),
        }
        body = {"pattern_id": data.draw(_field(st.just(PATTERN))), "items": [item, item]}
        response = bed.call("POST", "/v1/batches", body)
        assert response.status < 500, response.body
        if response.status >= 400:
            return
        batch = json.loads(response.body)
        read = bed.call("GET", f"/v1/batches/{batch['id']}")
        assert read.status == 200, read.body
        for view in json.loads(read.body)["items"]:
            if view["job_id"] is not None:
                self._assert_carried(bed, bed.call("GET", f"/v1/jobs/{view['job_id']}"))
