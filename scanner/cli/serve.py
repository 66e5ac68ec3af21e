"""`acrguard serve`: the function app (HTTP API, Event Grid webhook, timers, queue worker) in one local
process, for machines without the Azure Functions Core Tools. See `scanner.localhost.serve`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from scanner.cli.logs import configure_logging
from scanner.cli.options import EXIT_ERROR, EXIT_OK
from scanner.cli.worker import add_scan_arguments, insecure_hosts
from scanner.model.errors import AcrguardError
from scanner.model.settings import Settings

if TYPE_CHECKING:
    from scanner.localhost.serve import ServeConfig

DEFAULT_DIR = Path.home() / ".cache" / "acrguard" / "serve"


def tcp_port(text: str) -> int:
    """A TCP port as given on the command line: 1-65535, or 0 for any free port (serve prints the one it got). The
    OS would take a larger number modulo 65536 and listen somewhere else than asked."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535, or 0: any free port)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535, or 0: any free port)")
    return port


def add_serve_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the function app locally: HTTP API, Event Grid webhook, timers and the queue worker",
        description="Serves the app's HTTP functions under /api/ (uvicorn), the Event Grid webhook at "
        "/runtime/webhooks/eventgrid?functionName=acr_events, the timers and queue workers running the sandboxed "
        "job; SIGINT/SIGTERM stop it gracefully. Every request that causes work needs a credential: "
        "ACRGUARD_API_KEY (x-api-key) or ACRGUARD_API_TOKEN (Authorization: Bearer); with neither set, serve "
        "generates an API key, prints it once and keeps it (0600) in its data directory. Set "
        "ACRGUARD_FUNCTION_KEY to require a function key (?code= or x-functions-key) as Azure does too.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port", type=tcp_port, default=7071, help="1-65535 (0: any free port), default 7071, the Functions host's"
    )
    add_scan_arguments(
        serve,
        store_help=f"findings store path or postgresql:// URL (default {DEFAULT_DIR}/store.sqlite)",
        queue_help=f"queue path, URL or Storage connection string (default {DEFAULT_DIR}/queue.sqlite)",
        insecure_help="registries spoken to over HTTP by the workers and the manual-scan endpoint (in place of "
        "ACRGUARD_INSECURE_REGISTRIES)",
    )
    serve.add_argument("--rescan-schedule", help="six-field NCRONTAB for the rescan timer (default: the app's)")
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every HTTP request (uvicorn.access at INFO); off by default, one line per request",
    )
    serve.add_argument(
        "--workers", type=_positive, default=1, metavar="N", help="queue worker threads, one scan each (default 1)"
    )


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def data_dir(store: str | None) -> Path:
    """Where serve keeps what it makes (its generated key): beside a SQLite store, else DEFAULT_DIR."""
    if store and not store.startswith(("postgresql://", "postgres://")):
        path = store.removeprefix("sqlite://")[1:] if store.startswith("sqlite://") else store
        return Path(path).expanduser().resolve().parent
    return DEFAULT_DIR


def serve_config(args: argparse.Namespace, settings: Settings, announce: Callable[[str], None] = print) -> ServeConfig:
    """What serve runs with: the settings with its options applied. The store and queue are serve's own
    (`--store`, `--queue`, else under DEFAULT_DIR), and the manual-scan endpoint, which reaches registries
    itself, speaks plain HTTP to the `--insecure-registries` as the workers do. With neither API key nor
    token configured, serve's own key (`scanner.localhost.keyfile`) is the API key; `announce` gets the one
    line saying so, with the key when it was just made."""
    from scanner.localhost.keyfile import load_or_create
    from scanner.localhost.serve import ServeConfig, parse_ncrontab

    schedules = {}
    if args.rescan_schedule:
        parse_ncrontab(args.rescan_schedule)  # a bad schedule is a usage error before anything starts
        schedules["rescan"] = args.rescan_schedule
    if not args.store or not args.queue:
        DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
    handlers = replace(
        settings,
        store=args.store or str(DEFAULT_DIR / "store.sqlite"),
        queue=args.queue or str(DEFAULT_DIR / "queue.sqlite"),
        db=args.db or settings.db,
        insecure_registries=insecure_hosts(args.insecure_registries),
    )
    if not (handlers.api_key or handlers.api_token):
        made = load_or_create(data_dir(args.store))
        handlers = replace(handlers, api_key=made.key)
        if made.new:
            announce(
                f"acrguard serve: no ACRGUARD_API_KEY or ACRGUARD_API_TOKEN set; generated an API key, send it as "
                f"x-api-key: {made.key} (kept in {made.path}, mode 600, and used again on the next start)"
            )
        else:
            announce(f"acrguard serve: API key (x-api-key) from {made.path}")
    return ServeConfig(
        host=args.host,
        port=args.port,
        runner=args.runner,
        schedules=schedules,
        settings=handlers,
        workers=args.workers,
        access_log=args.access_log,
    )


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from scanner.localhost.serve import serve

    configure_logging(args)
    try:
        config = serve_config(args, settings, announce=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, AcrguardError) as err:
        sys.stderr.write(f"acrguard: {err}\n")
        return EXIT_ERROR
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("serve: signal %d, stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        serve(config, stop)
    except AcrguardError as err:
        sys.stderr.write(f"acrguard: {err}\n")
        return EXIT_ERROR
    return EXIT_OK
