"""The dashboard in headless Chromium against the real `imggo-fn serve`: sign in with the
dev key, upload, watch the job succeed without a reload, read its result; the key's
handling; untrusted text; the manifest table. Screenshots land in out/dashboard/."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.support.images import ImageHost

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails and says how to install it
    expect = None

ROOT = Path(__file__).resolve().parents[2]
KEY_STORAGE = "imggo-fn.api-key"
PENDING = re.compile(r"^(accepted|queued|running)$")


def sign_in(tab, served, path="/"):
    page = tab.page
    page.goto(served.url + path)
    expect(page.locator("#key-gate")).to_be_visible()
    page.fill("#key-input", served.key)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#content")).to_be_visible()


def stored_key(page):
    return page.evaluate("(name) => sessionStorage.getItem(name)", KEY_STORAGE)


def api(served):
    return httpx.Client(
        base_url=served.url, headers={"Authorization": f"Bearer {served.key}"}, timeout=10
    )


def assert_clean(tab, served):
    watch = tab.watch
    assert watch.outside == [], "the page tried to reach another host"
    assert watch.page_errors == []
    assert watch.console_errors == []
    assert watch.api_auth and set(watch.api_auth) == {f"Bearer {served.key}"}
    assert not any(served.key in url for url in watch.requested), "the key went into a URL"
    assert tab.context.cookies() == []


def test_upload_watch_it_succeed_and_open_its_result(served, tab, shots):
    page = tab.page
    sign_in(tab, served)
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    page.fill("#upload-pattern", "invoice")
    page.set_input_files("#upload-file", str(ROOT / "examples" / "invoice.png"))
    page.click("#upload-form button[type=submit]")
    row = page.locator("tr[data-job]", has=page.locator("a.job-link", has_text="invoice.png"))
    expect(row).to_have_attribute("data-status", PENDING)
    expect(row).to_have_attribute("data-status", "succeeded", timeout=10_000)
    assert navigations == [], "the status changed by a reload, not a live update"

    expect(row.locator(".col-status")).to_have_text("succeeded")
    expect(row.locator(".badge.sim")).to_be_visible()
    expect(page.locator("#simulated-banner")).to_be_visible()
    expect(row.locator(".summary dt").first).to_have_text("invoice_number")
    thumb = row.locator("img.thumb")
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    assert thumb.get_attribute("src").startswith("blob:")  # fetched with the key, not by URL

    # Two more at once (what the screenshot shows people), then everything is terminal.
    page.fill("#upload-pattern", "image-facts")
    page.set_input_files(
        "#upload-file", [str(ROOT / "examples" / n) for n in ("product.jpg", "sunset.gif")]
    )
    page.click("#upload-form button[type=submit]")
    for name in ("product.jpg", "sunset.gif"):
        other = page.locator("tr[data-job]", has=page.locator("a.job-link", has_text=name))
        expect(other).to_have_attribute("data-status", "succeeded", timeout=10_000)
    assert navigations == []
    # Nothing shown is pending any more: the polling stops.
    expect(page.locator("#live")).to_have_attribute("data-state", "idle")
    calls = len(tab.watch.api_auth)
    page.wait_for_timeout(1800)
    assert len(tab.watch.api_auth) == calls
    page.screenshot(path=shots / "jobs.png", full_page=True)

    row.locator("a.job-link").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    expect(page.locator("#job-title")).to_have_text("invoice.png")
    expect(page.locator("#job-simulated")).to_be_visible()
    table = page.locator("#panel-table > table.kv.top")
    field = table.locator(":scope > tbody > tr", has=page.locator("th", has_text="invoice_number"))
    expect(field.locator("td")).to_have_text(re.compile(r"^SIM-\d+$"))
    vendor = table.locator(":scope > tbody > tr", has=page.locator("th", has_text="vendor"))
    expect(vendor.locator("table.kv th").first).to_have_text("name")
    expect(table.locator("table.grid").first.locator("thead th")).to_have_text(
        ["#", "description", "quantity", "unit_price", "amount"]
    )
    expect(table).not_to_contain_text("_simulated")  # the banner says it instead
    page.screenshot(path=shots / "job.png", full_page=True)

    page.click("button[data-view=csv]")
    expect(page.locator("#export-type")).to_have_text("text/csv")
    expect(page.locator("#export-text")).to_contain_text("invoice_number,invoice_date,due_date")
    expect(page.locator("#export-download")).to_have_attribute("download", re.compile(r"\.csv$"))
    page.screenshot(path=shots / "job-csv.png", full_page=True)

    assert stored_key(page) == served.key
    assert_clean(tab, served)


def test_the_key_is_asked_once_per_session_and_a_wrong_one_is_refused(served, tab, browser):
    page = tab.page
    page.goto(served.url + "/")
    page.fill("#key-input", "dev_not-the-key")
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-error")).to_contain_text("refused the key")
    expect(page.locator("#content")).to_be_hidden()
    assert stored_key(page) is None

    page.fill("#key-input", served.key)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#content")).to_be_visible()
    page.reload()  # the session keeps it: not asked again
    expect(page.locator("#content")).to_be_visible()
    expect(page.locator("#key-gate")).to_be_hidden()

    other = browser.new_context()
    try:
        elsewhere = other.new_page()
        other.route("**/*", tab.watch.guard)
        elsewhere.goto(served.url + "/")
        expect(elsewhere.locator("#key-gate")).to_be_visible()  # another session: asked
    finally:
        other.close()

    page.click("#forget-key")
    expect(page.locator("#key-gate")).to_be_visible()
    assert stored_key(page) is None
    # The only console errors are the browser's own notes of the refused (401) call.
    assert all("401" in text for text in tab.watch.console_errors)
    tab.watch.console_errors.clear()
    assert tab.watch.api_auth[0] == "Bearer dev_not-the-key"
    tab.watch.api_auth.pop(0)
    assert_clean(tab, served)


def jpeg_with_exif_make(make: str) -> bytes:
    image = Image.new("RGB", (64, 48), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = make  # Make
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def test_untrusted_text_is_shown_as_text(served, tab):
    hostile = '<img src=x onerror="window.pwned=1">'
    name = "<b>bold</b>.jpg"
    with api(served) as client:
        job = client.post(
            "/v1/jobs",
            data={"pattern_id": "image-facts"},
            files={"image": (name, jpeg_with_exif_make(hostile), "image/jpeg")},
        ).json()
    page = tab.page
    sign_in(tab, served)
    row = page.locator(f'tr[data-job="{job["id"]}"]')
    expect(row).to_have_attribute("data-status", "succeeded", timeout=10_000)
    expect(row.locator("a.job-link")).to_have_text(name)
    assert row.locator("b").count() == 0

    row.locator("a.job-link").click()
    exif = page.locator("#panel-table > table.kv.top > tbody > tr", has_text="exif")
    expect(exif.locator(":scope > td")).to_contain_text(hostile)
    expect(page.locator("#job-title")).to_have_text(name)
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("() => window.pwned") is None
    assert_clean(tab, served)


def test_a_url_job_is_linked_not_loaded(served, tab):
    host = ImageHost()
    try:
        url = host.url(7)
        with api(served) as client:
            job = client.post("/v1/jobs", json={"pattern_id": "image-facts", "image_url": url})
            job = job.json()
        page = tab.page
        sign_in(tab, served)
        row = page.locator(f'tr[data-job="{job["id"]}"]')
        expect(row.locator(".thumb.url a")).to_have_attribute("href", url)
        row.locator("a.job-link").click()
        expect(page.locator("#job-image a")).to_have_attribute("href", url)
        expect(page.locator("#job-image a")).to_have_attribute("rel", "noopener noreferrer")
        # The page itself never asked the image's host for it.
        port = urlsplit(url).port
        assert [u for u in tab.watch.requested if urlsplit(u).port == port] == []
        assert_clean(tab, served)
    finally:
        host.close()


MANIFEST = {
    "title": "a title",
    "count": 3,
    "ok": True,
    "nothing": None,
    "tags": ["a", "b"],
    "colors": ["#ff0000"],
    "empty_list": [],
    "empty_object": {},
    "rows": [{"a": 1, "b": "x"}, {"a": 2, "c": False}],
    "mixed": [1, {"k": "v"}],
    "nested": {"level": {"deeper": {"x": 1}}},
    "deep": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": 1}}}}}}}}}},
    "_simulated": True,
}

RENDER = """async (manifest) => {
  const { manifestTable } = await import("/static/js/manifest.js");
  const table = manifestTable(manifest, "_simulated");
  document.body.append(table);
  const all = (selector) => [...table.querySelectorAll(selector)];
  const cell = (name) => table.querySelector(
    `:scope > tbody > tr:nth-child(${Object.keys(manifest).indexOf(name) + 1}) > td`);
  return {
    fields: all(":scope > tbody > tr > th").map((th) => th.textContent),
    grid: all("table.grid thead th").map((th) => th.textContent),
    gridCells: all("table.grid tbody tr").map((tr) => [...tr.cells].map((td) => td.textContent)),
    chips: all("ul.chips li").map((li) => li.textContent),
    swatch: getComputedStyle(table.querySelector(".swatch")).backgroundColor,
    emptyList: cell("empty_list").textContent,
    emptyObject: cell("empty_object").textContent,
    nothing: cell("nothing").textContent,
    mixed: [...cell("mixed").querySelectorAll(":scope > table > tbody > tr > th")]
      .map((th) => th.textContent),
    nestedDepth: cell("nested").querySelectorAll("table.kv").length,
    deepAsJson: all("pre.deep").length,
  };
}"""


def test_the_manifest_table_reads_any_nesting(served, tab):
    page = tab.page
    page.goto(served.url + "/")  # any dashboard page: the same origin and policy
    got = page.evaluate(RENDER, MANIFEST)
    assert got["fields"] == [k for k in MANIFEST if k != "_simulated"]
    assert got["grid"] == ["#", "a", "b", "c"]
    assert got["gridCells"] == [["0", "1", "x", ""], ["1", "2", "", "false"]]
    assert got["chips"] == ["a", "b", "#ff0000"]
    assert got["swatch"] == "rgb(255, 0, 0)"
    assert (got["emptyList"], got["emptyObject"], got["nothing"]) == ("empty list", "empty", "null")
    assert got["mixed"] == ["0", "1"]
    assert got["nestedDepth"] == 3
    assert got["deepAsJson"] == 1
    assert tab.watch.page_errors == [] and tab.watch.console_errors == []


@pytest.mark.parametrize("path", ["/", "/jobs/1b55b229-ef0d-4ae6-a402-683e27134c12"])
def test_the_policy_holds_in_the_browser(served, tab, path):
    """The page runs under its CSP: an inline script a bug might inject is refused."""
    page = tab.page
    page.goto(served.url + path)
    refused = page.evaluate(
        """() => new Promise((resolve) => {
          document.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective));
          const s = document.createElement("script");
          s.textContent = "window.ran = 1";
          document.body.append(s);
          setTimeout(() => resolve(window.ran ? "ran" : "no event"), 1000);
        })"""
    )
    assert refused == "script-src-elem"
    tab.watch.console_errors.clear()  # the browser reports the refusal it was asked to make
    assert tab.watch.outside == [] and tab.watch.page_errors == []
