"""The README's configuration table is checked against the settings the code reads, so it
cannot drift: every IMGGO_* name in the code is in the table and the other way round,
numeric defaults match Settings.from_env, and the URL schemes the adapters take are
listed."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from core.adapters.registry import schemes
from core.adapters.stores import SUPPORTED_SCHEMES
from core.config import MIB, Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "core",
    "handlers_aws",
    "handlers_gcp",
    "handlers_azure",
    "imggo_cli",
    "imggo_simulator",
)
ENTRY_FILES = ("main.py", "function_app.py")  # the deploy tools' entry points at the root
NAME = re.compile(r"IMGGO_[A-Z0-9_]+")


def _sources() -> list[Path]:
    files = [ROOT / name for name in ENTRY_FILES]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def names_in_code() -> set[str]:
    """String constants that are exactly a setting's name, in every shipped module."""
    names = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and NAME.fullmatch(str(node.value)):
                names.add(str(node.value))
    return names


def readme_rows() -> dict[str, tuple[str, str]]:
    """variable -> (default cell, whole row) from the README's Configuration table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in re.findall(r"`([A-Z0-9_]+)`", cells[0]):
            rows[name] = (cells[1], line)
    return rows


def settings_fields() -> dict[str, str]:
    """variable -> Settings field, read off Settings.from_env's `cls(...)` call."""
    tree = ast.parse((ROOT / "core" / "config.py").read_text())
    fields = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "cls":
            for keyword in node.keywords:
                for inner in ast.walk(keyword.value):
                    if isinstance(inner, ast.Constant) and NAME.fullmatch(str(inner.value)):
                        fields[inner.value] = keyword.arg
    return fields


def test_every_setting_the_code_reads_is_in_the_table_and_no_other():
    assert names_in_code() == set(readme_rows())


def test_numeric_defaults_are_the_codes():
    defaults = Settings.from_env({})
    rows = readme_rows()
    checked = 0
    for name, field in settings_fields().items():
        value = getattr(defaults, field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        spelled = {str(int(value)) if float(value).is_integer() else str(value)}
        if name.endswith("_BYTES"):
            spelled.add(f"{value / MIB:g} MiB")
        cell = rows[name][0]
        numbers = set(re.findall(r"\d+(?:\.\d+)?(?: MiB)?", cell))
        assert spelled & numbers, f"{name}: README says {cell!r}, the code {value!r}"
        checked += 1
    assert checked >= 10  # the scan of from_env found the numeric settings


def test_the_url_schemes_the_adapters_take_are_listed():
    rows = readme_rows()
    for scheme in SUPPORTED_SCHEMES:
        assert f"`{scheme}" in rows["IMGGO_FN_STORE_URL"][1], scheme
    for scheme in schemes("blobs"):
        assert f"`{scheme}://" in rows["IMGGO_FN_BLOB_URL"][1], scheme
    for scheme in (*schemes("queue"), "local"):
        assert f"`{scheme}://" in rows["IMGGO_FN_QUEUE_URL"][1], scheme


def test_the_readme_says_how_to_run_each_clouds_handler_locally():
    text = (ROOT / "README.md").read_text()
    assert "functions-framework --target http_api --source main.py" in text
    assert "sam local start-api" in text
    assert "cp local.settings.json.example local.settings.json" in text and "func start" in text


def test_every_repository_path_the_docs_name_exists():
    """A moved or renamed file (infra/azure/main.bicep, a test module) leaves no stale
    `path` in the README or a deploy guide."""
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()
    tops = {path.split("/", 1)[0] for path in listed if "/" in path}
    named = 0
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path in re.findall(r"`([\w.-]+(?:/[\w.-]+)+/?)`", doc.read_text()):
            if path.split("/", 1)[0] in tops:
                named += 1
                assert (ROOT / path).exists(), f"{doc.name} names {path}, which does not exist"
    assert named >= 20  # the scan found the paths the docs name
