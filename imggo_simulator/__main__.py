"""`python -m imggo_simulator --port 8787`: run the ImgGo API simulator in the foreground.

`imggo-fn simulator` is the same command: it builds its parser and runs it with the
functions here, so both accept the same options and print the same banner.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys

from .callers import key_id
from .config import DEMO_API_KEY, SimulatorConfig
from .patterns import BUILTIN_PATTERN_IDS
from .server import SimulatorServer, serve_forever


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _seconds_or_range(text: str) -> tuple[float, float]:
    """`0.2` (every job) or `0.5-2` (each job a uniform random time in [0.5, 2])."""
    try:
        low = high = float(text)  # first: "1e-3" is one number, not a range
    except ValueError:
        low_text, _, high_text = text.partition("-")
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not SECONDS or MIN-MAX (e.g. 0.05 or 0.5-2)"
            ) from None
    if not (math.isfinite(low) and math.isfinite(high)) or not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= MIN <= MAX, both finite")
    return low, high


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0 picks one)")
    return port


def build_parser(
    prog: str = "python -m imggo_simulator",
    *,
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser = parser_class(
        prog=prog,
        description="ImgGo API simulator: a local test double of the ImgGo API.",
        epilog="Counts per API key for benchmarks and tests: GET <url>/_sim/stats (outside"
        " /api, no key needed); POST <url>/_sim/stats/reset zeroes them.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (keep it loopback)")
    parser.add_argument("--port", type=_port, default=8787, help="port; 0 picks a free one")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accepted Bearer key (repeatable; default {DEMO_API_KEY})",
    )
    parser.add_argument(
        "--processing-s",
        "--latency",
        dest="processing_s",
        type=_seconds_or_range,
        default=(SimulatorConfig.processing_s, SimulatorConfig.processing_s),
        metavar="SECONDS|MIN-MAX",
        help="how long each job is queued + running: one value, or a range such as 0.5-2"
        f" for a uniform random time per job (default {SimulatorConfig.processing_s})",
    )
    parser.add_argument(
        "--ingest-latency-s",
        type=float,
        default=0.0,
        help="extra time every ingest request takes before it is answered",
    )
    parser.add_argument(
        "--rate-limit",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="requests a minute per API key, across all its clients (fixed window); 0 = off",
    )
    parser.add_argument("--error-rate", type=_rate, default=0.0)
    parser.add_argument("--rate-limited-rate", type=_rate, default=0.0)
    parser.add_argument("--timeout-rate", type=_rate, default=0.0)
    parser.add_argument("--timeout-sleep-s", type=float, default=2.0)
    parser.add_argument("--accepted-then-error-rate", type=_rate, default=0.0)
    parser.add_argument("--webhook-drop-rate", type=_rate, default=0.0)
    parser.add_argument("--fail-rate", type=_rate, default=0.0)
    parser.add_argument(
        "--allow-host",
        action="append",
        dest="allow_hosts",
        metavar="HOST",
        help="host image_url fetches and webhooks may reach (repeatable; default loopback)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for the chaos and processing-time RNGs"
    )
    parser.add_argument(
        "--job-retention-s",
        type=float,
        default=SimulatorConfig.job_retention_s,
        help="finished jobs are forgotten (404) after this many seconds",
    )
    parser.add_argument(
        "--max-finished-jobs",
        type=int,
        default=SimulatorConfig.max_finished_jobs,
        help="finished jobs kept at most (the oldest finished are forgotten first)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    processing_min_s, processing_max_s = args.processing_s
    config = SimulatorConfig(
        ingest_latency_s=args.ingest_latency_s,
        processing_s=processing_min_s,
        processing_max_s=processing_max_s if processing_max_s > processing_min_s else None,
        rate_limit_per_minute=args.rate_limit,
        error_rate=args.error_rate,
        rate_limited_rate=args.rate_limited_rate,
        timeout_rate=args.timeout_rate,
        timeout_sleep_s=args.timeout_sleep_s,
        accepted_then_error_rate=args.accepted_then_error_rate,
        webhook_drop_rate=args.webhook_drop_rate,
        fail_rate=args.fail_rate,
        seed=args.seed,
        job_retention_s=args.job_retention_s,
        max_finished_jobs=args.max_finished_jobs,
    )
    if args.api_keys:
        config.api_keys = frozenset(args.api_keys)
    if args.allow_hosts:
        config.fetch_allow_hosts = frozenset(args.allow_hosts)
    return config


def print_banner(server: SimulatorServer, config: SimulatorConfig) -> None:
    key = DEMO_API_KEY if DEMO_API_KEY in config.api_keys else sorted(config.api_keys)[0]
    print(f"ImgGo simulator listening on {server.url}  (API under {server.url}/api)")
    print(f"API key: {key}")
    print("Patterns: " + ", ".join(f"{a}={i}" for a, i in BUILTIN_PATTERN_IDS.items()))
    print(f"Use it: IMGGO_BASE_URL={server.url} IMGGO_API_KEY={key} imggo-fn ingest ...")
    print(f"Counts: {server.url}/_sim/stats  (that key is {key_id(key)} there)")
    print("Ctrl-C to stop.", flush=True)


def run(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM, banner first. Raises OSError when it cannot listen."""
    serve_forever(config, host, port, ready=lambda server: print_banner(server, config))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        run(config_from_args(args), args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
