"""The dashboard's paths, headers and files, without a browser: `handle` directly."""

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from core.api.http import Headers, Request
from imggo_cli import dashboard

PACKAGE = Path(dashboard.__file__).parent
ROOT = PACKAGE.parents[1]
JOB_ID = "1b55b229-ef0d-4ae6-a402-683e27134c12"


def get(path, method="GET"):
    return dashboard.handle(Request(method, path, Headers({"Accept": "text/html"})))


@pytest.mark.parametrize("path", ["/", f"/jobs/{JOB_ID}"])
def test_pages_are_html_under_a_strict_policy(path):
    response = get(path)
    assert response.status == 200
    assert response.headers.get("content-type") == "text/html; charset=utf-8"
    csp = response.headers.get("content-security-policy")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["form-action"] == "'none'"
    assert "unsafe" not in csp
    assert response.headers.get("x-content-type-options") == "nosniff"
    html = response.body.decode()
    # No inline script or style for the policy to refuse: everything is a file.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and not re.search(r"\s(style|on\w+)=", html)


def test_the_job_page_is_one_shell_for_every_job():
    # It holds no data of its own (so it needs no auth): the same bytes for any id.
    assert get(f"/jobs/{JOB_ID}").body == get("/jobs/other-id").body != get("/").body


def test_the_shell_carries_what_the_script_must_agree_on():
    body = get("/").body.decode()
    assert 'data-terminal="succeeded failed rejected"' in body
    assert 'data-formats="json yaml xml csv text"' in body
    assert 'data-simulated-marker="_simulated"' in body
    assert 'accept="image/jpeg,image/png,image/gif,image/webp,image/bmp"' in body
    assert "$" not in body  # every template placeholder was filled


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs",
        "/health",
        "/openapi.json",
        "/favicon.ico",
        "/jobs/",
        "/jobs/a/b",
        "/jobs/has space",
        "/static/",
        "/static/nope.js",
        "/static/../routes.py",
        "/static/js/../../routes.py",
        "/static/js",
        "/templates/layout.html",
    ],
)
def test_other_paths_are_not_the_dashboards(path):
    assert get(path) is None


def test_other_methods_are_a_405_envelope():
    response = get("/", method="POST")
    assert response.status == 405 and response.headers.get("allow") == "GET, HEAD"
    assert response.json_body()["error"]["code"] == "method_not_allowed"


def test_head_has_the_headers_and_no_body():
    response = get("/static/dashboard.css", method="HEAD")
    assert response.status == 200 and response.body == b""
    assert response.headers.get("content-type") == "text/css; charset=utf-8"


def test_every_referenced_asset_is_served_with_its_type():
    html = get("/").body.decode()
    referenced = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))
    js_dir = PACKAGE / "static" / "js"
    for module in js_dir.glob("*.js"):
        for name in re.findall(r'from "\./([^"]+)"', module.read_text()):
            referenced.add(f"/static/js/{name}")
    assert {"/static/js/main.js", "/static/dashboard.css", "/static/js/api.js"} <= referenced
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    for path in referenced:
        response = get(path)
        assert response is not None, f"{path} is referenced but not served"
        expected = types.get(Path(path).suffix, "image/svg+xml")
        assert response.headers.get("content-type") == expected


def test_the_package_data_globs_ship_every_dashboard_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["imggo_cli"]
    files = [
        p.relative_to(PACKAGE.parent).as_posix()
        for folder in ("templates", "static")
        for p in (PACKAGE / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert files
    missing = [f for f in files if not any(fnmatch(f, g) for g in globs)]
    assert missing == [], f"not in [tool.setuptools.package-data] imggo_cli: {missing}"
