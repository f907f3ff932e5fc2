"""The one multipart parser (core.api.multipart): bounds, malformed forms, and the HTTP
surface's answers to them through HttpApp with in-memory fakes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.api.app import HttpApp
from core.api.auth import hash_key
from core.api.http import Headers, Request, Response
from core.api.multipart import (
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_PARTS,
    FormPart,
    MultipartError,
    MultipartLimitError,
    parse_form,
)
from tests.fakes import FakeImggo, make_services

KEY = "key-tenant-a"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
FORM = "multipart/form-data; boundary=b"


@pytest.fixture
def app() -> HttpApp:
    # The default body limit (11 MiB): the bounds under test are the parser's own.
    return HttpApp(make_services(imggo=FakeImggo(), api_key_hashes={hash_key(KEY): "a"}))


def post_form(app: HttpApp, body: bytes, ctype: str = FORM) -> Response:
    headers = Headers({"Authorization": f"Bearer {KEY}", "Content-Type": ctype})
    return app.handle(Request("POST", "/v1/jobs", headers, {}, body))


def field(name: str, value: bytes, *, boundary: str = "b", extra: str = "") -> bytes:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'
    return head.encode() + value + b"\r\n"


def image(filename: str | None = "a.png", data: bytes = PNG, boundary: str = "b") -> bytes:
    disposition = "" if filename is None else f'; filename="{filename}"'
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"{disposition}\r\n'
        "Content-Type: image/png\r\n\r\n"
    )
    return head.encode() + data + b"\r\n"


def end(boundary: str = "b") -> bytes:
    return f"--{boundary}--\r\n".encode()


def assert_error(response: Response, status: int, code: str) -> dict[str, object]:
    assert response.status == status, response.body
    error: dict[str, object] = response.json_body()["error"]
    assert error["code"] == code and error["message"] and isinstance(error["details"], dict)
    return error


# ------------------------------------------------------------------ bounds, end to end
@pytest.mark.parametrize(
    "part,status,code",
    [
        (b"--b\r\n\r\n\r\n", 400, "invalid_multipart"),  # no headers: refused at the first
        (
            b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n',
            413,
            "multipart_too_many_parts",
        ),
    ],
    ids=["bare", "named"],
)
def test_tens_of_thousands_of_empty_parts_are_refused_in_milliseconds(
    app: HttpApp, part: bytes, status: int, code: str
) -> None:
    body = part * 50_000 + end()  # 0.45 MB and 2.5 MB, well inside the body limit
    started = time.perf_counter()
    response = post_form(app, body)
    elapsed = time.perf_counter() - started
    assert_error(response, status, code)
    # The stdlib email parser took 2-4 s here (66 s for 1.2 million bare parts in 10.8 MB).
    assert elapsed < 0.25, f"{elapsed:.3f} s"


def test_named_parts_beyond_the_limit_are_refused_too(app: HttpApp) -> None:
    body = b"".join(field(f"f{i}", b"") for i in range(DEFAULT_MAX_PARTS)) + image() + end()
    error = assert_error(post_form(app, body), 413, "multipart_too_many_parts")
    assert error["details"] == {"max_parts": DEFAULT_MAX_PARTS}
    at_the_limit = (
        b"".join(field(f"f{i}", b"") for i in range(DEFAULT_MAX_PARTS - 2))
        + field("pattern_id", b"invoice")
        + image()
        + end()
    )
    assert post_form(app, at_the_limit).status == 202


@pytest.mark.parametrize(
    "headers",
    [
        "X-Pad: " + "x" * DEFAULT_MAX_HEADER_BYTES + "\r\n",  # one long line
        "".join(f"X-Pad-{i}: {'x' * 500}\r\n" for i in range(20)),  # many short ones
        "X-Pad: " + " " * DEFAULT_MAX_HEADER_BYTES + "x\r\n",  # whitespace counts too
    ],
    ids=["one-line", "many-lines", "spaces"],
)
def test_oversize_part_headers_are_413(app: HttpApp, headers: str) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="pattern_id"\r\n'
        + headers.encode()
        + b"\r\ninvoice\r\n"
        + image()
        + end()
    )
    started = time.perf_counter()
    error = assert_error(post_form(app, body), 413, "multipart_headers_too_large")
    assert error["details"] == {"max_header_bytes": DEFAULT_MAX_HEADER_BYTES}
    assert time.perf_counter() - started < 0.25


# ------------------------------------------------------------------ malformed, end to end
@pytest.mark.parametrize(
    "ctype,body",
    [
        ("multipart/form-data", field("pattern_id", b"invoice") + image() + end()),
        ("multipart/form-data; boundary=", field("pattern_id", b"invoice") + end()),
        (FORM, field("pattern_id", b"invoice") + image()),  # no closing delimiter
        (
            FORM,
            field("pattern_id", b"invoice") + b'--b\r\nContent-Disposition: form-data; name="im',
        ),
        (FORM, field("pattern_id", b"invoice") + image()[:-20]),  # cut inside the file
        (FORM, b""),
        (FORM, b"--b\r\nno headers"),
        (FORM, b"--x\r\n" + field("pattern_id", b"invoice")[5:] + end()),  # wrong boundary
        (FORM, b"--b\r\nContent-Type: text/plain\r\n\r\ninvoice\r\n" + image() + end()),
        (FORM, field("pattern_id", b"invoice").replace(b"form-data", b"attachment") + end()),
        (
            FORM,
            image(filename="\N{COMBINING ACUTE ACCENT}").replace("\u0301".encode(), b"\xff")
            + end(),
        ),
        (
            FORM,
            b"\r\n".join([b"--b", b"Content-Disposition: form-data; name=\xff", b"", b"x", end()]),
        ),
        ("multipart/form-data; boundary=" + "b" * 300, b"--" + b"b" * 300 + b"--\r\n"),
    ],
    ids=[
        "no-boundary",
        "empty-boundary",
        "unterminated",
        "truncated-in-headers",
        "truncated-in-data",
        "empty-body",
        "no-header-separator",
        "wrong-boundary",
        "no-disposition",
        "not-form-data",
        "non-utf8-filename",
        "non-utf8-name",
        "boundary-too-long",
    ],
)
def test_malformed_forms_are_400_invalid_multipart(app: HttpApp, ctype: str, body: bytes) -> None:
    assert_error(post_form(app, body, ctype), 400, "invalid_multipart")


def test_a_quoted_boundary_is_read(app: HttpApp) -> None:
    boundary = "simple boundary:+_"
    body = field("pattern_id", b"invoice", boundary=boundary) + image(boundary=boundary)
    response = post_form(app, body + end(boundary), f'multipart/form-data; boundary="{boundary}"')
    assert response.status == 202, response.body
    assert response.json_body()["source"]["filename"] == "a.png"


def test_a_non_utf8_field_value_is_422_but_file_bytes_are_bytes(app: HttpApp) -> None:
    body = field("pattern_id", b"inv\xffoice") + image(data=PNG + b"\xff\xfe") + end()
    error = assert_error(post_form(app, body), 422, "invalid_form")
    assert "pattern_id" in str(error["message"])


def test_a_file_part_without_a_filename_is_not_an_image(app: HttpApp) -> None:
    body = field("pattern_id", b"invoice") + image(filename=None) + end()
    assert_error(post_form(app, body), 422, "missing_image")


def test_duplicate_fields_the_first_one_wins(app: HttpApp) -> None:
    body = (
        field("pattern_id", b"invoice")
        + field("pattern_id", b"receipt")
        + field("extras", b'{"n": 1}')
        + field("extras", b"not json at all")
        + image(filename="first.png")
        + image(filename="second.png", data=b"GIF89a")
        + end()
    )
    response = post_form(app, body)
    assert response.status == 202, response.body
    job = response.json_body()
    assert job["pattern_id"] == "invoice" and job["extras"] == {"n": 1}
    assert job["source"]["filename"] == "first.png"


# ------------------------------------------------------------------ the parser itself
def test_parts_carry_name_filename_and_bare_media_type() -> None:
    body = (
        field("note", b"line one--b\r\n--bX\r\n--b-x\r\n-")
        + b'--b\r\nContent-Disposition: form-data; name="f"; filename="caf\xc3\xa9.png"\r\n'
        + b"Content-Type: Image/PNG; q=1\r\n\r\n"
        + PNG
        + b"\r\n"
        + field("empty", b"", extra='; filename=""')
        + end()
        + b"an epilogue is ignored"
    )
    parts = parse_form(body, FORM)
    assert parts == {
        "note": FormPart("note", b"line one--b\r\n--bX\r\n--b-x\r\n-"),
        "f": FormPart("f", PNG, "café.png", "image/png"),
        "empty": FormPart("empty", b"", ""),
    }
    assert parse_form(end(), FORM) == {}


def test_the_bounds_are_parameters() -> None:
    body = field("a", b"1") + field("b", b"2") + field("c", b"3") + end()
    assert set(parse_form(body, FORM, max_parts=3)) == {"a", "b", "c"}
    with pytest.raises(MultipartLimitError) as too_many:
        parse_form(body, FORM, max_parts=2)
    assert too_many.value.code == "multipart_too_many_parts" and too_many.value.status == 413
    with pytest.raises(MultipartLimitError) as too_big:
        parse_form(body, FORM, max_header_bytes=30)  # one Content-Disposition is 38 bytes
    assert too_big.value.code == "multipart_headers_too_large"


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.text(
            st.characters(exclude_categories=("Cc", "Cs"), exclude_characters='"\\'),
            min_size=1,
            max_size=12,
        ),
        st.tuples(
            st.binary(max_size=64), st.one_of(st.none(), st.sampled_from(["a.png", "é.gif"]))
        ),
        max_size=5,
    )
)
def test_what_httpx_encodes_is_read_back(fields: dict[str, tuple[bytes, str | None]]) -> None:
    """A second, independent encoder: httpx's own multipart writer."""
    data = {name: value for name, (value, filename) in fields.items() if filename is None}
    files = {
        name: (filename, value, "image/png")
        for name, (value, filename) in fields.items()
        if filename is not None
    }
    if not files:  # httpx writes a form only when there is a file
        files = {"\x7f": ("x.png", b"", "image/png")}  # a name never drawn (Cc is excluded)
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/",
        data={k: v.decode("latin-1") for k, v in data.items()},
        files=files,
    )
    parts = parse_form(request.read(), request.headers["content-type"])
    for name, value in data.items():
        assert parts[name] == FormPart(name, value.decode("latin-1").encode("utf-8"))
    for name, (filename, value, _) in files.items():
        assert parts[name] == FormPart(name, value, filename, "image/png")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(
            st.sampled_from(
                [
                    b"--b",
                    b"--b--",
                    b"\r\n",
                    b'Content-Disposition: form-data; name="a"',
                    b"Content-Type: x/y",
                    b":",
                    b" ",
                    b"data",
                    b"\xff",
                    b'filename="\xff"',
                ]
            ),
            max_size=20,
        ).map(b"".join),
    ),
    st.sampled_from([FORM, 'multipart/form-data; boundary="b"', "multipart/form-data", "text/x"]),
)
def test_any_body_parses_or_raises_a_multipart_error(body: bytes, ctype: str) -> None:
    try:
        parts = parse_form(body, ctype)
    except MultipartError as exc:
        assert 400 <= exc.status < 500 and exc.code
    else:
        assert all(isinstance(p, FormPart) and p.name == n for n, p in parts.items())


def test_importing_the_http_surface_does_not_import_the_parser() -> None:
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, core.api.app, core.api.multipart as m; "
        "assert 'python_multipart' not in sys.modules; "
        "m.parse_form(b'--b--', 'multipart/form-data; boundary=b'); "
        "assert 'python_multipart' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=30)
