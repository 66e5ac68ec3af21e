"""`acrguard worker`: drains the scan queue and exits. In Azure this is the scan job's entry point: a
Container Apps job scaled on the queue's length (KEDA `azure-queue`) runs one worker per execution, so the
function app itself never fetches or parses an image. `acrguard serve` runs the same loop in threads."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from scanner.cli.logs import add_logging_arguments, configure_logging
from scanner.cli.options import EXIT_ERROR, EXIT_OK
from scanner.model.settings import Settings, env_name


def add_worker_parser(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="process queued scan requests until the queue is empty (the container job's entry point)",
        description="Receives scan requests from ACRGUARD_QUEUE, runs each in the sandboxed job, stores inventory "
        "and findings in ACRGUARD_STORE, matching against ACRGUARD_DB. A failed scan is released for a retry with "
        "backoff (ACRGUARD_RETRY_*), dead-lettered with its error after ACRGUARD_MAX_ATTEMPTS.",
    )
    add_scan_arguments(
        worker,
        store_help="findings store path or postgresql:// URL (default: ACRGUARD_STORE)",
        queue_help="queue path, Storage connection string or queue service URL (default: ACRGUARD_QUEUE)",
    )
    worker.add_argument("--max-messages", type=int, default=0, help="stop after this many (default: until empty)")


def add_scan_arguments(parser: Any, *, store_help: str, queue_help: str, insecure_help: str = "") -> None:
    """The options of every process that runs scans from the queue (`worker`, `serve`)."""
    add_logging_arguments(parser)
    parser.add_argument("--store", help=store_help)
    parser.add_argument("--queue", help=queue_help)
    parser.add_argument("--db", help="vulnerability database (default: ACRGUARD_DB or the standard location)")
    parser.add_argument("--runner", choices=["bubblewrap", "none"], default="bubblewrap", help="sandbox for scans")
    parser.add_argument(
        "--insecure-registries",
        default="",
        metavar="HOST,...",
        help=insecure_help or "registries spoken to over HTTP",
    )


def insecure_hosts(text: str) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in text.split(",") if h.strip())


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(args)
    if args.max_messages < 0:
        sys.stderr.write(f"acrguard: --max-messages must be 0 or more, not {args.max_messages}\n")
        return EXIT_ERROR
    # The options win over the settings; the sandboxed fetch speaks plain HTTP only to --insecure-registries.
    settings = replace(
        settings,
        store=args.store.strip() if args.store else settings.store,
        queue=args.queue.strip() if args.queue else settings.queue,
        db=args.db or settings.db,
        insecure_registries=insecure_hosts(args.insecure_registries),
    )
    for name in ("store", "queue"):
        if not getattr(settings, name):
            sys.stderr.write(f"acrguard: worker: set --{name} or {env_name(name)}\n")
            return EXIT_ERROR
    processed, failed = drain_until_empty(args.runner, settings, args.max_messages)
    sys.stderr.write(f"acrguard: worker: {processed} scanned, {failed} failed (retried or dead-lettered)\n")
    return EXIT_OK


def drain_until_empty(runner: str, settings: Settings, max_messages: int) -> tuple[int, int]:
    from scanner.sandbox.scratch import sweep_abandoned
    from scanner.service.config import clients
    from scanner.service.sandboxed import make_sandboxed_fetch

    clients.configure(settings)
    fetch = make_sandboxed_fetch(runner, settings)
    sweep_abandoned()  # the scratch layouts of scans killed with an earlier worker or serve
    processed = failed = 0
    try:
        while max_messages == 0 or processed + failed < max_messages:
            batch = 16 if max_messages == 0 else min(16, max_messages - processed - failed)
            counts = clients.drain(fetch, max_messages=batch)
            processed, failed = processed + counts.processed, failed + counts.failed
            if counts.processed + counts.failed == 0:
                break  # nothing visible: done (messages waiting for a retry are a later execution's)
    finally:
        clients.close()
    return processed, failed
