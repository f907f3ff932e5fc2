"""Multipart ingest on the simulator over real HTTP: it reads forms with the project's one
parser (core.api.multipart) and answers every unreadable form 400 INVALID_MULTIPART."""

from __future__ import annotations

import time

import httpx
import pytest

from core.api.multipart import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_PARTS
from tests.simulator.helpers import EXAMPLES, assert_error, wait_for_job

INGEST = "/api/patterns/invoice/ingest"
PNG = (EXAMPLES / "invoice.png").read_bytes()


def part(name: str, value: bytes, *, boundary: str = "b", disposition: str = "") -> bytes:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{disposition}\r\n'
    return head.encode() + b"\r\n" + value + b"\r\n"


def image(filename: bytes = b"invoice.png", boundary: str = "b") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="'.encode()
        + filename
        + b'"\r\nContent-Type: image/png\r\n\r\n'
        + PNG
        + b"\r\n"
    )


def post(client: httpx.Client, body: bytes, boundary: str = "b") -> httpx.Response:
    ctype = f"multipart/form-data; boundary={boundary}"
    return client.post(INGEST, content=body, headers={"Content-Type": ctype})


def test_tens_of_thousands_of_empty_parts_are_refused_at_once(client: httpx.Client) -> None:
    body = part("x", b"") * 50_000 + image() + b"--b--\r\n"
    started = time.perf_counter()
    error = assert_error(post(client, body), 400, "INVALID_MULTIPART")
    assert error["details"] == {"max_parts": DEFAULT_MAX_PARTS}
    assert time.perf_counter() - started < 1.0  # 2.5 MB over loopback, then parts 1..65


def test_oversize_part_headers_are_refused(client: httpx.Client) -> None:
    padding = b"X-Pad: " + b"x" * DEFAULT_MAX_HEADER_BYTES + b"\r\n"
    body = image().replace(b"Content-Type: image/png\r\n", padding + b"Content-Type: image/png\r\n")
    error = assert_error(post(client, body + b"--b--\r\n"), 400, "INVALID_MULTIPART")
    assert error["details"] == {"max_header_bytes": DEFAULT_MAX_HEADER_BYTES}


@pytest.mark.parametrize(
    "body",
    [
        image(),  # no closing delimiter
        image()[:-200],  # cut inside the file
        image(filename=b"\xff.png") + b"--b--\r\n",  # a file name that is not UTF-8
        b"--b\r\nContent-Type: image/png\r\n\r\n" + PNG + b"\r\n--b--\r\n",  # no disposition
    ],
    ids=["unterminated", "truncated", "non-utf8-filename", "no-disposition"],
)
def test_malformed_forms_are_400_invalid_multipart(client: httpx.Client, body: bytes) -> None:
    assert_error(post(client, body), 400, "INVALID_MULTIPART")


def test_the_first_of_repeated_fields_wins_as_in_formdata_get(client: httpx.Client) -> None:
    body = (
        part("idempotency_key", b"first-key")
        + part("idempotency_key", b"second-key")
        + image()
        + image(filename=b"second.png")
        + b"--b--\r\n"
    )
    response = post(client, body)
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["data"]["job_id"])
    assert job["idempotency_key"] == "first-key" and job["image_url"].endswith("/invoice.png")


def test_a_quoted_boundary_with_a_space_is_read(client: httpx.Client) -> None:
    boundary = "sim boundary"
    body = part("extras", b'{"n": 1}', boundary=boundary) + image(boundary=boundary)
    response = client.post(
        INGEST,
        content=body + f"--{boundary}--\r\n".encode(),
        headers={"Content-Type": f'multipart/form-data; boundary="{boundary}"'},
    )
    assert response.status_code == 202, response.text
    assert wait_for_job(client, response.json()["data"]["job_id"])["extras"] == {"n": 1}
