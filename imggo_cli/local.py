"""The laptop environment: settings, the embedded simulator when no ImgGo key is set,
and a development API key for `serve`."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.api.auth import hash_key
from core.config import Settings

LOCAL_TENANT = "local"


@dataclass
class LocalEnv:
    settings: Settings
    simulator: Any | None  # imggo_simulator.SimulatorServer when embedded

    @property
    def simulated(self) -> bool:
        return self.simulator is not None

    def close(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()


def start_local(
    env: Mapping[str, str] | None = None,
    *,
    simulator_latency_s: float = 0.0,
    simulator_processing_s: float = 0.3,
    webhook_secret: str | None = None,
) -> LocalEnv:
    """Settings from the environment; without IMGGO_API_KEY, an embedded simulator on a
    free loopback port stands in for ImgGo (no account, no key, no network)."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    if settings.imggo_api_key:
        return LocalEnv(settings, None)
    try:
        from imggo_simulator import SimulatorConfig, SimulatorServer
        from imggo_simulator.config import DEMO_API_KEY
    except ImportError as exc:  # the `local` extra is missing
        raise SystemExit(
            "error: IMGGO_API_KEY is not set and the embedded simulator is not installed "
            "(pip install 'imggo-functions[local]')"
        ) from exc
    simulator = SimulatorServer(
        SimulatorConfig(ingest_latency_s=simulator_latency_s, processing_s=simulator_processing_s)
    ).start()
    settings = replace(
        settings,
        imggo_base_url=simulator.url,
        imggo_api_key=DEMO_API_KEY,
        webhook_secrets=settings.webhook_secrets or ((webhook_secret,) if webhook_secret else ()),
    )
    return LocalEnv(settings, simulator)


def dev_api_key(settings: Settings) -> tuple[Settings, str | None]:
    """When no API keys are configured, mint one for tenant `local` (printed, never stored)."""
    if settings.api_key_hashes:
        return settings, None
    key = "dev_" + secrets.token_urlsafe(24)
    return replace(settings, api_key_hashes={hash_key(key): LOCAL_TENANT}), key
