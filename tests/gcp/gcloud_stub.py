"""A stand-in `gcloud` for deploy/gcp.sh that answers like the real API: it keeps what
exists in a JSON file (STUB_STATE), a describe of a missing resource fails with
NOT_FOUND, a create of an existing one fails with ALREADY_EXISTS or HTTP 409 and
gcloud's own wording, updates and IAM bindings succeed on what exists, and every call
is logged with its outcome (STUB_LOG, one JSON line each) for the tests to read.

Only the commands deploy/gcp.sh uses are known; anything else fails loudly (exit 2), so
a new call in the script cannot pass unnoticed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

PROJECT_NUMBER = "123456789012"


class Gcloud:
    def __init__(self, args: list[str]) -> None:
        self.flags: dict[str, str] = {}
        self.words: list[str] = []
        skip = False
        for i, arg in enumerate(args):
            if skip:
                skip = False
                continue
            if arg == "--project":
                self.flags["project"] = args[i + 1]
                skip = True
            elif arg.startswith("--"):
                name, _, value = arg[2:].partition("=")
                self.flags[name] = value
            else:
                self.words.append(arg)
        self.state_path = Path(os.environ["STUB_STATE"])
        self.state: dict[str, Any] = json.loads(self.state_path.read_text())
        self.outcome = "read"

    # ------------------------------------------------------------------ answers
    def fail(self, code: int, message: str) -> int:
        self.outcome = "not found" if message.startswith("NOT_FOUND") else "already exists"
        print(f"ERROR: (gcloud.{'.'.join(self.words[:3])}) {message}", file=sys.stderr)
        return code

    def has(self, kind: str, key: str) -> bool:
        return key in self.state.setdefault(kind, {})

    def describe(self, kind: str, key: str, fields: dict[str, str] | None = None) -> int:
        if not self.has(kind, key):
            return self.fail(1, f"NOT_FOUND: Resource not found (resource={key}).")
        record = {**self.state[kind][key], **(fields or {})}
        wanted = self.flags.get("format", "")
        if wanted.startswith("value(") and wanted.endswith(")"):
            print(record.get(wanted[len("value(") : -1], ""))
        else:
            print(json.dumps(record))
        return 0

    def create(self, kind: str, key: str, message: str, **record: Any) -> int:
        if self.has(kind, key):
            return self.fail(1, message)
        self.state[kind][key] = record
        self.outcome = "created"
        return 0

    def update(self, kind: str, key: str, **record: Any) -> int:
        if not self.has(kind, key):
            return self.fail(1, f"NOT_FOUND: Resource not found (resource={key}).")
        self.state[kind][key].update(record)
        self.outcome = "updated"
        return 0

    # ------------------------------------------------------------------ commands
    def run(self) -> int:  # one branch per command gcp.sh uses
        w = self.words
        exists = "ALREADY_EXISTS: Resource already exists in the project (resource={})."
        if w[:2] == ["projects", "describe"]:
            print(PROJECT_NUMBER)
            return 0
        if w[:2] == ["secrets", "describe"]:
            return self.describe("secrets", w[2])
        if w[:2] == ["services", "enable"]:
            self.outcome = "updated"
            return 0
        if w[:3] == ["firestore", "databases", "describe"]:
            return self.describe("databases", self.flags["database"])
        if w[:3] == ["firestore", "databases", "create"]:
            database = self.flags["database"]
            return self.create(
                "databases",
                database,
                f"ALREADY_EXISTS: Database '{database}' already exists for project.",
                type="FIRESTORE_NATIVE",
            )
        if w[:4] == ["firestore", "indexes", "composite", "create"]:
            fields = [a for a in sys.argv[1:] if a.startswith("--field-config=")]
            key = self.flags["collection-group"] + "|" + "|".join(fields)
            return self.create("indexes", key, "ALREADY_EXISTS: index already exists")
        if w[:4] == ["firestore", "indexes", "fields", "update"] or w[:4] == [
            "firestore",
            "fields",
            "ttls",
            "update",
        ]:
            self.outcome = "updated"
            return 0
        if w[:3] == ["pubsub", "topics", "describe"]:
            return self.describe("topics", w[3])
        if w[:3] == ["pubsub", "topics", "create"]:
            return self.create("topics", w[3], exists.format(f"projects/p/topics/{w[3]}"))
        if w[:3] == ["pubsub", "topics", "add-iam-policy-binding"]:
            return self.update("topics", w[3])
        if w[:3] == ["pubsub", "subscriptions", "update"]:
            return self.update("subscriptions", w[3], **self.flags)
        if w[:3] == ["pubsub", "subscriptions", "add-iam-policy-binding"]:
            return self.update("subscriptions", w[3])
        if w[:3] == ["storage", "buckets", "describe"]:
            return self.describe("buckets", w[3])
        if w[:3] == ["storage", "buckets", "create"]:
            message = (
                "HTTPError 409: Your previous request to create the named bucket succeeded"
                " and you already own it."
            )
            return self.create("buckets", w[3], message)
        if w[:3] == ["storage", "buckets", "add-iam-policy-binding"]:
            return self.update("buckets", w[3])
        if w[:3] == ["iam", "service-accounts", "describe"]:
            return self.describe("accounts", w[3])
        if w[:3] == ["iam", "service-accounts", "create"]:
            email = f"{w[3]}@{self.flags['project']}.iam.gserviceaccount.com"
            message = (
                f"Resource in projects [{self.flags['project']}] is the subject of a conflict:"
                f" Service account {w[3]} already exists within project"
                f" projects/{self.flags['project']}. (409)"
            )
            return self.create("accounts", email, message)
        if w[:3] == ["iam", "service-accounts", "add-iam-policy-binding"]:
            return self.update("accounts", w[3])
        if w[:2] == ["projects", "add-iam-policy-binding"]:
            self.outcome = "updated"
            return 0
        if w[:2] == ["secrets", "add-iam-policy-binding"]:
            return self.update("secrets", w[2])
        if w[:2] == ["functions", "deploy"]:
            return self.deploy(w[2])
        if w[:2] == ["functions", "describe"]:
            return self.describe("functions", w[2])
        if w[:2] == ["functions", "add-invoker-policy-binding"]:
            return self.update("functions", w[2])
        if w[:3] == ["eventarc", "triggers", "describe"]:
            return self.describe("triggers", w[3])
        if w[:3] == ["scheduler", "jobs", "describe"]:
            return self.describe("jobs", w[3])
        if w[:4] == ["scheduler", "jobs", "create", "pubsub"]:
            return self.create("jobs", w[4], exists.format(f"jobs/{w[4]}"), **self.flags)
        if w[:4] == ["scheduler", "jobs", "update", "pubsub"]:
            return self.update("jobs", w[4], **self.flags)
        print(f"gcloud stub: unknown command {w}", file=sys.stderr)
        self.outcome = "unknown"
        return 2

    def deploy(self, name: str) -> int:
        """Create or update a function; an event function gets an Eventarc trigger and the
        trigger a Pub/Sub subscription, as Cloud Functions (2nd gen) makes them."""
        region = self.flags["region"]
        record: dict[str, Any] = {**self.flags, "serviceConfig.uri": f"https://{name}.run.app"}
        if "trigger-topic" in self.flags or "trigger-bucket" in self.flags:
            trigger = f"{name}-000000"
            subscription = (
                f"projects/{self.flags['project']}/subscriptions/eventarc-{region}-{name}-sub-000"
            )
            record["eventTrigger.trigger"] = f"projects/p/locations/{region}/triggers/{trigger}"
            self.state.setdefault("triggers", {})[trigger] = {
                "transport.pubsub.subscription": subscription
            }
            self.state.setdefault("subscriptions", {}).setdefault(subscription, {})
        was = self.has("functions", name)
        self.state["functions"][name] = record
        self.outcome = "deployed (updated)" if was else "deployed (created)"
        return 0


def main() -> int:
    stub = Gcloud(sys.argv[1:])
    code = stub.run()
    stub.state_path.write_text(json.dumps(stub.state))
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(json.dumps({"args": sys.argv[1:], "outcome": stub.outcome, "rc": code}) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
