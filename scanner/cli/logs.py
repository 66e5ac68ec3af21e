"""Logging of the long-running commands (`serve`, `worker`): one line per event, text or JSON.

The Azure SDKs log every HTTP request and response with its headers at INFO, several lines each; that is their
debugging output, not the service's. They stay at WARNING unless `--verbose`.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers whose INFO is request-by-request noise.
NOISY = ("azure", "urllib3")  # uvicorn's access log has its own switch, `serve --access-log`


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, folded into one string)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="the Azure SDKs' request logs too (at INFO)")
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="one line per event")


def configure_logging(args: argparse.Namespace) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if args.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.INFO if args.verbose else logging.WARNING)
