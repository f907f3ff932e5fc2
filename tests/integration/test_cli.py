"""The `imggo-fn` command as a user runs it: a real subprocess, real files, clear errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from imggo_simulator import SimulatorConfig, SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    str(p) for p in (ROOT / "examples").iterdir() if p.suffix in (".png", ".jpg", ".gif")
)


def run_cli(
    args: list[str], tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 60
):
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("IMGGO_", "AWS_", "GOOGLE_"))
    }
    full_env |= {
        "IMGGO_FN_DATA_DIR": str(tmp_path / "data"),
        "IMGGO_FN_STORE_URL": f"sqlite:///{tmp_path}/data/jobs.db",
    }
    full_env |= env or {}
    return subprocess.run(
        [sys.executable, "-m", "imggo_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
    )


def test_ingest_examples_end_to_end(tmp_path):
    out = tmp_path / "results.jsonl"
    result = run_cli(["ingest", *EXAMPLES, "--pattern", "image-facts", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(EXAMPLES) and {r["status"] for r in records} == {"succeeded"}
    assert all(r["manifest"]["width"] > 0 for r in records)
    assert f"{len(EXAMPLES)} succeeded, 0 did not" in result.stdout
    listed = run_cli(["jobs", "list"], tmp_path)
    assert listed.returncode == 0 and listed.stdout.count("succeeded") == len(EXAMPLES)
    job_id = records[0]["job_id"]
    shown = run_cli(["jobs", "show", job_id], tmp_path)
    assert json.loads(shown.stdout)["id"] == job_id


def test_csv_output_and_a_non_image_fails_that_item_only(tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    out = tmp_path / "r.csv"
    result = run_cli(
        ["ingest", EXAMPLES[0], str(not_image), "-p", "invoice", "-o", str(out)], tmp_path
    )
    assert result.returncode == 1
    text = out.read_text()
    assert "succeeded" in text and "not_an_image" in text
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args,env,code,message",
    [
        (["ingest", "missing.png", "-p", "invoice"], {}, 2, "error: no such file: missing.png"),
        (["ingest", "examples", "-p", "invoice"], {}, 2, "error: not a file: examples"),
        (
            ["ingest", "examples/invoice.png", "-p", "invoice"],
            {"IMGGO_API_KEY": "imggo_test_x", "IMGGO_BASE_URL": "http://127.0.0.1:9"},
            3,
            "error: cannot reach ImgGo at http://127.0.0.1:9",
        ),
        (["jobs", "list", "--status", "nope"], {}, 2, "error: --status must be one of"),
        (["jobs", "show", "nope"], {}, 2, "error: no job nope"),
        (
            ["jobs", "list"],
            {"IMGGO_FN_STORE_URL": "postgres://x"},
            2,
            "error: unsupported store URL",
        ),
    ],
)
def test_user_mistakes_get_one_clear_line(tmp_path, args, env, code, message):
    result = run_cli(args, tmp_path, env)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_imggo_key_is_named_as_such(tmp_path):
    with SimulatorServer(SimulatorConfig()) as sim:
        result = run_cli(
            ["ingest", EXAMPLES[0], "-p", "invoice"],
            tmp_path,
            {"IMGGO_API_KEY": "imggo_test_wrong", "IMGGO_BASE_URL": sim.url},
        )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: ImgGo refused the API key (check IMGGO_API_KEY)"


def test_serve_prints_a_working_curl_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGGO_")}
    env |= {"IMGGO_FN_DATA_DIR": str(tmp_path), "IMGGO_FN_STORE_URL": f"sqlite:///{tmp_path}/j.db"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imggo_cli.main", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "openapi.json" in line:
                break
        text = "".join(lines)
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text).group(1)
        key = re.search(r"dev API key .*: (dev_\S+)", text).group(1)
        assert f"-F image=@examples/product.jpg {url}/v1/jobs" in text
        headers = {"Authorization": f"Bearer {key}"}
        with open(ROOT / "examples" / "product.jpg", "rb") as fh:
            r = httpx.post(
                f"{url}/v1/jobs",
                headers=headers,
                data={"pattern_id": "product"},
                files={"image": ("product.jpg", fh, "image/jpeg")},
            )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        # Poll-through only asks ImgGo about a job 5 s after its last change, so success
        # well within that can only have come by the signed webhook serve registered.
        for _ in range(30):
            job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers).json()
            if job["status"] == "succeeded":
                break
            time.sleep(0.1)
        assert job["status"] == "succeeded", job
        assert httpx.get(f"{url}/v1/jobs", headers=headers).json()["items"][0]["id"] == job_id
        assert httpx.get(f"{url}/health").status_code == 200
        assert "/v1/jobs" in httpx.get(f"{url}/openapi.json").json()["paths"]
        assert httpx.get(f"{url}/v1/jobs").status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
