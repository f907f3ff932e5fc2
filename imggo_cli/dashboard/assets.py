"""The dashboard's files: shell pages rendered once from the templates, and the static
assets (JS, CSS, icon) from an allow-list of exactly what the package ships."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from html import escape
from importlib.resources import files
from importlib.resources.abc import Traversable
from string import Template

from core.domain.job import JobStatus
from core.service.query import EXPORT_FORMATS
from core.service.uploads import IMAGE_TYPES

STATIC_PREFIX = "/static/"
HTML = "text/html; charset=utf-8"
# What a browser must be told: a module script served under another type is refused.
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGES = {"jobs": "Jobs", "job": "Job"}


@dataclass(frozen=True)
class Asset:
    content_type: str
    body: bytes


def _root() -> Traversable:
    return files("imggo_cli.dashboard")


def _walk(folder: Traversable, prefix: str) -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
            continue
        suffix = entry.name[entry.name.rfind(".") :] if "." in entry.name else ""
        if suffix in _TYPES:
            found[f"{prefix}{entry.name}"] = Asset(_TYPES[suffix], entry.read_bytes())
    return found


@cache
def static_assets() -> dict[str, Asset]:
    """URL path (`/static/js/main.js`) -> file. A path not in here is not ours: no
    request path is ever joined onto a directory, so nothing else can be read."""
    return _walk(_root() / "static", STATIC_PREFIX)


def _config() -> dict[str, str]:
    """What the JavaScript must agree on with the server, decided here once."""
    from imggo_simulator.manifests import SIMULATED_MARKER

    return {
        "terminal": " ".join(s.value for s in JobStatus if s.terminal),
        "formats": " ".join(EXPORT_FORMATS),
        "marker": SIMULATED_MARKER,
        "image_types": ",".join(IMAGE_TYPES),
    }


@cache
def page(name: str) -> Asset:
    """The shell of page `name` (one of PAGES): layout + that page's main block."""
    templates = _root() / "templates"
    values = {key: escape(value) for key, value in _config().items()}
    main = Template(templates.joinpath(f"{name}.html").read_text("utf-8")).substitute(values)
    layout = Template(templates.joinpath("layout.html").read_text("utf-8"))
    body = layout.substitute(values, title=escape(PAGES[name]), page=escape(name), main=main)
    return Asset(HTML, body.encode())
