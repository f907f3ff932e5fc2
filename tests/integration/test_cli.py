"""The `imggo-fn` command as a user runs it: a real subprocess, real files, clear errors."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.adapters.stores import open_store
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.support.images import png

ROOT = Path(__file__).resolve().parents[2]
INVOICE = "examples/invoice.png"
EXAMPLES = sorted(
    str(p) for p in (ROOT / "examples").iterdir() if p.suffix in (".png", ".jpg", ".gif")
)


def as_in_a_terminal() -> None:
    """For a child the test will Ctrl-C: SIGINT as a foreground program has it. Started from
    a background job (`make test &`, a CI runner) it inherits SIGINT ignored, and Python
    then installs no KeyboardInterrupt handler: the signal would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_env(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMGGO_", "AWS_", "GOOGLE_", "XDG_", "COLUMNS"))
    }
    full_env |= {
        "IMGGO_FN_DATA_DIR": str(tmp_path / "data"),
        "IMGGO_FN_STORE_URL": f"sqlite:///{tmp_path}/data/jobs.db",
    }
    return full_env | (env or {})


def run_cli(
    args: list[str],
    tmp_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: Path = ROOT,
):
    return subprocess.run(
        [sys.executable, "-m", "imggo_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(tmp_path, env),
        cwd=cwd,
    )


def stored_jobs(tmp_path: Path) -> list:
    store = open_store(f"sqlite:///{tmp_path}/data/jobs.db")
    return store.list_jobs("local", limit=200).items


def one_line_error(result, code: int, starts: str) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(starts), result.stderr
    return lines[0]


def images(tmp_path: Path, count: int) -> list[str]:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    paths = []
    for seed in range(count):
        path = folder / f"img{seed:02d}.png"
        path.write_bytes(png(seed))
        paths.append(str(path))
    return paths


def test_ingest_examples_end_to_end(tmp_path):
    out = tmp_path / "results.jsonl"
    result = run_cli(
        ["ingest", *EXAMPLES, "--pattern", "image-facts", "--out", str(out)],
        tmp_path,
        {"COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(EXAMPLES) and {r["status"] for r in records} == {"succeeded"}
    assert all(r["manifest"]["width"] > 0 for r in records)
    # The built-in simulator's results say so: in the file, the banner and a column.
    assert all(r["simulated"] is True for r in records)
    assert "results are SIMULATED" in result.stdout.splitlines()[0]
    header = next(line for line in result.stdout.splitlines() if "status" in line)
    assert "simulated" in header
    # The table fits an 80-column terminal instead of wrapping.
    table = [line for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert len(table) == 4 + 4 and max(len(line) for line in table) <= 80, result.stdout
    # The progress line says done/total and the plan's limit (the built-in simulator has
    # none: it says a million a minute); the time left is gone once nothing is.
    assert re.search(r"^ingest: 4/4 done \(\d+/min\)$", result.stderr, re.M), result.stderr
    assert f"{len(EXAMPLES)} succeeded, 0 failed" in result.stdout
    listed = run_cli(["jobs", "list"], tmp_path)
    assert listed.returncode == 0 and listed.stdout.count("succeeded") == len(EXAMPLES)
    job_id = records[0]["job_id"]
    shown = run_cli(["jobs", "show", job_id], tmp_path)
    assert json.loads(shown.stdout)["id"] == job_id


def test_jobs_show_takes_the_short_ids_the_tables_print(tmp_path):
    result = run_cli(["ingest", EXAMPLES[0], "-p", "image-facts"], tmp_path, {"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    job_id = stored_jobs(tmp_path)[0].id
    assert job_id[:8] in result.stdout  # the ingest table's job column
    shown = run_cli(["jobs", "show", job_id[:8]], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == job_id
    assert job_id[:8] in run_cli(["jobs", "list"], tmp_path).stdout


def test_an_ambiguous_prefix_names_the_candidates(tmp_path):
    # 17 ids, 16 hex digits: at least two share their first character.
    result = run_cli(["ingest", *images(tmp_path, 17), "-p", "image-facts"], tmp_path)
    assert result.returncode == 0, result.stderr
    ids = [job.id for job in stored_jobs(tmp_path)]
    shared = next(i[0] for i in ids if sum(j.startswith(i[0]) for j in ids) > 1)
    line = one_line_error(run_cli(["jobs", "show", shared], tmp_path), 2, "error: ")
    assert "more than one job" in line and any(job_id in line for job_id in ids), line


def test_csv_output_flattens_the_manifest_and_a_bad_item_fails_alone(tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    out = tmp_path / "r.csv"
    result = run_cli(
        ["ingest", EXAMPLES[0], str(not_image), "-p", "image-facts", "-o", str(out)], tmp_path
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    rows = list(csv.DictReader(out.open(newline="")))
    good, bad = rows
    assert good["status"] == "succeeded" and int(good["manifest.width"]) > 0
    assert good["manifest.format"] == "PNG" and good["simulated"] == "true"
    assert bad["status"] == "invalid" and bad["error_code"] == "not_an_image"
    assert bad["manifest.width"] == ""


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
            "error: unsupported IMGGO_FN_STORE_URL",
        ),
        (["ingest", INVOICE, "-p", "invoice", "-o", "r.txt"], {}, 2, "error: --out r.txt: the"),
        (["ingest", INVOICE, "-p", "invoice", "-o", "examples"], {}, 2, "error: --out examples is"),
        (["serve", "--port", "80808"], {}, 2, "error: argument --port: '80808' is not a port"),
        (["simulator", "--port", "80808"], {}, 2, "error: argument --port: '80808' is not a port"),
        (["ingest", "-p"], {}, 2, "error: argument --pattern/-p: expected one argument"),
        (
            ["ingest", "examples/invoice.png", "-p", "invoice"],
            {"IMGGO_BASE_URL": "http://127.0.0.1:9"},
            2,
            "error: IMGGO_BASE_URL is set (http://127.0.0.1:9) but IMGGO_API_KEY is not",
        ),
        (
            ["ingest", "examples/invoice.png", "-p", "invoice"],
            {"IMGGO_FN_BATCH_CONCURRENCY": "0"},
            2,
            "error: --concurrency (or IMGGO_FN_BATCH_CONCURRENCY) must be at least 1",
        ),
        (
            ["reconcile"],
            {"IMGGO_API_KEY": "imggo_test_x", "IMGGO_BASE_URL": "http://127.0.0.1:9"},
            3,
            "error: cannot reach ImgGo at http://127.0.0.1:9",
        ),
    ],
)
def test_user_mistakes_get_one_clear_line(tmp_path, args, env, code, message):
    started = time.monotonic()
    one_line_error(run_cli(args, tmp_path, env), code, message)
    assert time.monotonic() - started < 15  # reconcile used to take a minute to give up


def test_out_that_cannot_be_written_fails_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_cli(
        ["ingest", EXAMPLES[0], "-p", "image-facts", "-o", str(blocker / "r.jsonl")], tmp_path
    )
    one_line_error(result, 2, f"error: --out {blocker / 'r.jsonl'}: cannot write there")
    assert not (tmp_path / "data" / "jobs.db").exists()  # nothing was started


def test_a_mistyped_pattern_stops_with_the_valid_names(tmp_path):
    result = run_cli(["ingest", *EXAMPLES, "-p", "invoce"], tmp_path)
    line = one_line_error(result, 2, "error: ImgGo has no pattern 'invoce'")
    assert "did you mean 'invoice'?" in line
    assert all(name in line for name in ("image-facts", "invoice", "product", "receipt"))
    assert stored_jobs(tmp_path) == []  # not one rejected job per image


def test_a_pattern_is_accepted_by_id_and_by_title(tmp_path):
    from imggo_simulator import BUILTIN_PATTERN_IDS

    for given in (BUILTIN_PATTERN_IDS["invoice"], "invoice extraction"):
        result = run_cli(["ingest", EXAMPLES[0], "-p", given], tmp_path)
        assert result.returncode == 0, result.stderr
    # Same image, same pattern however named: one job.
    assert len(stored_jobs(tmp_path)) == 1


def test_patterns_list_shows_names_and_ids(tmp_path):
    from imggo_simulator import BUILTIN_PATTERN_IDS

    result = run_cli(["patterns", "list"], tmp_path, {"COLUMNS": "100"})
    assert result.returncode == 0, result.stderr
    for alias, pattern_id in BUILTIN_PATTERN_IDS.items():
        row = next(line for line in result.stdout.splitlines() if pattern_id in line)
        assert alias in row


def test_version(tmp_path):
    from core import __version__

    result = run_cli(["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"imggo-fn {__version__}"


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    assert run_cli(["ingest", EXAMPLES[0], "-p", "image-facts"], tmp_path).returncode == 0
    job_id = stored_jobs(tmp_path)[0].id
    proc = subprocess.Popen(
        [sys.executable, "-m", "imggo_cli.main", "jobs", "show", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(tmp_path),
        cwd=ROOT,
    )
    proc.stdout.close()  # like `| head` that has already exited
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141, stderr
    assert stderr == "", stderr


def test_the_store_follows_the_data_dir_from_any_directory(tmp_path):
    data = tmp_path / "elsewhere"
    env = {"IMGGO_FN_DATA_DIR": str(data), "IMGGO_FN_STORE_URL": ""}
    result = run_cli(["ingest", EXAMPLES[0], "-p", "image-facts"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert (data / "imggo-fn.db").exists()
    listed = run_cli(["jobs", "list"], tmp_path, env, cwd=tmp_path)
    assert listed.stdout.count("succeeded") == 1, listed.stdout
    # Without IMGGO_FN_DATA_DIR: the user's data directory, not the working directory.
    env = {"IMGGO_FN_DATA_DIR": "", "IMGGO_FN_STORE_URL": "", "XDG_DATA_HOME": str(tmp_path / "x")}
    assert run_cli(["ingest", EXAMPLES[0], "-p", "image-facts"], tmp_path, env).returncode == 0
    assert (tmp_path / "x" / "imggo-fn" / "imggo-fn.db").exists()


def test_a_bad_imggo_key_is_named_as_such(tmp_path):
    with SimulatorServer(SimulatorConfig()) as sim:
        result = run_cli(
            ["ingest", EXAMPLES[0], "-p", "invoice"],
            tmp_path,
            {"IMGGO_API_KEY": "imggo_test_wrong", "IMGGO_BASE_URL": sim.url},
        )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: ImgGo refused the API key (check IMGGO_API_KEY)"


def test_ctrl_c_stops_promptly_and_a_rerun_resumes_without_duplicates(tmp_path):
    paths = images(tmp_path, 10)
    args = ["ingest", *paths, "-p", "image-facts", "-c", "1"]
    with SimulatorServer(SimulatorConfig(ingest_latency_s=0.25, processing_s=0.05)) as sim:
        env = {"IMGGO_API_KEY": DEMO_API_KEY, "IMGGO_BASE_URL": sim.url}
        proc = subprocess.Popen(
            [sys.executable, "-m", "imggo_cli.main", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(tmp_path, env),
            cwd=ROOT,
            preexec_fn=as_in_a_terminal,
        )
        deadline = time.monotonic() + 20
        while sim.ingest_calls() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 130, (stdout, stderr)
        assert time.monotonic() - interrupted < 2.0, "Ctrl-C must stop promptly"
        assert "Run the same command again to resume" in stderr, stderr
        assert "Traceback" not in stderr
        sent_first = sim.ingest_count()
        assert 1 <= sent_first < 10

        started = time.monotonic()
        again = run_cli(args, tmp_path, env)
        assert again.returncode == 0, (again.stdout, again.stderr)
        assert "10 succeeded, 0 failed" in again.stdout
        assert time.monotonic() - started < 15  # never-sent images are sent, not waited on
        assert sim.ingest_count() == 10  # ImgGo got each image once
    jobs = stored_jobs(tmp_path)
    assert len(jobs) == 10 and all(j.dedupe_of is None for j in jobs)


def test_images_the_plan_has_no_room_for_within_wait_are_left_for_a_rerun(tmp_path):
    paths = images(tmp_path, 3)
    # 3 calls a minute: after the pattern check, the next slot is 30 s away.
    with SimulatorServer(SimulatorConfig(rate_limit_per_minute=3)) as sim:
        env = {"IMGGO_API_KEY": DEMO_API_KEY, "IMGGO_BASE_URL": sim.url}
        started = time.monotonic()
        result = run_cli(["ingest", *paths, "-p", "image-facts", "--wait", "2"], tmp_path, env)
        elapsed = time.monotonic() - started
        totals = sim.stats()["totals"]
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "3 of 3 images were not sent to ImgGo before --wait (2 s) ran out" in result.stderr
    assert "run the same command again to send them" in result.stderr
    # ... as the progress line said while there was time: 3 calls a minute, 30 s apart.
    assert re.search(r"3 to send; 3/min; ETA [^)]*, more than --wait leaves\)", result.stderr)
    assert elapsed < 10  # the wait is the run's bound, not a slot half a minute away
    assert totals["jobs_created"] == 0 and totals["rate_limited"] == 0, totals
    assert {j.status.value for j in stored_jobs(tmp_path)} == {"accepted"}


def test_the_same_image_twice_is_one_job(tmp_path):
    result = run_cli(["ingest", EXAMPLES[0], EXAMPLES[0], "-p", "image-facts"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 succeeded" in result.stdout and len(stored_jobs(tmp_path)) == 1


def test_simulator_command_prints_how_to_use_it_and_takes_its_options(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = ["--port", str(port), "--rate-limit", "2", "--processing-s", "0.01"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "imggo_cli.main", "simulator", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # On SIGABRT, every thread's stack to stderr: what a stop that hangs was doing.
        env=cli_env(tmp_path, {"PYTHONFAULTHANDLER": "1"}),
        cwd=ROOT,
        preexec_fn=as_in_a_terminal,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        text = "".join(lines)
        url = f"http://127.0.0.1:{port}"
        assert f"listening on {url}" in text, text
        assert DEMO_API_KEY in text and "invoice=" in text and "image-facts=" in text
        auth = {"Authorization": f"Bearer {DEMO_API_KEY}"}
        statuses = [httpx.get(f"{url}/api/patterns", headers=auth).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]  # --rate-limit 2 was applied
        # A second one on the same port: one line, no traceback.
        busy = run_cli(["simulator", "--port", str(port)], tmp_path, timeout=20)
        one_line_error(busy, 2, f"error: cannot listen on 127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Where it hung, rather than a bare timeout.
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"the simulator did not stop within 10 s of Ctrl-C:\n{err[-6000:]}")


def test_serve_prints_a_working_curl_line_and_stops_cleanly(tmp_path):
    env = cli_env(tmp_path, {"IMGGO_FN_STORE_URL": f"sqlite:///{tmp_path}/j.db"})
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
        assert "results are SIMULATED" in text
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
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    assert "stopping" in stderr and "Traceback" not in stderr


def test_serve_on_a_busy_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--port", str(port)], tmp_path, timeout=30)
    one_line_error(result, 2, f"error: cannot listen on 127.0.0.1:{port}")
