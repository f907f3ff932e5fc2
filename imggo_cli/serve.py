"""`imggo-fn serve`: the HTTP API on 127.0.0.1, until Ctrl-C or SIGTERM.

With the embedded simulator it also registers its own webhook there, so jobs finish by
signed webhook as they would in the cloud, and a background loop stands in for the
cloud's reconcile schedule. Stopping finishes the requests in flight first.
"""

from __future__ import annotations

import logging
import secrets
import signal
import sys
import threading
from dataclasses import replace

from core.service.context import Services
from imggo_cli.errors import EXIT_OK, UserError

log = logging.getLogger("imggo.cli")


def _reconcile_every(services: Services, interval_s: float) -> threading.Event:
    """The laptop's stand-in for a cloud schedule: reconcile in the background."""
    from core.service.reconcile import reconcile

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(max(interval_s, 5.0)):
            try:
                reconcile(services)
            except Exception:  # keep serving; the next pass retries
                log.exception("reconcile pass failed")

    threading.Thread(target=loop, name="reconcile", daemon=True).start()
    return stop


def _register_webhook(base_url: str, api_key: str, url: str, secret: str) -> None:
    import httpx

    httpx.post(
        f"{base_url}/api/webhooks",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"url": url, "events": ["job.succeeded", "job.failed"], "secret": secret},
        timeout=5,
    ).raise_for_status()


def run_serve(host: str, port: int, *, grace_s: float) -> int:
    from core.api.app import HttpApp
    from core.bootstrap import build_services, with_local_queue
    from imggo_cli import dashboard
    from imggo_cli.local import dev_api_key, start_local
    from imggo_cli.server import LocalServer

    webhook_secret = secrets.token_urlsafe(24)
    local = start_local(webhook_secret=webhook_secret)
    try:
        settings, key = dev_api_key(local.settings)
        if local.simulated:
            # The embedded ImgGo may fetch image URLs from this machine.
            settings = replace(
                settings, ssrf_allow=(*settings.ssrf_allow, "127.0.0.1", "localhost")
            )
        services = with_local_queue(build_services(settings))
        try:
            server = LocalServer(HttpApp(services), host, port, local_routes=dashboard.handle)
        except OSError as exc:
            services.close()
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    except BaseException:
        local.close()
        raise
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    reconciling = _reconcile_every(services, settings.reconcile_age_s)
    try:
        if local.simulated:
            assert settings.imggo_api_key is not None
            _register_webhook(
                settings.imggo_base_url,
                settings.imggo_api_key,
                f"{server.url}/v1/webhooks/imggo",
                webhook_secret,
            )
        _banner(server.url, settings.store_url, local.describe_imggo(), key)
        while not stop.wait(0.5):  # a timed wait: signal handlers run between waits
            pass
        print("stopping: finishing the requests in flight", file=sys.stderr, flush=True)
    finally:
        reconciling.set()
        server.stop(grace_s=grace_s)
        services.close()
        local.close()
    return EXIT_OK


def _banner(url: str, store_url: str, imggo: str, key: str | None) -> None:
    print(f"imggo-fn listening on {url}  (store {store_url})")
    print(imggo)
    print(f"dashboard: {url}/")
    auth = f"Authorization: Bearer {key}" if key else "Authorization: Bearer <your key>"
    if key:
        print(f"dev API key (tenant 'local', valid while this runs): {key}")
    print("try:")
    print(
        f"  curl -s -H '{auth}' -F pattern_id=image-facts -F image=@examples/product.jpg "
        f"{url}/v1/jobs"
    )
    print(f"  curl -s -H '{auth}' {url}/v1/jobs")
    print(f"  curl -s {url}/openapi.json")
    print("Ctrl-C to stop.", flush=True)
