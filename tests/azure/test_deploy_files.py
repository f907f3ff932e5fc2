"""Azure's deploy files: what `func azure functionapp publish` uploads (`.funcignore`, read
as Core Tools reads it, and as git reads it), `local.settings.json.example` (every setting
the app and its bindings read, Azurite for storage, no secret), and the root
requirements.txt the platform installs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

from core.adapters.azure.clients import CONNECTION_SETTING
from core.config import SECRET_NAMES, Settings
from handlers_azure.runtime import (
    AZURE_DEFAULTS,
    KEY_VAULT_URL,
    QUEUE_NAME,
    UPLOAD_CONTAINER,
    azure_env,
)
from tests.azure.publish import FUNCIGNORE, ROOT, candidates, repository_files, uploaded
from tests.azure.settings import binding_setting_names, handler_setting_names

# What the app needs on the platform; everything else in the repository stays home.
SHIPPED_FILES = {"function_app.py", "host.json", "requirements.txt"}
SHIPPED_TREES = ("core/", "handlers_azure/")
OTHER_CLOUDS = ("core/adapters/aws/", "core/adapters/gcp/")
NEVER_SHIPPED = (
    "tests/",
    ".venv/",
    ".venv-azure-worker/",
    "node_modules/",
    "out/",
    "data/",
    "bench/",
    "fuzz/",
    "docs/",
    "infra/",
    "deploy/",
    "handlers_aws/",
    "handlers_gcp/",
    "template.yaml",
    "serverless.yml",
    "main.py",
    "pyproject.toml",
    "local.settings.json",
    "local.settings.json.example",
    "__pycache__/",
)
EXAMPLE = ROOT / "local.settings.json.example"


def test_the_rules_mean_the_same_to_core_tools_as_to_the_parser_it_ports() -> None:
    for line in FUNCIGNORE.read_text().splitlines():
        rule = line.strip()
        if rule and not rule.startswith("#"):
            # The C# port replaces every `**` and `*`, the npm package only the first.
            assert rule.count("**") <= 1 and rule.replace("**", "").count("*") <= 1, rule


def belongs(path: str) -> bool:
    in_app = path in SHIPPED_FILES or path.startswith(SHIPPED_TREES)
    return in_app and not path.startswith(OTHER_CLOUDS) and "__pycache__" not in path


def test_publish_uploads_the_app_and_nothing_else() -> None:
    shipped = uploaded()
    stray = {p for p in shipped if not belongs(p)}
    assert not stray, f".funcignore lets these through: {sorted(stray)}"
    needed = {p for p in repository_files() if belongs(p) and p.endswith((".py", ".json", ".txt"))}
    missing = needed - shipped
    assert not missing, f".funcignore leaves out what the app imports: {sorted(missing)}"
    assert "core/adapters/azure/table_store.py" in shipped and "handlers_azure/app.py" in shipped
    for never in NEVER_SHIPPED:
        assert not {p for p in shipped if p == never or p.startswith(never)}, never


def test_git_reads_the_rules_the_same_way(tmp_path: Path) -> None:
    """Anyone reading `.funcignore` as a gitignore file sees the same upload."""
    (tmp_path / ".gitignore").write_text(FUNCIGNORE.read_text())
    git_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], env=git_env, check=True, timeout=30)
    paths = candidates()
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=tmp_path,
        env=git_env,
        input="\n".join(paths),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: nothing ignored
    ignored_by_git = set(done.stdout.splitlines())
    by_git = {p for p in paths if p not in ignored_by_git and p != "local.settings.json"}
    by_git.discard(".funcignore")  # Core Tools never uploads these two; git has no such rule
    by_git.discard(".gitignore")
    assert by_git == uploaded()


def example_values() -> dict[str, str]:
    example = json.loads(EXAMPLE.read_text())
    assert example["IsEncrypted"] is False
    values: dict[str, str] = example["Values"]
    assert all(isinstance(v, str) for v in values.values()), "Core Tools reads strings"
    return values


def test_the_example_names_every_setting_the_app_and_its_bindings_read() -> None:
    values = example_values()
    wanted = handler_setting_names() | binding_setting_names()
    wanted |= {"FUNCTIONS_WORKER_RUNTIME", CONNECTION_SETTING, "IMGGO_BASE_URL"}
    missing = wanted - set(values)
    assert not missing, f"local.settings.json.example lacks {sorted(missing)}"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    # The names the bindings and the adapters read agree, and are the handlers' defaults
    # (the ones the docs create in Azurite).
    env = azure_env(values)
    assert values[QUEUE_NAME] == AZURE_DEFAULTS[QUEUE_NAME]
    assert values[UPLOAD_CONTAINER] == AZURE_DEFAULTS[UPLOAD_CONTAINER]
    assert env["IMGGO_FN_QUEUE_URL"] == f"azurequeue://{values[QUEUE_NAME]}"
    assert env["IMGGO_FN_BLOB_URL"] == f"azureblob://{values[UPLOAD_CONTAINER]}"
    assert len(values["IMGGO_FN_RECONCILE_SCHEDULE"].split()) == 6  # NCRONTAB has seconds
    # Every other value is one the core accepts (the secrets are references, resolved
    # before the app reads them).
    Settings.from_env({k: v for k, v in env.items() if k not in SECRET_NAMES})


def test_the_example_uses_azurite_and_key_vault_references_never_a_secret() -> None:
    values = example_values()
    # Both the host's connection and the adapters' point at Azurite's development account.
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values[CONNECTION_SETTING] == "UseDevelopmentStorage=true"
    reference = re.compile(
        r"@Microsoft\.KeyVault\(SecretUri=https://<vault>\.vault\.azure\.net/secrets/[a-z0-9-]+/\)"
    )
    for name in SECRET_NAMES:
        assert reference.fullmatch(values[name]), f"{name} is not a Key Vault reference"
    assert values[KEY_VAULT_URL] == "https://<vault>.vault.azure.net"
    text = EXAMPLE.read_text()
    assert "AccountKey" not in text and "imggo_live_" not in text


def test_requirements_txt_installs_the_azure_sdks_the_app_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = set((ROOT / "requirements.txt").read_text().splitlines())
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["azure"]]:
        assert requirement in lines, requirement
