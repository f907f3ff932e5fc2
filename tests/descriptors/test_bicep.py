"""infra/azure/main.bicep, the Azure descriptor: checkov passes it with every skip justified
next to its resource, and its structure (parsed by pycep, the parser checkov itself uses, from
checkov's venv: no Bicep compiler runs here) holds what handlers_azure needs - the
resources, the least-privilege role assignments, and every IMGGO_* setting the Azure
handlers read, secrets as Key Vault references."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.config import SECRET_NAMES
from handlers_azure.runtime import AZURE_DEFAULTS, QUEUE_NAME, UPLOAD_CONTAINER
from tests.azure.settings import handler_setting_names
from tests.descriptors.cfn import ROOT
from tests.descriptors.test_validators import CHECKOV, offline_env, tool

BICEP = ROOT / "infra" / "azure" / "main.bicep"
CHECKOV_PYTHON = CHECKOV.parent / "python"

# Built-in role definition ids (the same in every tenant), by the scope they must have.
STORAGE_ROLES = {
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
}
VAULT_ROLES = {"4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User"}

_PARSE = (
    "import json, sys, pathlib; from pycep import BicepParser; "
    "print(json.dumps(BicepParser().parse(file_path=pathlib.Path(sys.argv[1])), default=str))"
)


@pytest.fixture(scope="module")
def bicep() -> dict[str, Any]:
    done = subprocess.run(
        [tool(CHECKOV_PYTHON), "-c", _PARSE, str(BICEP)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    tree: dict[str, Any] = json.loads(done.stdout)
    return tree


def config(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body (a conditional resource nests it one level deeper)."""
    body: dict[str, Any] = resource["config"]
    return body["config"] if "condition" in body else body


def accessor(node: Any) -> str:
    """`a.b.c` for pycep's nested property_accessor operators (a bare name stays a str)."""
    if isinstance(node, str):
        return node
    operands = node["operator"]["operands"]
    assert node["operator"]["type"] == "property_accessor", node
    return f"{accessor(operands['operand_1'])}.{accessor(operands['operand_2'])}"


def of_type(tree: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tree["resources"].items() if v["type"] == type_}


def param_default(tree: dict[str, Any], name: str) -> Any:
    return tree["parameters"][name]["default"]


def app_settings(tree: dict[str, Any]) -> dict[str, Any]:
    (site,) = of_type(tree, "Microsoft.Web/sites").values()
    settings = config(site)["properties"]["siteConfig"]["appSettings"]
    return {s["name"]: s["value"] for s in settings}


def test_checkov_passes_and_every_skip_is_justified(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            tool(CHECKOV),
            "--file",
            str(BICEP),
            "--framework",
            "bicep",
            "--skip-download",  # offline, and the same every run
            "--output",
            "json",
        ],
        cwd=ROOT,
        env=offline_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["parsing_errors"] == 0, done.stdout
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == [], f"checkov fails {failed}"
    assert report["summary"]["passed"] > 15, "checkov checked next to nothing"
    # A skip for a check checkov does not run on Bicep would be a justification of nothing.
    written = set(re.findall(r"#checkov:skip=([A-Z0-9_]+):", BICEP.read_text()))
    assert written == {c["check_id"] for c in results["skipped_checks"]}
    for skipped in results["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.strip()) > 20, f"{skipped['check_id']} skipped without why"


def test_resources(bicep: dict[str, Any]) -> None:
    (plan,) = of_type(bicep, "Microsoft.Web/serverfarms").values()
    assert config(plan)["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    (site,) = of_type(bicep, "Microsoft.Web/sites").values()
    site_cfg = config(site)
    assert site_cfg["kind"] == "functionapp,linux"
    assert site_cfg["properties"]["httpsOnly"] is True
    runtime = site_cfg["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "3.11"}

    (vault,) = of_type(bicep, "Microsoft.KeyVault/vaults").values()
    assert config(vault)["properties"]["enableRbacAuthorization"] is True
    (insights,) = of_type(bicep, "Microsoft.Insights/components").values()
    assert config(insights)["properties"]["WorkspaceResourceId"]
    assert of_type(bicep, "Microsoft.OperationalInsights/workspaces")
    assert of_type(bicep, "Microsoft.ManagedIdentity/userAssignedIdentities")

    tables = of_type(bicep, "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert [config(t)["name"] for t in tables.values()] == ["jobsTableName"]
    queues = {
        config(q)["name"]
        for q in of_type(bicep, "Microsoft.Storage/storageAccounts/queueServices/queues").values()
    }
    assert queues == {"workQueueName", "${workQueueName}-poison"}
    containers = {
        config(c)["name"]
        for c in of_type(
            bicep, "Microsoft.Storage/storageAccounts/blobServices/containers"
        ).values()
    }
    assert "uploadContainerName" in containers


def test_names_default_to_the_handlers_defaults(bicep: dict[str, Any]) -> None:
    assert param_default(bicep, "workQueueName") == AZURE_DEFAULTS[QUEUE_NAME]
    assert param_default(bicep, "uploadContainerName") == AZURE_DEFAULTS[UPLOAD_CONTAINER]
    store = AZURE_DEFAULTS["IMGGO_FN_STORE_URL"]
    assert store == "azuretables://" + param_default(bicep, "jobsTableName")


def test_event_grid_delivers_blob_created_under_incoming_to_upload_landed(
    bicep: dict[str, Any],
) -> None:
    (topic,) = of_type(bicep, "Microsoft.EventGrid/systemTopics").values()
    assert config(topic)["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert accessor(config(topic)["properties"]["source"]) == "storage.id"
    (sub,) = of_type(bicep, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values()
    props = config(sub)["properties"]
    assert props["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert props["filter"]["subjectBeginsWith"] == (
        "/blobServices/default/containers/${uploadContainerName}/blobs/incoming/"
    )
    endpoint = props["destination"]["properties"]["endpointUrl"]
    assert "/runtime/webhooks/blobs?functionName=Host.Functions.upload_landed&" in endpoint
    assert "systemKeys.blobs_extension" in endpoint


def _role_ids(bicep: dict[str, Any], scope: str) -> set[str]:
    roles: dict[str, str] = bicep["variables"]["roles"]["value"]
    found = set()
    for assignment in of_type(bicep, "Microsoft.Authorization/roleAssignments").values():
        body = config(assignment)
        if body["scope"] != scope:
            continue
        definition = body["properties"]["roleDefinitionId"]["function"]
        assert definition["type"] == "subscription_resource_id"
        key = accessor(definition["parameters"]["resource_name_1"]).removeprefix("roles.")
        found.add(roles[key])
        principal = accessor(body["properties"]["principalId"])
        assert principal == "identity.properties.principalId", "only the app's identity"
    return found


def test_role_assignments_are_least_privilege_and_scoped(bicep: dict[str, Any]) -> None:
    assert _role_ids(bicep, "storage") == set(STORAGE_ROLES)
    assert _role_ids(bicep, "vault") == set(VAULT_ROLES)
    scopes = {
        config(a)["scope"]
        for a in of_type(bicep, "Microsoft.Authorization/roleAssignments").values()
    }
    assert scopes == {"storage", "vault"}, "no role at resource group or subscription scope"


def test_every_setting_the_handlers_read_is_set(bicep: dict[str, Any]) -> None:
    settings = app_settings(bicep)
    missing = handler_setting_names() - set(settings)
    assert not missing, f"app settings missing {sorted(missing)}"
    assert settings["IMGGO_FN_STORE_URL"] == "azuretables://${jobsTableName}"
    assert settings["IMGGO_FN_QUEUE_URL"] == "azurequeue://${workQueueName}"
    assert settings["IMGGO_FN_BLOB_URL"] == "azureblob://${uploadContainerName}"
    assert settings["IMGGO_FN_QUEUE_NAME"] == "workQueueName"
    assert settings["IMGGO_FN_UPLOAD_CONTAINER"] == "uploadContainerName"
    assert settings["IMGGO_FN_KEY_VAULT_URL"] == "vaultUrl"
    # The host's own storage connection is identity-based: no account key anywhere.
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert not any("AccountKey" in json.dumps(v) for v in settings.values())


def test_secrets_are_key_vault_references_and_no_secret_is_in_the_template(
    bicep: dict[str, Any],
) -> None:
    settings = app_settings(bicep)
    reference = re.compile(r"@Microsoft\.KeyVault\(SecretUri=\$\{vaultUrl\}/secrets/\$\{\w+\}/\)")
    for name in SECRET_NAMES:
        assert reference.fullmatch(settings[name]), f"{name} is not a Key Vault reference"
    assert not of_type(bicep, "Microsoft.KeyVault/vaults/secrets"), "secret values in template"
    (site,) = of_type(bicep, "Microsoft.Web/sites").values()
    assert accessor(config(site)["properties"]["keyVaultReferenceIdentity"]) == "identity.id"
