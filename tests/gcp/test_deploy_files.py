"""The deploy entry files and deploy/gcp.sh, run against a stub `gcloud` on PATH (it logs
every call and answers the read-only ones), so the plan can be checked offline."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

STUB = r"""#!/usr/bin/env bash
# A stand-in gcloud: logs its arguments, answers describes from $STUB_EXISTING.
printf '%s\n' "$*" >> "$STUB_LOG"
args=" $* "
if [[ "$args" == *" projects describe "* ]]; then echo 123456789012; exit 0; fi
if [[ "$args" == *" describe "* ]]; then
  for thing in $STUB_EXISTING; do
    if [[ "$args" == *" $thing "* ]]; then echo "$thing"; exit 0; fi
  done
  echo "ERROR: (gcloud) NOT_FOUND" >&2; exit 1
fi
exit 0
"""
SECRETS = "imggo-api-key imggo-webhook-secret imggo-fn-api-keys"


def run_deploy(
    repo_root: Path, tmp_path: Path, *args: str, existing: str = SECRETS
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "gcloud"
    stub.write_text(STUB)
    stub.chmod(0o755)
    log = tmp_path / "gcloud.log"
    log.write_text("")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STUB_LOG": str(log),
        "STUB_EXISTING": existing,
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(repo_root / "deploy" / "gcp.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, log.read_text().splitlines()


def planned(stdout: str) -> list[list[str]]:
    """The argv of every change the dry run says it would make."""
    prefix = "  would run: "
    return [
        shlex.split(line[len(prefix) :]) for line in stdout.splitlines() if line.startswith(prefix)
    ]


def find(plan: list[list[str]], *words: str) -> list[list[str]]:
    return [argv for argv in plan if all(w in argv for w in words)]


def test_dry_run_prints_the_whole_plan_and_changes_nothing(repo_root: Path, tmp_path: Path) -> None:
    done, calls = run_deploy(
        repo_root, tmp_path, "--project", "demo-proj-1", "--region", "europe-west1", "--dry-run"
    )
    assert done.returncode == 0, done.stderr
    assert "DRY RUN" in done.stdout
    # Only read-only calls reached gcloud.
    assert calls and all(" describe " in f" {c} " for c in calls), calls
    plan = planned(done.stdout)
    assert all(argv[:3] == ["gcloud", "--project", "demo-proj-1"] for argv in plan)

    api = find(plan, "functions", "deploy", "imggo-api")
    assert len(api) == 1
    for flag in (
        "--gen2",
        "--runtime=python312",
        "--region=europe-west1",
        "--entry-point=http_api",
        "--trigger-http",
        "--allow-unauthenticated",
    ):
        assert flag in api[0], flag
    env_flag = next(a for a in api[0] if a.startswith("--set-env-vars="))
    assert "IMGGO_FN_STORE_URL=firestore://imggo" in env_flag
    assert "IMGGO_FN_QUEUE_URL=pubsub://projects/demo-proj-1/topics/imggo-work" in env_flag
    assert "IMGGO_FN_BLOB_URL=gs://demo-proj-1-imggo-uploads" in env_flag
    assert "GOOGLE_CLOUD_PROJECT=demo-proj-1" in env_flag
    secrets_flag = next(a for a in api[0] if a.startswith("--set-secrets="))
    assert "IMGGO_API_KEY=imggo-api-key:latest" in secrets_flag

    work = find(plan, "deploy", "imggo-work")[0]
    assert "--entry-point=pubsub_work" in work and "--trigger-topic=imggo-work" in work
    assert "--retry" in work
    uploads = find(plan, "deploy", "imggo-uploads")[0]
    assert "--entry-point=storage_finalized" in uploads and "--retry" in uploads
    assert "--trigger-bucket=demo-proj-1-imggo-uploads" in uploads
    reconcile = find(plan, "deploy", "imggo-reconcile")[0]
    assert "--entry-point=pubsub_reconcile" in reconcile
    assert "--trigger-topic=imggo-reconcile" in reconcile and "--retry" not in reconcile
    scheduler = find(plan, "scheduler", "jobs", "create", "pubsub", "imggo-reconcile")
    assert scheduler and "--topic=imggo-reconcile" in scheduler[0]
    assert find(plan, "pubsub", "topics", "create", "imggo-work")
    assert find(plan, "pubsub", "topics", "create", "imggo-reconcile")
    assert find(plan, "storage", "buckets", "create", "gs://demo-proj-1-imggo-uploads")
    assert find(plan, "firestore", "databases", "create")
    assert find(plan, "--role=roles/iam.serviceAccountTokenCreator")
    assert find(plan, "--role=roles/secretmanager.secretAccessor", "imggo-api-key")


def test_plan_creates_exactly_the_indexes_in_firestore_indexes_json(
    repo_root: Path, tmp_path: Path
) -> None:
    done, _ = run_deploy(
        repo_root, tmp_path, "--project", "demo-proj-1", "--region", "us-central1", "--dry-run"
    )
    assert done.returncode == 0, done.stderr
    plan = planned(done.stdout)
    spec = json.loads((repo_root / "firestore.indexes.json").read_text())
    wanted = {
        (
            index["collectionGroup"],
            tuple(
                f"--field-config=field-path={f['fieldPath']},order={f['order'].lower()}"
                for f in index["fields"]
            ),
        )
        for index in spec["indexes"]
    }
    made = {
        (
            next(a for a in argv if a.startswith("--collection-group=")).split("=", 1)[1],
            tuple(a for a in argv if a.startswith("--field-config=")),
        )
        for argv in find(plan, "indexes", "composite", "create")
    }
    assert made == wanted
    ttl = {(o["collectionGroup"], o["fieldPath"]) for o in spec["fieldOverrides"] if o.get("ttl")}
    planned_ttl = {
        (next(a for a in argv if a.startswith("--collection-group=")).split("=", 1)[1], argv[8])
        for argv in find(plan, "ttls", "update", "--enable-ttl")
    }
    assert planned_ttl == ttl
    exempt = {
        (o["collectionGroup"], o["fieldPath"]) for o in spec["fieldOverrides"] if o["indexes"] == []
    }
    planned_exempt = {
        (next(a for a in argv if a.startswith("--collection-group=")).split("=", 1)[1], argv[8])
        for argv in find(plan, "indexes", "fields", "update", "--disable-indexes")
    }
    assert planned_exempt == exempt


def test_existing_resources_are_not_created_again(repo_root: Path, tmp_path: Path) -> None:
    done, _ = run_deploy(
        repo_root,
        tmp_path,
        "--project",
        "demo-proj-1",
        "--region",
        "us-central1",
        "--dry-run",
        existing=SECRETS
        + " imggo-work imggo-work-dead-letter imggo-reconcile gs://demo-proj-1-imggo-uploads",
    )
    assert done.returncode == 0, done.stderr
    plan = planned(done.stdout)
    assert not find(plan, "topics", "create")
    assert not find(plan, "buckets", "create")
    assert "topic imggo-work exists" in done.stdout


def test_secret_reference_mode(repo_root: Path, tmp_path: Path) -> None:
    done, _ = run_deploy(
        repo_root,
        tmp_path,
        "--project",
        "demo-proj-1",
        "--region",
        "us-central1",
        "--secrets-mode",
        "ref",
        "--dry-run",
    )
    assert done.returncode == 0, done.stderr
    api = find(planned(done.stdout), "deploy", "imggo-api")[0]
    assert not [a for a in api if a.startswith("--set-secrets")]
    env_flag = next(a for a in api if a.startswith("--set-env-vars="))
    assert "IMGGO_API_KEY_SECRET_REF=imggo-api-key" in env_flag
    assert "IMGGO_FN_API_KEYS_SECRET_REF=imggo-fn-api-keys" in env_flag


def test_missing_secret_stops_before_any_change(repo_root: Path, tmp_path: Path) -> None:
    done, calls = run_deploy(
        repo_root,
        tmp_path,
        "--project",
        "demo-proj-1",
        "--region",
        "us-central1",
        existing="imggo-api-key",
    )
    assert done.returncode == 3
    assert "imggo-webhook-secret" in done.stderr and "imggo-fn-api-keys" in done.stderr
    assert "gcloud secrets create" in done.stderr
    assert all(" describe " in f" {c} " for c in calls)


@pytest.mark.parametrize(
    "args",
    [
        ("--region", "us-central1"),
        ("--project", "demo-proj-1"),
        ("--project", "Bad_Project", "--region", "us-central1"),
        ("--project", "demo-proj-1", "--region", "moon"),
        ("--project", "demo-proj-1", "--region", "us-central1", "--secrets-mode", "files"),
        ("--project", "demo-proj-1", "--region", "us-central1", "--bogus"),
    ],
)
def test_bad_inputs_are_refused(repo_root: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    done, calls = run_deploy(repo_root, tmp_path, *args, "--dry-run")
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("error:") or "error:" in done.stderr
    assert calls == []


def test_script_is_valid_bash(repo_root: Path) -> None:
    script = str(repo_root / "deploy" / "gcp.sh")
    assert subprocess.run(["bash", "-n", script], capture_output=True).returncode == 0
    if shutil.which("shellcheck"):
        checked = subprocess.run(["shellcheck", script], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout


def test_requirements_txt_is_generated_from_pyproject(repo_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(repo_root / "deploy" / "requirements.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    lines = (repo_root / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("functions-framework") for line in lines)
    assert any(line.startswith("google-cloud-firestore") for line in lines)
    assert any(line.startswith("httpx") for line in lines)


def test_main_py_is_one_line_exposing_the_entry_points(repo_root: Path) -> None:
    lines = [line for line in (repo_root / "main.py").read_text().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("from handlers_gcp")
    import main

    for target in ("http_api", "pubsub_work", "storage_finalized", "pubsub_reconcile"):
        assert callable(getattr(main, target)), target


def test_gcloudignore_ships_only_what_runs(repo_root: Path) -> None:
    rules = {
        line.strip()
        for line in (repo_root / ".gcloudignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for excluded in ("tests/", "bench/", ".git/", "imggo_simulator/", "pyproject.toml"):
        assert excluded in rules, excluded
    for needed in ("main.py", "requirements.txt", "core/", "handlers_gcp/"):
        assert needed not in rules and f"/{needed}" not in rules
    assert "#!include:.gitignore" in (repo_root / ".gcloudignore").read_text()
