"""js_json against the reference itself: Node's JSON.stringify, one `node` process per test
for a whole batch of values; and the webhook bodies it writes, over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
import shutil
import struct
import subprocess
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imggo_simulator.js_json import dumps, number, stringify
from tests.simulator.helpers import WebhookReceiver, wait_for_job

# Reads a JSON array (non-finite numbers tagged, as JSON cannot hold them) and writes
# JSON.stringify of each element, one per line (its output never holds a raw newline).
NODE_SCRIPT = r"""
const tag = "\u0000nonfinite";
const revive = (k, v) =>
  v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1
    && tag in v ? Number(v[tag]) : v;
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const values = JSON.parse(input, revive);
  process.stdout.write(values.map((v) => JSON.stringify(v)).join("\n"));
});
"""
_TAG = "\u0000nonfinite"


def _tagged(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {_TAG: repr(value).replace("inf", "Infinity").replace("nan", "NaN")}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    return value


def node_stringify(values: list[Any]) -> list[bytes]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node 20) is needed: it is the reference JSON.stringify")
    # ensure_ascii: lone surrogates travel as \ud800 escapes, which JSON.parse keeps.
    payload = json.dumps([_tagged(v) for v in values], ensure_ascii=True)
    done = subprocess.run(
        [node, "-e", NODE_SCRIPT],
        input=payload.encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split(b"\n")


def assert_same_as_node(values: list[Any]) -> None:
    expected = node_stringify(values)
    assert len(expected) == len(values)
    wrong = [
        (v, ours, js) for v, js in zip(values, expected, strict=True) if (ours := dumps(v)) != js
    ]
    assert not wrong, "\n".join(f"{v!r}: ours {o!r}, JSON.stringify {j!r}" for v, o, j in wrong[:5])


EDGE_CASES: list[Any] = [
    1.0, -1.0, 0.0, -0.0, 1e-7, 1.5e21, 1.2345678901234568e20, 1e21, 1e-6, 1.5e-6, 0.1,
    123456789012345680000.0, 5e-324, 1.7976931348623157e308, 2.5e-7, 100.0, 1e20, 123.456,
    float("nan"), float("inf"), float("-inf"), 2**53, 2**53 + 1, -(2**63), 10**400,
    "", "a\"b\\c/d", "\n\r\t\b\f\x00\x01\x1f\x7f", "\u2028\u2029", "é€😀",
    "\ud800", "\udfff", "x\udc80y", "\ud83d\ude00", "\ude00\ud83d",
    {"b": 1, "a": 2, "10": 3, "2": 4, "01": 5, "-1": 6, "1.0": 7},
    {"4294967294": 0, "4294967295": 1, "0": 2}, {"\ud800": [None, True, False]},
    [], {}, [[[]]], {"aspect_ratio": 1.0, "megapixels": 1e-7, "ok": [1.0, 2.5]},
]  # fmt: skip


def test_edge_cases_match_node() -> None:
    assert_same_as_node(EDGE_CASES)


def test_number_to_string_examples_from_the_spec() -> None:
    assert [number(x) for x in (1.0, 1e-7, 1.5e21, 1.2345678901234568e20, -0.0)] == [
        "1", "1e-7", "1.5e+21", "123456789012345680000", "0",
    ]  # fmt: skip
    assert stringify({"2": 0, "b": 1.0, "1": "\ud800"}) == '{"1":"\\ud800","2":0,"b":1}'


def _double(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


_floats = st.one_of(st.floats(), st.integers(0, 2**64 - 1).map(_double))
_texts = st.text(
    st.one_of(
        st.characters(),
        st.characters(categories=["Cs"]),  # lone surrogates, which JS escapes
        st.characters(max_codepoint=0x20),
    ),
    max_size=12,
)
_keys = st.one_of(
    _texts,
    st.integers(0, 2**33).map(str),  # array-index keys (and some just past the limit)
    st.sampled_from(["01", "-0", "1e3", "4294967294", "4294967295"]),
)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _floats | _texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=12,
)


def test_generated_values_match_node() -> None:
    batch: list[Any] = []

    @settings(max_examples=400, deadline=None, database=None)
    @given(_values)
    def collect(value: Any) -> None:
        batch.append(value)

    collect()  # hypothesis generates the batch; node judges all of it in one process
    assert len(batch) >= 100
    assert_same_as_node(batch)


# ------------------------------------------------------------------ webhook bodies, end to end
def test_webhook_body_is_json_stringify_bytes_and_signed_over_them(
    client: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    secret = "s3cret-s3cret-s3cret"
    client.post("/api/webhooks", json={"url": webhook_receiver.url, "secret": secret})
    square = io.BytesIO()
    Image.new("RGB", (10, 10), (200, 30, 30)).save(square, format="PNG")
    files = {"image": ("square.png", square.getvalue(), "image/png")}
    job_id = client.post("/api/patterns/image-facts/ingest", files=files).json()["data"]["job_id"]

    headers, body = webhook_receiver.next()
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-imggo-signature"] == f"sha256={expected}"
    assert b'"aspect_ratio":1,' in body  # JS writes 1, Python's json 1.0
    assert node_stringify([json.loads(body)]) == [body]
    assert wait_for_job(client, job_id)["manifest"]["aspect_ratio"] == 1


def test_a_lone_surrogate_in_a_request_is_answered_escaped_not_500(client: httpx.Client) -> None:
    # JSON allows "\ud800"; the answers must still be valid UTF-8, escaped as JS escapes it.
    body = b'{"image_url": "http://127.0.0.1:9/x.png", "extras": {"note": "a\\ud800b"}}'
    created = client.post(
        "/api/patterns/invoice/ingest", content=body, headers={"Content-Type": "application/json"}
    )
    assert created.status_code == 202, created.text
    answer = client.get(f"/api/jobs/{created.json()['data']['job_id']}")
    assert answer.status_code == 200, answer.text
    assert b'"extras":{"note":"a\\ud800b"}' in answer.content
    assert answer.json()["data"]["extras"] == {"note": "a\ud800b"}
