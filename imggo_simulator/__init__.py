"""imggo_simulator: an embedded ImgGo API simulator - a real HTTP server on loopback.

A test double that speaks the ImgGo API as /work/shared/imggo/CONTRACT.md and openapi.yaml
describe it: Bearer auth, patterns, ingest (JSON image_url or multipart upload, with
idempotency), jobs that move queued -> running -> succeeded | failed, manifests read from
the image with Pillow, ?format= rendering, rate limits, signed webhooks, and chaos knobs
(errors, 429s, stalls, lost webhooks) for resilience tests.

    from imggo_simulator import SimulatorConfig, SimulatorServer

    with SimulatorServer(SimulatorConfig(processing_s=0.02)) as sim:
        ...  # point the client at sim.url with key "imggo_test_simulator"

Built-in patterns (any API key): `invoice`, `product`, `receipt`, `image-facts`, each with
a stable UUID; the short alias is accepted wherever a pattern id is (see patterns.py).
Run standalone with `python -m imggo_simulator --port 8787`. Counts per API key (for
benchmarks and tests) are at `GET /_sim/stats`, outside the API, keys named by `key_id`.
"""

from __future__ import annotations

from .callers import key_id
from .config import DEMO_API_KEY, SimulatorConfig
from .patterns import BUILTIN_PATTERN_IDS
from .server import SimulatorServer, serve_forever

__all__ = [
    "BUILTIN_PATTERN_IDS",
    "DEMO_API_KEY",
    "SimulatorConfig",
    "SimulatorServer",
    "key_id",
    "serve_forever",
]
