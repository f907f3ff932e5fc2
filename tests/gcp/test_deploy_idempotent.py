"""deploy/gcp.sh for real (no --dry-run) against a stub gcloud that keeps state and
answers like the API (tests/gcp/gcloud_stub.py): run twice, the second run creates
nothing, treats what exists as done, and still redeploys the four functions; the work
subscription's redelivery is bounded with a dead-letter topic; IAM is granted on the
resources; a Datastore-mode database is refused before any change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

STUB = Path(__file__).with_name("gcloud_stub.py")
SECRETS = ("imggo-api-key", "imggo-webhook-secret", "imggo-fn-api-keys")
ARGS = ("--project", "demo-proj-1", "--region", "europe-west1")


class Deployer:
    def __init__(self, repo_root: Path, tmp_path: Path) -> None:
        self.repo_root = repo_root
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        wrapper = self.bin / "gcloud"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STUB}" "$@"\n')
        wrapper.chmod(0o755)
        self.state = tmp_path / "state.json"
        self.state.write_text(json.dumps({"secrets": {s: {} for s in SECRETS}}))
        self.log = tmp_path / "calls.jsonl"
        self.home = tmp_path

    def seed(self, kind: str, key: str, **record: Any) -> None:
        state = json.loads(self.state.read_text())
        state.setdefault(kind, {})[key] = record
        self.state.write_text(json.dumps(state))

    def run(self, *extra: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
        self.log.write_text("")
        done = subprocess.run(
            ["bash", str(self.repo_root / "deploy" / "gcp.sh"), *ARGS, *extra],
            env={
                "PATH": f"{self.bin}:/usr/bin:/bin",
                "HOME": str(self.home),
                "STUB_STATE": str(self.state),
                "STUB_LOG": str(self.log),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        return done, calls


@pytest.fixture
def deployer(repo_root: Path, tmp_path: Path) -> Deployer:
    return Deployer(repo_root, tmp_path)


def named(calls: list[dict[str, Any]], *words: str) -> list[dict[str, Any]]:
    return [c for c in calls if all(w in c["args"] for w in words)]


def test_a_second_run_creates_nothing_and_redeploys_the_functions(deployer: Deployer) -> None:
    first, calls = deployer.run()
    assert first.returncode == 0, first.stderr
    assert not [c for c in calls if c["outcome"] == "unknown"], calls
    assert len([c for c in calls if c["outcome"] == "created"]) >= 10
    assert len([c for c in calls if c["outcome"] == "deployed (created)"]) == 4

    second, calls = deployer.run()
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr
    assert [c for c in calls if c["outcome"] == "created"] == []
    assert len([c for c in calls if c["outcome"] == "deployed (updated)"]) == 4
    # Indexes have nothing to look them up by: their create answers ALREADY_EXISTS, done.
    assert len([c for c in calls if c["outcome"] == "already exists"]) == 3
    assert "already there" in second.stdout
    assert named(calls, "scheduler", "jobs", "update", "pubsub", "imggo-reconcile")
    assert "https://imggo-api.run.app" in second.stdout


def test_the_work_subscription_dead_letters_after_bounded_redelivery(deployer: Deployer) -> None:
    done, calls = deployer.run()
    assert done.returncode == 0, done.stderr
    state = json.loads(deployer.state.read_text())
    [subscription] = [s for s in state["subscriptions"] if "imggo-work" in s]
    settings = state["subscriptions"][subscription]
    assert settings["dead-letter-topic"] == "imggo-work-dead-letter"
    assert settings["max-delivery-attempts"] == "10"
    assert (settings["min-retry-delay"], settings["max-retry-delay"]) == ("10s", "600s")
    # The worker knows the bound, so a deferral near it is published again, not nacked.
    work_env = state["functions"]["imggo-work"]["set-env-vars"].split(",")
    assert "IMGGO_FN_MAX_DELIVERY_ATTEMPTS=10" in work_env
    assert "imggo-work-dead-letter" in state["topics"]
    agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert named(
        calls,
        "topics",
        "add-iam-policy-binding",
        "imggo-work-dead-letter",
        f"--member={agent}",
        "--role=roles/pubsub.publisher",
    )
    assert named(
        calls,
        "subscriptions",
        "add-iam-policy-binding",
        subscription,
        f"--member={agent}",
        "--role=roles/pubsub.subscriber",
    )


def test_every_function_is_bounded_and_reconcile_never_overlaps(deployer: Deployer) -> None:
    done, _ = deployer.run()
    assert done.returncode == 0, done.stderr
    functions = json.loads(deployer.state.read_text())["functions"]
    assert set(functions) == {"imggo-api", "imggo-work", "imggo-uploads", "imggo-reconcile"}
    for name, flags in functions.items():
        assert int(flags["max-instances"]) >= 1, name
    reconcile = functions["imggo-reconcile"]
    assert reconcile["max-instances"] == "1"
    assert int(reconcile["timeout"].removesuffix("s")) < 5 * 60  # the schedule: */5
    api = functions["imggo-api"]
    threads = next(v for v in api["set-env-vars"].split(",") if v.startswith("THREADS="))
    assert threads == f"THREADS={api['concurrency']}"


def test_iam_is_granted_on_resources_and_triggers_have_their_own_identity(
    deployer: Deployer,
) -> None:
    done, calls = deployer.run()
    assert done.returncode == 0, done.stderr
    runtime = "serviceAccount:imggo-fn@demo-proj-1.iam.gserviceaccount.com"
    trigger = "serviceAccount:imggo-trigger@demo-proj-1.iam.gserviceaccount.com"
    project_roles = {
        (
            next(a for a in c["args"] if a.startswith("--member=")),
            next(a for a in c["args"] if a.startswith("--role=")),
        )
        for c in named(calls, "projects", "add-iam-policy-binding")
    }
    assert (f"--member={runtime}", "--role=roles/pubsub.publisher") not in project_roles
    assert not [r for m, r in project_roles if r == "--role=roles/run.invoker"]
    assert named(
        calls, "pubsub", "topics", "add-iam-policy-binding", "imggo-work", f"--member={runtime}"
    )
    functions = json.loads(deployer.state.read_text())["functions"]
    for name in ("imggo-work", "imggo-uploads", "imggo-reconcile"):
        assert functions[name]["trigger-service-account"] == trigger.removeprefix("serviceAccount:")
        assert functions[name]["service-account"] == runtime.removeprefix("serviceAccount:")
        assert named(calls, "functions", "add-invoker-policy-binding", name, f"--member={trigger}")


def test_a_datastore_mode_database_is_refused_before_any_change(deployer: Deployer) -> None:
    deployer.seed("databases", "(default)", type="DATASTORE_MODE")
    done, calls = deployer.run()
    assert done.returncode == 2
    assert "DATASTORE_MODE" in done.stderr and "native mode" in done.stderr
    assert all(c["outcome"] in ("read", "not found") for c in calls), calls


def test_not_logged_in_is_said_before_the_secrets(deployer: Deployer, tmp_path: Path) -> None:
    (deployer.bin / "gcloud").write_text(
        "#!/bin/sh\necho 'ERROR: (gcloud.projects.describe) You do not currently have"
        " an active account selected.' >&2\nexit 1\n"
    )
    done, _ = deployer.run()
    assert done.returncode == 2
    assert "gcloud auth login" in done.stderr
    assert "Secret Manager" not in done.stderr
