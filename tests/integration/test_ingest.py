"""`imggo_cli.ingest` in-process against the real simulator: what a stop leaves behind."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from core.adapters.imggo.client import ImggoClient
from core.bootstrap import Overrides, build_services
from core.config import Settings
from core.ports import ImageApi, ImageUpload, RemoteJob, Submission
from core.service.batch import BatchItem
from imggo_cli.ingest import Input, ingest
from imggo_cli.patterns import PatternInfo
from imggo_simulator import BUILTIN_PATTERN_IDS, DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.support.images import png

PATTERN = PatternInfo(BUILTIN_PATTERN_IDS["image-facts"], "Image Facts", "json", "image-facts")


@dataclass
class StopAfterFirstSubmit:
    """The real ImgGo client; Ctrl-C (the event) comes while its first call is out."""

    inner: ImageApi
    stop: threading.Event

    def submit(self, submission: Submission, *, deadline: float | None = None) -> RemoteJob:
        self.stop.set()
        return self.inner.submit(submission, deadline=deadline)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_stopped_with_the_embedded_simulator_its_jobs_are_finished_first(tmp_path):
    with SimulatorServer(SimulatorConfig(processing_s=0.3)) as sim:
        stop = threading.Event()
        client = ImggoClient(sim.url, DEMO_API_KEY)
        settings = Settings(
            store_url=f"sqlite:///{tmp_path}/jobs.db",
            data_dir=str(tmp_path),
            imggo_base_url=sim.url,
            imggo_api_key=DEMO_API_KEY,
        )
        services = build_services(settings, Overrides(imggo=StopAfterFirstSubmit(client, stop)))
        inputs = [
            Input(f"{i}.png", BatchItem(upload=ImageUpload(png(i), f"{i}.png", "")))
            for i in range(4)
        ]
        try:
            summary = ingest(
                services,
                inputs,
                pattern=PATTERN,
                concurrency=1,
                wait_s=30,
                simulated=True,
                stop=stop,
            )
        finally:
            services.close()
    assert summary.stopped
    # The one job the simulator took finished before it (and this process) went away;
    # the three never sent are left for the re-run.
    assert [r["status"] for r in summary.records] == ["succeeded"] + ["accepted"] * 3
