"""PATCH /api/patterns/{id} on the simulator over real HTTP, as openapi.yaml describes it:
an UpdatePatternRequest body, 200 with the Pattern, 400 for an invalid body, 401, 404."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from imggo_simulator import BUILTIN_PATTERN_IDS
from tests.simulator.helpers import OTHER_KEY, assert_error, upload, wait_for_job

CREATE = {
    "name": "Shoe Extraction",
    "instructions": "Extract the shoe's brand and size",
    "json_schema": {"type": "object", "properties": {"brand": {"type": "string"}}},
}


def create(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/api/patterns", json=CREATE)
    assert response.status_code == 201, response.text
    pattern: dict[str, Any] = response.json()["data"]
    return pattern


def patch(client: httpx.Client, pattern_id: str, body: Any, **kw: Any) -> httpx.Response:
    return client.patch(f"/api/patterns/{pattern_id}", json=body, **kw)


def test_patch_changes_the_given_fields_only(client: httpx.Client) -> None:
    before = create(client)
    time.sleep(0.002)  # updated_at has millisecond resolution
    changes = {
        "name": "Boot Extraction (v2)",
        "instructions": "Extract the boot's brand, size and colour",
        "format": "yaml",
        "csv_delimiter": "semicolon",
        "yaml_schema": "brand: string",
        "is_active": False,
    }
    response = patch(client, before["id"], changes)
    assert response.status_code == 200, response.text
    after = response.json()["data"]
    assert after == {**before, **changes, "updated_at": after["updated_at"]}
    assert after["updated_at"] > before["updated_at"] and after["version"] == before["version"]
    assert client.get(f"/api/patterns/{before['id']}").json()["data"] == after
    listed = client.get("/api/patterns", params={"is_active": "false"}).json()["data"]["data"]
    assert [p["id"] for p in listed] == [before["id"]]


def test_publish_new_version_bumps_the_version(client: httpx.Client) -> None:
    pattern = create(client)
    assert patch(client, pattern["id"], {}).json()["data"]["version"] == 1
    first = patch(client, pattern["id"], {"publish_new_version": True}).json()["data"]
    second = patch(client, pattern["id"], {"publish_new_version": True, "is_active": True})
    assert (first["version"], second.json()["data"]["version"]) == (2, 3)
    assert (
        patch(client, pattern["id"], {"publish_new_version": False}).json()["data"]["version"] == 3
    )


def test_fields_outside_the_update_schema_are_ignored(client: httpx.Client) -> None:
    pattern = create(client)
    sneaky = {"id": "x", "user_id": "y", "version": 99, "model_profile": "other", "created_at": "z"}
    after = patch(client, pattern["id"], sneaky).json()["data"]
    assert {k: after[k] for k in sneaky} == {k: pattern[k] for k in sneaky}


def test_a_new_json_schema_drives_the_next_manifests(client: httpx.Client) -> None:
    pattern = create(client)
    first = wait_for_job(
        client, upload(client, "receipt.png", pattern["id"]).json()["data"]["job_id"]
    )
    assert set(first["manifest"]) >= {"brand"}
    schema = {
        "type": "object",
        "properties": {"width": {"type": "integer"}, "shop": {"type": "string"}},
        "required": ["width", "shop"],
        "additionalProperties": False,
    }
    assert patch(client, pattern["id"], {"json_schema": schema}).status_code == 200
    second = wait_for_job(
        client, upload(client, "receipt.png", pattern["id"]).json()["data"]["job_id"]
    )
    assert set(second["manifest"]) == {"width", "shop"} and second["manifest"]["width"] == 300
    nulled = patch(client, pattern["id"], {"json_schema": None}).json()["data"]
    assert nulled["json_schema"] is None


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": ""}, "name"),
        ({"name": "semi;colon"}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": None}, "name"),
        ({"format": "pdf"}, "format"),
        ({"instructions": "too short"}, "instructions"),  # minLength 10 on update
        ({"instructions": "x" * 2001}, "instructions"),
        ({"instructions": 12345678901}, "instructions"),
        ({"yaml_schema": "x" * 5001}, "yaml_schema"),
        ({"csv_schema": 7}, "csv_schema"),
        ({"plain_text_schema": None}, "plain_text_schema"),  # not nullable on update
        ({"csv_delimiter": "tab"}, "csv_delimiter"),
        ({"is_active": "yes"}, "is_active"),
        ({"publish_new_version": "true"}, "publish_new_version"),
        ({"name": "Fine Name", "format": "pdf"}, "format"),  # all or nothing
    ],
)
def test_invalid_bodies_are_400_with_the_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    pattern = create(client)
    error = assert_error(patch(client, pattern["id"], body), 400, "VALIDATION_ERROR")
    assert error["details"]["field"] == field
    assert client.get(f"/api/patterns/{pattern['id']}").json()["data"] == pattern


def test_invalid_schema_and_malformed_json_are_400(client: httpx.Client) -> None:
    pattern_id = create(client)["id"]
    assert_error(patch(client, pattern_id, {"json_schema": "a string"}), 400, "INVALID_SCHEMA")
    spaced = {"type": "object", "properties": {"has space": {"type": "string"}}}
    assert_error(patch(client, pattern_id, {"json_schema": spaced}), 400, "INVALID_SCHEMA")
    assert_error(patch(client, pattern_id, ["not", "an", "object"]), 400, "VALIDATION_ERROR")
    raw = {"Content-Type": "application/json"}
    url = f"/api/patterns/{pattern_id}"
    assert_error(client.patch(url, content=b"{nope", headers=raw), 400, "INVALID_JSON")
    assert_error(client.patch(url, content=b"", headers=raw), 400, "INVALID_JSON")


def test_unknown_foreign_and_builtin_patterns_are_404(client: httpx.Client) -> None:
    mine = create(client)
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    not_found = "PATTERN_NOT_FOUND"
    assert_error(patch(client, mine["id"], {"is_active": False}, headers=other), 404, not_found)
    assert_error(patch(client, "5b7c3a52-0000-4000-8000-000000000000", {}), 404, not_found)
    builtin = client.get("/api/patterns/invoice").json()["data"]
    for ident in ("invoice", BUILTIN_PATTERN_IDS["invoice"]):
        assert_error(patch(client, ident, {"name": "Mine Now"}), 404, not_found)
    assert client.get("/api/patterns/invoice").json()["data"] == builtin
    assert client.get(f"/api/patterns/{mine['id']}").json()["data"] == mine


def test_patch_needs_auth(client: httpx.Client) -> None:
    pattern_id = create(client)["id"]
    anonymous = {"Authorization": ""}
    assert_error(patch(client, pattern_id, {}, headers=anonymous), 401, "UNAUTHORIZED")
