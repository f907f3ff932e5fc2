"""`imggo-fn` command line. Every user mistake ends with one `error:` line and an exit
code (imggo_cli.errors), never a traceback. Commands import what they need when they
run, so `imggo-fn --help` and `jobs list` start quickly."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from core.ports import ImageApi, ImageApiError
from imggo_cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED_ITEMS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    UserError,
)

if TYPE_CHECKING:
    from imggo_cli.ingest import IngestSummary, Input

# `ingest` without --wait: until every image is finished. A month stands for "no bound"
# (a finite one: thread waits take no infinity).
UNBOUNDED_WAIT_S = 30 * 24 * 3600.0


class CliParser(argparse.ArgumentParser):
    """argparse, with its mistakes as one line (not usage + error) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0 picks one)")
    return port


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from core import __version__

        print(f"imggo-fn {__version__}")
        parser.exit()


def _parser() -> CliParser:
    parser = CliParser(
        prog="imggo-fn", description="Send images to ImgGo and keep every job's result."
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the HTTP API on 127.0.0.1")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port_number, default=8080, help="0 picks a free port")
    serve.add_argument(
        "--grace", type=float, default=10.0, help="seconds stopping waits for requests in flight"
    )

    ingest = sub.add_parser(
        "ingest",
        help="submit image files or URLs and wait for results (re-run to resume)",
        description="Submit images and wait for their results. The same images and "
        "pattern always map to the same jobs: re-running a stopped ingest resumes it.",
    )
    ingest.add_argument("inputs", nargs="+", metavar="PATH|URL")
    ingest.add_argument("--pattern", "-p", required=True, help="ImgGo pattern: id, name or title")
    ingest.add_argument("--out", "-o", type=Path, help="write results to FILE.jsonl or FILE.csv")
    ingest.add_argument(
        "--concurrency",
        "-c",
        type=int,
        help="calls to ImgGo in flight at once (default: IMGGO_FN_BATCH_CONCURRENCY)",
    )
    ingest.add_argument(
        "--wait",
        type=float,
        default=None,
        help="seconds the run may take to send the images and wait for their results "
        "(default: until every image is finished; what is not sent by then is left for a "
        "re-run, and Ctrl-C stops at any time)",
    )

    jobs = sub.add_parser("jobs", help="read stored jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_list = jobs_sub.add_parser("list", help="the newest jobs")
    jobs_list.add_argument("--status")
    jobs_list.add_argument("--limit", type=int, default=20)
    jobs_list.add_argument("--tenant", default="local")
    jobs_show = jobs_sub.add_parser("show", help="one job as JSON")
    jobs_show.add_argument("job_id", help="the job id, or any prefix naming one job")
    jobs_show.add_argument("--tenant", default="local")

    patterns = sub.add_parser("patterns", help="ImgGo patterns")
    patterns.add_argument("patterns_command", choices=["list"])

    sub.add_parser("reconcile", help="refresh stale jobs once (what the schedule runs)")

    # Its options belong to the simulator (imggo_simulator.__main__), parsed there.
    sub.add_parser(
        "simulator",
        add_help=False,
        help="run the ImgGo simulator on its own (imggo-fn simulator --help)",
    )
    return parser


def check_imggo(imggo: ImageApi, base_url: str) -> list[dict[str, Any]]:
    """Fail fast, before any work, when ImgGo is unreachable or refuses the key.
    Returns its patterns."""
    try:
        imggo.ping()
    except ImageApiError as exc:
        raise UserError(
            f"cannot reach ImgGo at {base_url}: {exc.message}", EXIT_UNREACHABLE
        ) from exc
    try:
        return imggo.list_patterns()
    except ImageApiError as exc:
        if exc.status in (401, 403):
            raise UserError("ImgGo refused the API key (check IMGGO_API_KEY)") from exc
        raise UserError(f"ImgGo answered: {exc.message}", EXIT_UNREACHABLE) from exc


def _cmd_serve(args: argparse.Namespace) -> int:
    from imggo_cli.serve import run_serve

    return run_serve(args.host, args.port, grace_s=args.grace)


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """While inside, Ctrl-C sets the event (the work stops after the calls in flight);
    a second Ctrl-C quits at once."""
    stop = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        # os.write, not print: this may run in the middle of another write to stderr.
        if stop.is_set():
            os.write(2, b"\nstopped at once; the calls in flight were abandoned\n")
            os._exit(EXIT_INTERRUPTED)  # exiting normally would join the worker threads
        stop.set()
        os.write(2, b"\nstopping after the calls in flight (Ctrl-C again to quit at once)\n")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from imggo_cli.ingest import read_inputs
    from imggo_cli.local import local_settings
    from imggo_cli.results import ResultsFile

    # Every mistake is found before anything starts: files, --out, the settings.
    inputs = read_inputs(args.inputs)
    concurrency = args.concurrency
    if concurrency is None:
        concurrency = local_settings().batch_concurrency
    if concurrency < 1:
        raise UserError("--concurrency (or IMGGO_FN_BATCH_CONCURRENCY) must be at least 1")
    if args.wait is not None and args.wait < 0:
        raise UserError("--wait must not be negative")
    results = ResultsFile(args.out) if args.out else None
    try:
        summary = _ingest(args, inputs, concurrency)
    except BaseException:
        if results is not None:
            results.discard()
        raise
    if results is not None:
        if summary.stopped:  # a results file is for a finished run
            results.discard()
        else:
            results.write(summary.records)
            print(f"results written to {args.out}")
    line = f"{summary.succeeded} succeeded, {summary.failed} failed"
    if summary.unfinished:
        line += f", {summary.unfinished} not finished"
    print(line)
    if summary.stopped:
        print(
            f"stopped: {summary.sent} of {len(summary.records)} images were sent to ImgGo. Run the "
            "same command again to resume (finished jobs are reported, the rest are sent)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if summary.unsent:
        print(
            f"{summary.unsent} of {len(summary.records)} images were not sent to ImgGo before "
            f"--wait ({args.wait or 0:g} s) ran out: run the same command again to send them "
            "(nothing is sent twice), or give a longer --wait",
            file=sys.stderr,
        )
    elif summary.unfinished:
        print(
            "some jobs are not finished: run the same command again to pick them up "
            "(nothing is sent twice)",
            file=sys.stderr,
        )
    return EXIT_FAILED_ITEMS if summary.failed or summary.unfinished else EXIT_OK


def _ingest(args: argparse.Namespace, inputs: list[Input], concurrency: int) -> IngestSummary:
    from core.bootstrap import build_services
    from imggo_cli.ingest import ingest
    from imggo_cli.local import start_local
    from imggo_cli.patterns import catalog, resolve

    local = start_local()
    try:
        services = build_services(local.settings)
        try:
            listed = check_imggo(services.imggo, local.settings.imggo_base_url)
            pattern = resolve(catalog(listed), args.pattern)  # before any work
            print(local.describe_imggo(), flush=True)
            with _interruptible() as stop:
                return ingest(
                    services,
                    inputs,
                    pattern=pattern,
                    concurrency=concurrency,
                    # No --wait: the plan sets the pace, the ETA says how long.
                    wait_s=UNBOUNDED_WAIT_S if args.wait is None else args.wait,
                    simulated=local.simulated,
                    stop=stop,
                )
        finally:
            services.close()
    finally:
        local.close()


def _cmd_jobs(args: argparse.Namespace) -> int:
    from core.adapters.stores import open_store
    from imggo_cli import jobs
    from imggo_cli.local import local_settings

    status = jobs.parse_status(getattr(args, "status", None))
    store = open_store(local_settings().store_url)
    if args.jobs_command == "show":
        jobs.show(store, args.tenant, args.job_id)
    else:
        jobs.list_jobs(store, args.tenant, status, args.limit)
    return EXIT_OK


def _cmd_patterns(args: argparse.Namespace) -> int:
    from core.bootstrap import open_imggo
    from imggo_cli.local import start_local
    from imggo_cli.output import table
    from imggo_cli.patterns import catalog

    local = start_local()
    try:
        listed = check_imggo(open_imggo(local.settings), local.settings.imggo_base_url)
    finally:
        local.close()
    rows = [(p.short_name, p.title, p.format, p.id) for p in catalog(listed)]
    table(("--pattern", "title", "format", "id"), rows, title="ImgGo patterns", shrink=("title",))
    return EXIT_OK


def _cmd_reconcile(args: argparse.Namespace) -> int:
    import json

    from core.bootstrap import build_services
    from core.service.reconcile import reconcile
    from imggo_cli.local import start_local

    local = start_local()
    try:
        services = build_services(local.settings)
        try:
            check_imggo(services.imggo, local.settings.imggo_base_url)
            print(json.dumps(reconcile(services).as_dict()))
        finally:
            services.close()
    finally:
        local.close()
    return EXIT_OK


def _cmd_simulator(args: argparse.Namespace, extra: list[str]) -> int:
    from imggo_simulator.__main__ import build_parser, config_from_args, run

    sim_args = build_parser("imggo-fn simulator", parser_class=CliParser).parse_args(extra)
    if sim_args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    try:
        run(config_from_args(sim_args), sim_args.host, sim_args.port)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {sim_args.host}:{sim_args.port}: {exc.strerror or exc}"
        ) from exc
    return EXIT_OK


COMMANDS = {
    "serve": _cmd_serve,
    "ingest": _cmd_ingest,
    "jobs": _cmd_jobs,
    "patterns": _cmd_patterns,
    "reconcile": _cmd_reconcile,
}


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "simulator":
        return _cmd_simulator(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return COMMANDS[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return code
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:  # configuration mistakes (a bad store URL, a bad env value)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our output stopped (`| head`): not a failure worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
