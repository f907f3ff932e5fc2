"""The app settings the Azure app reads, found in the code so that no list of them can
drift: infra/azure/main.bicep (tests/descriptors/test_bicep.py) and
local.settings.json.example (tests/azure/test_deploy_files.py) must each set them all."""

from __future__ import annotations

import json
import re

from core.config import SECRET_NAMES, SECRETS_TTL_ENV
from tests.azure.functions_host import ROOT, indexed

_BINDING_SETTING = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")


def handler_setting_names() -> set[str]:
    """Every IMGGO_* name handlers_azure's source reads or defaults, and the core's secrets
    and secret-cache TTL (which the handler reads through core.config)."""
    names = set(SECRET_NAMES) | {SECRETS_TTL_ENV}
    for source in (ROOT / "handlers_azure").glob("*.py"):
        names |= set(re.findall(r'"(IMGGO_[A-Z0-9_]+)"', source.read_text()))
    return names


def binding_setting_names() -> set[str]:
    """The settings the host itself resolves for our bindings: every `%NAME%` in a binding
    and every `connection` (a function whose setting is missing does not start)."""
    names: set[str] = set()
    for function in indexed().values():
        for binding in json.loads(function.get_function_json())["bindings"]:
            for key, value in binding.items():
                if key == "connection":
                    names.add(value)
                elif isinstance(value, str):
                    names |= set(_BINDING_SETTING.findall(value))
    return names
