"""Every dataclass a function deploys says what it holds, in a docstring.

It documents the class, and on a cold start it is cheaper too: for a dataclass without
one, Python 3.12 builds a docstring from `inspect.signature` of the class at import
time, 0.1-0.45 ms each (more the more fields), paid before a function's first answer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = ("core", "handlers_aws", "handlers_gcp", "handlers_azure")


def _dataclasses() -> list[tuple[str, ast.ClassDef]]:
    found = []
    for package in DEPLOYED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                    "dataclass" in ast.unparse(d) for d in node.decorator_list
                ):
                    found.append((f"{path.relative_to(ROOT)}::{node.name}", node))
    return found


def test_the_deployed_code_has_dataclasses_to_check() -> None:
    assert len(_dataclasses()) > 30


@pytest.mark.parametrize(
    ("where", "node"), _dataclasses(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_deployed_dataclass_has_a_docstring(where: str, node: ast.ClassDef) -> None:
    assert ast.get_docstring(node), f"{where} has no docstring"
