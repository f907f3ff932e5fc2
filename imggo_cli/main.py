"""`imggo-fn` command line. User mistakes end with one `error:` line and a non-zero exit
code, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from core.ports import ImageApi, ImageApiError
from core.service.context import Services

EXIT_USAGE, EXIT_FAILED_ITEMS, EXIT_UNREACHABLE = 2, 1, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imggo-fn", description="Send images to ImgGo and keep every job's result."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API on 127.0.0.1")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    ingest = sub.add_parser("ingest", help="submit image files or URLs and wait for results")
    ingest.add_argument("inputs", nargs="+", metavar="PATH|URL")
    ingest.add_argument("--pattern", "-p", required=True, help="ImgGo pattern id (or alias)")
    ingest.add_argument("--out", "-o", type=Path, help="write results to FILE.jsonl or FILE.csv")
    ingest.add_argument(
        "--concurrency", "-c", type=int, default=8, help="calls to ImgGo in flight at once"
    )
    ingest.add_argument("--wait", type=float, default=120.0, help="seconds to wait for results")

    jobs = sub.add_parser("jobs", help="read stored jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_list = jobs_sub.add_parser("list")
    jobs_list.add_argument("--status")
    jobs_list.add_argument("--limit", type=int, default=20)
    jobs_list.add_argument("--tenant", default="local")
    jobs_show = jobs_sub.add_parser("show")
    jobs_show.add_argument("job_id")
    jobs_show.add_argument("--tenant", default="local")

    patterns = sub.add_parser("patterns", help="ImgGo patterns")
    patterns.add_argument("patterns_command", choices=["list"])

    sub.add_parser("reconcile", help="refresh stale jobs once (what the schedule runs)")

    sim = sub.add_parser("simulator", help="run the embedded ImgGo simulator on its own")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8787)
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to each ingest")
    return parser


def _cmd_serve(args: argparse.Namespace) -> int:
    import secrets as pysecrets
    from dataclasses import replace

    from core.api.app import HttpApp
    from core.bootstrap import build_services, with_local_queue
    from imggo_cli.local import dev_api_key, start_local
    from imggo_cli.server import LocalServer

    webhook_secret = pysecrets.token_urlsafe(24)
    local = start_local(webhook_secret=webhook_secret)
    settings, key = dev_api_key(local.settings)
    if local.simulated:
        # The embedded ImgGo may fetch image URLs from this machine.
        settings = replace(settings, ssrf_allow=(*settings.ssrf_allow, "127.0.0.1", "localhost"))
    services = with_local_queue(build_services(settings))
    try:
        server = LocalServer(HttpApp(services), args.host, args.port).start()
    except OSError as exc:
        raise _UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    if local.simulated:
        import httpx

        httpx.post(
            f"{settings.imggo_base_url}/api/webhooks",
            headers={"Authorization": f"Bearer {settings.imggo_api_key}"},
            json={
                "url": f"{server.url}/v1/webhooks/imggo",
                "events": ["job.succeeded", "job.failed"],
                "secret": webhook_secret,
            },
            timeout=5,
        ).raise_for_status()
    print(f"imggo-fn listening on {server.url}  (store {settings.store_url})")
    where = "embedded simulator at " if local.simulated else ""
    print(f"ImgGo: {where}{settings.imggo_base_url}")
    auth = f"Authorization: Bearer {key}" if key else "Authorization: Bearer <your key>"
    if key:
        print(f"dev API key (tenant 'local', valid while this runs): {key}")
    print("try:")
    print(
        f"  curl -s -H '{auth}' -F pattern_id=image-facts -F image=@examples/product.jpg "
        f"{server.url}/v1/jobs"
    )
    print(f"  curl -s -H '{auth}' {server.url}/v1/jobs")
    print(f"  curl -s {server.url}/openapi.json")
    sys.stdout.flush()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stop = _reconcile_every(services, settings.reconcile_age_s)
    try:
        while not stopping.wait(0.5):  # a timed wait: signal handlers run between waits
            pass
        print("stopping: finishing the requests in flight", file=sys.stderr)
    finally:
        stop.set()
        server.stop()
        services.close()
        local.close()
    return 0


def _reconcile_every(services: Services, interval_s: float) -> threading.Event:
    """The laptop's stand-in for a cloud schedule: reconcile in the background."""
    from core.service.reconcile import reconcile

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(max(interval_s, 5.0)):
            try:
                reconcile(services)
            except Exception:  # keep serving; the next pass retries
                logging.getLogger("imggo.cli").exception("reconcile pass failed")

    threading.Thread(target=loop, name="reconcile", daemon=True).start()
    return stop


def _check_imggo(imggo: ImageApi, base_url: str) -> None:
    try:
        imggo.ping()
    except ImageApiError as exc:
        raise _UserError(
            f"cannot reach ImgGo at {base_url}: {exc.message}", EXIT_UNREACHABLE
        ) from exc
    try:
        imggo.list_patterns()
    except ImageApiError as exc:
        if exc.status in (401, 403):
            raise _UserError("ImgGo refused the API key (check IMGGO_API_KEY)") from exc
        raise _UserError(f"ImgGo answered: {exc.message}", EXIT_UNREACHABLE) from exc


def _cmd_ingest(args: argparse.Namespace) -> int:
    from core.bootstrap import build_services
    from imggo_cli.ingest import UsageError, ingest, read_inputs
    from imggo_cli.local import start_local

    try:
        read_inputs(args.inputs)  # fail on a missing file before starting anything
    except UsageError as exc:
        raise _UserError(str(exc)) from exc
    if args.concurrency < 1:
        raise _UserError("--concurrency must be at least 1")
    local = start_local()
    services = build_services(local.settings)
    try:
        _check_imggo(services.imggo, local.settings.imggo_base_url)
        summary = ingest(
            services,
            args.inputs,
            pattern=args.pattern,
            concurrency=args.concurrency,
            wait_s=args.wait,
            out=args.out,
        )
    finally:
        services.close()
        local.close()
    if args.out:
        print(f"results written to {args.out}")
    ok = len(summary.records) - summary.failed
    print(f"{ok} succeeded, {summary.failed} did not")
    return EXIT_FAILED_ITEMS if summary.failed else 0


def _cmd_jobs(args: argparse.Namespace) -> int:
    from core.adapters.stores import open_store
    from core.api.views import job_view
    from core.config import Settings
    from imggo_cli.output import table

    settings = Settings.from_env()
    store = open_store(settings.store_url)
    if args.jobs_command == "show":
        job = store.get(args.job_id)
        if job is None or job.tenant != args.tenant:
            raise _UserError(f"no job {args.job_id}")
        print(json.dumps(job_view(job), indent=2))
        return 0
    from core.domain.job import JobStatus

    try:
        status = JobStatus(args.status) if args.status else None
    except ValueError as exc:
        raise _UserError(
            f"--status must be one of {', '.join(s.value for s in JobStatus)}"
        ) from exc
    page = store.list_jobs(args.tenant, status=status, limit=args.limit)
    rows = [
        (j.id, j.status.value, j.pattern_id, j.source.filename or j.source.url or "")
        for j in page.items
    ]
    table(("job", "status", "pattern", "source"), rows, title=f"jobs of tenant {args.tenant}")
    return 0


def _cmd_patterns(args: argparse.Namespace) -> int:
    from core.bootstrap import open_imggo
    from imggo_cli.local import start_local
    from imggo_cli.output import table

    local = start_local()
    try:
        imggo = open_imggo(local.settings)
        _check_imggo(imggo, local.settings.imggo_base_url)
        rows = [
            (p.get("id", ""), p.get("name", ""), p.get("format", "")) for p in imggo.list_patterns()
        ]
    finally:
        local.close()
    table(("id", "name", "format"), rows, title="patterns")
    return 0


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from core.bootstrap import build_services
    from core.service.reconcile import reconcile
    from imggo_cli.local import start_local

    local = start_local()
    services = build_services(local.settings)
    try:
        print(json.dumps(reconcile(services).as_dict()))
    finally:
        services.close()
        local.close()
    return 0


def _cmd_simulator(args: argparse.Namespace) -> int:
    try:
        from imggo_simulator import SimulatorConfig, serve_forever
    except ImportError as exc:
        raise _UserError(
            "the simulator needs the `local` extra: pip install 'imggo-functions[local]'"
        ) from exc
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(SimulatorConfig(ingest_latency_s=args.latency), args.host, args.port)
    return 0


class _UserError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = code


COMMANDS = {
    "serve": _cmd_serve,
    "ingest": _cmd_ingest,
    "jobs": _cmd_jobs,
    "patterns": _cmd_patterns,
    "reconcile": _cmd_reconcile,
    "simulator": _cmd_simulator,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except _UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:  # configuration mistakes (a bad store URL, a bad env value)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
