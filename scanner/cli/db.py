"""`acrguard db import|update|info`: the vulnerability database commands (wired into scanner.cli.main).

Errors are `AcrguardError`s (`FeedError`), which the CLI prints as one line with exit code 2. Per-record
problems are not errors: they are counted, and the first few named on stderr as warnings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

from scanner.cli.progress import feed_progress
from scanner.model.errors import counted
from scanner.model.settings import Settings, env_name
from scanner.vulndb.location import scan_db_path, writable_db_path
from scanner.vulndb.update import (
    DEFAULT_BASE_URL,
    DEFAULT_ECOSYSTEMS,
    DEFAULT_SIGNAL_FEEDS,
    SIGNAL_FEEDS,
    VENDOR_FEEDS,
    FeedOutcome,
    SignalUrls,
    update,
)

if TYPE_CHECKING:  # the importers are loaded when a db command runs, not by every `acrguard` start
    from scanner.vulndb.osv_import import ImportResult

EXIT_OK, EXIT_ERROR = 0, 2
PROGRESS_HELP = "a progress display on stderr (auto: when it is a terminal)"
DB_HELP = "database file (default: $ACRGUARD_DB, else ~/.cache/acrguard/vulndb.sqlite)"


def add_db_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Adds `db` with its subcommands to the top-level subparsers of `acrguard`."""
    db = subparsers.add_parser("db", help="manage the vulnerability database (OSV, secdb, ALAS, ELSA)")
    commands = db.add_subparsers(dest="db_command", required=True, metavar="{import,update,info}")

    imp = commands.add_parser("import", help="import OSV records, secdb files, ALAS updateinfo and ELSA OVAL")
    imp.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="directory tree of OSV JSON/YAML, secdb JSON, updateinfo.xml(.gz) or OVAL .xml(.bz2) files, a zip like "
        "osv.dev's all.zip, a file, or an http(s) URL; also CISA's KEV catalog (JSON) or FIRST's EPSS scores "
        "(CSV, .csv.gz), each replacing the one held",
    )
    imp.add_argument("--db", help=DB_HELP)
    imp.add_argument("--progress", choices=["auto", "always", "never"], default="auto", help=PROGRESS_HELP)
    imp.add_argument(
        "--selection",
        action="store_true",
        help="the sources hold only a selection of their feeds: finding nothing in them proves nothing",
    )

    upd = commands.add_parser(
        "update",
        help="download the osv.dev ecosystem archives, vendor feeds (ALAS, ELSA, Wolfi), KEV and EPSS that changed",
    )
    upd.add_argument("--db", help=DB_HELP)
    upd.add_argument("--progress", choices=["auto", "always", "never"], default="auto", help=PROGRESS_HELP)
    upd.add_argument(
        "--ecosystem",
        action="extend",
        nargs="+",
        metavar="NAME",
        help=f"osv.dev ecosystems to update (default: {', '.join(DEFAULT_ECOSYSTEMS)})",
    )
    upd.add_argument(
        "--feed",
        action="extend",
        nargs="+",
        metavar="NAME",
        choices=[*(f.name for f in VENDOR_FEEDS), *SIGNAL_FEEDS],
        help=f"feeds to update: vendor feeds (default: {', '.join(f.name for f in VENDOR_FEEDS)}) and CVE feeds "
        f"(default: {', '.join(DEFAULT_SIGNAL_FEEDS)}; `cve`, the CVE list's bulk archive of several hundred MB, "
        "only when named); with --ecosystem alone, none; with --feed alone, no osv.dev archive",
    )
    upd.add_argument(
        "--base-url", help=f"archive server (default: ${env_name('osv_base_url')}, else {DEFAULT_BASE_URL})"
    )

    info = commands.add_parser("info", help="list the sources and records of the database a scan would use")
    info.add_argument("--db", help="database file (default: as a scan chooses, the bundled snapshot last)")
    info.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")


def run_db(args: argparse.Namespace, settings: Settings) -> int:
    db = args.db or settings.db  # --db, else $ACRGUARD_DB
    if args.db_command == "import":
        return _run_import(args, db)
    if args.db_command == "update":
        urls = SignalUrls(settings.kev_url, settings.epss_url, settings.cve_release_url)
        return _run_update(args, db, args.base_url or settings.osv_base_url, urls)
    return _run_info(db, args.format, settings.feed_max_age_days)


def _warn(result: ImportResult) -> None:
    for warning in result.warnings:
        sys.stderr.write(f"acrguard: warning: {' '.join(warning.split())}\n")
    if result.more_warnings:
        sys.stderr.write(f"acrguard: warning: {result.name}: {result.more_warnings} more not shown\n")


def _summary(result: ImportResult) -> str:
    extra = []
    if result.kept:
        extra.append(f"{result.kept:,} older than held")
    if result.removed:
        extra.append(f"{result.removed:,} removed")
    tail = f" ({', '.join(extra)})" if extra else ""
    return (
        f"{result.name}: {counted(result.records, 'record')}, {result.skipped:,} skipped{tail}, "
        f"{result.seconds:.1f} s ({result.records / max(result.seconds, 1e-9):,.0f} records/s)"
    )


def _enabled(args: argparse.Namespace) -> bool | None:
    return {"auto": None, "always": True, "never": False}[getattr(args, "progress", "never")]


def _run_import(args: argparse.Namespace, db: str | None) -> int:
    from scanner.vulndb.osv_import import import_sources

    path = writable_db_path(db)
    empty = []
    with feed_progress(_enabled(args)) as shown:
        count = len(args.sources)
        results = import_sources(
            path,
            args.sources,
            selection=args.selection,
            starting=lambda index, where: shown.status(f"importing {index + 1}/{count}: {where}"),
        )
    for result in results:
        _warn(result)
        sys.stdout.write(_summary(result) + "\n")
        if not (result.records or result.kept or result.removed):
            empty.append(result)
    sys.stdout.write(f"database: {path}\n")
    for result in empty:  # a source that held nothing importable is a mistake, not a success
        why = f"{counted(result.skipped, 'file')} skipped, see the warnings above" if result.skipped else "empty"
        sys.stderr.write(f"acrguard: {result.name}: no advisory, CVE, KEV or EPSS records in it ({why})\n")
    return EXIT_ERROR if empty else EXIT_OK


def _run_update(args: argparse.Namespace, db: str | None, base_url: str | None, urls: SignalUrls) -> int:
    path = writable_db_path(db)

    def progress(outcome: FeedOutcome) -> None:
        shown.status(f"updated {outcome.name}; next feed")
        if outcome.result is None:
            sys.stdout.write(f"{outcome.name}: unchanged\n")
        else:
            _warn(outcome.result)
            sys.stdout.write(f"{_summary(outcome.result)}, {outcome.downloaded_bytes / 1e6:,.1f} MB downloaded\n")
        sys.stdout.flush()

    feeds = [f for f in VENDOR_FEEDS if f.name in args.feed] if args.feed else None
    signals = [name for name in SIGNAL_FEEDS if name in args.feed] if args.feed else None
    with feed_progress(_enabled(args)) as shown:
        shown.status("db update: checking the feeds")
        report = update(
            path, args.ecosystem, base=base_url, feeds=feeds, signals=signals, signal_urls=urls, progress=progress
        )
    sys.stdout.write(f"database: {path} ({'updated' if report.replaced else 'unchanged'})\n")
    return EXIT_OK


def stale_feeds(sources: list[dict[str, Any]], max_age_days: int, now: dt.datetime) -> list[dict[str, Any]]:
    """The sources whose feed date is more than `max_age_days` before `now` (none when it is 0 or less)."""
    if max_age_days <= 0:
        return []
    stale = []
    for source in sources:
        if not source["feed_date"]:
            continue
        date = dt.datetime.strptime(source["feed_date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        age = (now - date).days
        if age > max_age_days:
            stale.append({"source": source["name"], "feed_date": source["feed_date"], "age_days": age})
    return stale


def _run_info(chosen: str | None, output: str, max_age_days: int) -> int:
    from scanner.vulndb.sqlite_db import SqliteVulnDatabase

    with SqliteVulnDatabase.open(scan_db_path(chosen)) as db:
        facts = db.describe()
    stale = stale_feeds(facts["sources"], max_age_days, dt.datetime.now(dt.UTC))
    for feed in stale:
        sys.stderr.write(
            f"acrguard: warning: feed {feed['source']} is dated {feed['feed_date']}, {feed['age_days']:,} days "
            f"old (over {env_name('feed_max_age_days')}={max_age_days}): run `acrguard db update`\n"
        )
    if output == "json":
        document = {**facts, "feed_max_age_days": max_age_days, "stale_feeds": stale}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return EXIT_OK
    sys.stdout.write("\n".join(_info_table(facts)) + "\n")
    return EXIT_OK


CELL_CHARS = 100  # an ecosystem string is the feed's: as long as it likes


def _cell(text: str) -> str:
    """Feed text made safe for a terminal: control characters shown as `?`, bounded in length."""
    shown = "".join(c if c.isprintable() else "?" for c in text[: CELL_CHARS + 1])
    return shown if len(shown) <= CELL_CHARS else shown[: CELL_CHARS - 1] + "…"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], right: frozenset[int]) -> list[str]:
    """Columns as wide as their widest cell, numbers (the `right` columns) aligned right, the last one ragged."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            cell.rjust(width) if i in right else (cell if i == len(cells) - 1 else cell.ljust(width))
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts)

    return [line(header), *(line(row) for row in rows)]


def _info_table(facts: dict[str, Any]) -> list[str]:
    sources: list[dict[str, Any]] = facts["sources"]
    out = [f"database: {facts['path']} (format {facts['format_version']})"]
    if sources:
        out += _table(
            ("SOURCE", "IMPORTED AT", "FEED DATE", "RECORDS", "SKIPPED", "KIND"),
            [
                (
                    s["name"],
                    s["imported_at"],
                    s["feed_date"] or "-",
                    f"{s['record_count']:,}",
                    f"{s['skipped_count']:,}",
                    s["kind"] + (" (selection of its feed)" if s["selection"] else ""),
                )
                for s in sources
            ],
            frozenset({3, 4}),
        )
    ecosystems: list[dict[str, Any]] = facts["ecosystems"]
    if ecosystems:
        out.append("")
        out += _table(
            ("ECOSYSTEM", "RECORDS", "FEED DATE", "SOURCES"),
            [
                (
                    _cell(e["ecosystem"]),
                    f"{e['records']:,}",
                    e["feed_date"] or "-",
                    ", ".join(e["sources"]) + (" (selection)" if e["selection"] else ""),
                )
                for e in ecosystems
            ],
            frozenset({1}),
        )
        out.append("")
    kev, epss = facts.get("kev") or {}, facts.get("epss") or {}
    if kev.get("entries"):
        out.append(
            f"KEV catalog: version {kev['catalog_version']}, released {kev['date_released']}, "
            f"{kev['entries']:,} entries (imported {kev['imported_at']})"
        )
    if epss.get("scores"):
        out.append(
            f"EPSS scores: score date {epss['score_date']} (model {epss['model_version']}), "
            f"{epss['scores']:,} scores (imported {epss['imported_at']})"
        )
    out.append(
        f"total: {facts['total_records']:,} records ({facts['withdrawn_records']:,} withdrawn) "
        f"from {len(sources)} source{'s' if len(sources) != 1 else ''}"
    )
    return out
