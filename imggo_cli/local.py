"""The laptop environment: settings, the embedded simulator when no ImgGo key is set,
and a development API key for `serve`."""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.api.auth import hash_key
from core.config import Settings
from imggo_cli.errors import UserError

LOCAL_TENANT = "local"
# How long the embedded simulator takes per job: quick, but long enough to show progress.
SIMULATOR_PROCESSING_S = 0.3


@dataclass
class LocalEnv:
    settings: Settings
    simulator: Any | None  # imggo_simulator.SimulatorServer when embedded

    @property
    def simulated(self) -> bool:
        return self.simulator is not None

    def describe_imggo(self) -> str:
        """One line for the banner: which ImgGo this run talks to."""
        if self.simulated:
            return "ImgGo: the built-in simulator (IMGGO_API_KEY is not set): results are SIMULATED"
        return f"ImgGo: {self.settings.imggo_base_url}"

    def close(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()


def local_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment, with the data directory created."""
    settings = Settings.from_env(os.environ if env is None else env)
    try:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the data directory {settings.data_dir} ({exc.strerror}): "
            "set IMGGO_FN_DATA_DIR to a writable directory"
        ) from exc
    return settings


def start_local(
    env: Mapping[str, str] | None = None, *, webhook_secret: str | None = None
) -> LocalEnv:
    """Settings from the environment; without IMGGO_API_KEY, an embedded simulator on a
    free loopback port stands in for ImgGo (no account, no key, no network)."""
    env = os.environ if env is None else env
    settings = local_settings(env)
    if settings.imggo_api_key:
        return LocalEnv(settings, None)
    if env.get("IMGGO_BASE_URL"):
        # Someone meant a particular ImgGo: quietly simulating it would mislead them.
        raise UserError(
            f"IMGGO_BASE_URL is set ({env['IMGGO_BASE_URL']}) but IMGGO_API_KEY is not: "
            "set the key, or unset IMGGO_BASE_URL to use the built-in simulator"
        )
    if importlib.util.find_spec("PIL") is None:  # the simulator reads images with Pillow
        raise UserError(
            "IMGGO_API_KEY is not set and the built-in simulator needs the `local` extra "
            "(pip install 'imggo-functions[local]')"
        )
    from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer

    simulator = SimulatorServer(SimulatorConfig(processing_s=SIMULATOR_PROCESSING_S)).start()
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
