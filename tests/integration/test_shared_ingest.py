"""Several `imggo-fn ingest` processes at once, sharing one data dir (so one store and one
rate budget) against one ImgGo with a plan limit: every job finishes, none is left
accepted, and ImgGo is hardly ever answered with a 429. `make bench` runs the same at
full scale (bench/shared_ingest.py)."""

from __future__ import annotations

import subprocess
import sys

from core.domain.job import JobStatus
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.integration.test_cli import ROOT, cli_env, images, stored_jobs


def test_two_ingests_sharing_a_data_dir_pace_on_one_budget_and_finish_every_job(tmp_path):
    paths = images(tmp_path, 12)
    options = ["-p", "image-facts", "-c", "8", "--wait", "30"]
    # Calls may wait half a second for their slot (deadline 1 s, minus half the 1 s
    # timeout), and 2 x 8 calls in flight at 600/min (0.1 s apart) would wait 1.6 s: a
    # client that does not pace itself defers some submissions, and must send them later.
    env = {"IMGGO_TIMEOUT_S": "1", "IMGGO_FN_SUBMIT_DEADLINE_S": "1"}
    with SimulatorServer(SimulatorConfig(rate_limit_per_minute=600, processing_s=0.1)) as sim:
        env |= {"IMGGO_API_KEY": DEMO_API_KEY, "IMGGO_BASE_URL": sim.url}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "imggo_cli.main", "ingest", *half, *options],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=cli_env(tmp_path, env),
                cwd=ROOT,
            )
            for half in (paths[:6], paths[6:])
        ]
        outputs = [proc.communicate(timeout=60) for proc in procs]
        totals = sim.stats()["totals"]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (stdout, stderr)
        assert "6 succeeded, 0 failed" in stdout, stdout
        assert "Traceback" not in stderr, stderr
    jobs = stored_jobs(tmp_path)
    assert len(jobs) == 12
    assert [j.id for j in jobs if j.status is not JobStatus.SUCCEEDED] == []
    assert totals["jobs_created"] == 12  # each image sent once
    # The budget is shared: ImgGo's limit is hardly ever hit.
    assert totals["rate_limited"] <= max(1, totals["requests"] // 50), totals
