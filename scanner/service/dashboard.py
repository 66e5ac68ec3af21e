"""The dashboard's pages as data: what each page shows, read from the store's read ports and the
vulnerability database, with the URL query checked here (a refusal is a `BadParameter` naming it).

Every function returns a plain dict the templates render (`scanner.service.dashboard_pages`); nothing here
knows HTML. Fleet counts come from the store's aggregate queries (`Lookups.health_counts`, `finding_counts`,
`finding_spans`, `widespread_vulnerabilities`, `scan_counts`), so a page costs a few grouped queries
whatever the number of images.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from scanner.assess.risk import risk_order
from scanner.model.types import FIX_STATUSES, HEALTHS, SEVERITY_ORDER, Finding
from scanner.service.lookups import BadParameter, NotFound, Refresh, refreshed
from scanner.service.rule_admin import RuleView, rule_view_document
from scanner.store.errors import CursorError
from scanner.store.ports import Lookups
from scanner.store.records import HealthCount, ScanRecord, StoredFinding

Query = Mapping[str, str]
# The healths the overview counts apart; the rest (Unsupported, NotApplicable) add up as "Other".
COUNTED_HEALTHS = ("Unhealthy", "Healthy", "NotAssessed", "Incomplete")
FINDING_SORTS = ("risk", "severity", "package", "first_seen")
ORIGIN_FILTERS = ("base", "own")
TREND_DAYS = (7, 30, 90)
TOP_RISKS = 10
# Vulnerabilities whose risk the overview compares for its top list: the most severe and widespread first.
_RISK_CANDIDATES = 60
_MAX_FILTER = 200  # characters of a free-text filter
PAGE = 100  # images a page lists


@dataclass(frozen=True)
class Feeds:
    """What the vulnerability database says about itself (`VulnDatabase.describe()`), read by the caller."""

    describe: Callable[[], dict[str, Any]]


# --- parameters ------------------------------------------------------------------------------------------
def choice(query: Query, name: str, allowed: tuple[str, ...], default: str = "") -> str:
    value = query.get(name, "")
    if not value:
        return default
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise BadParameter(name, f"expected one of {', '.join(allowed)}")


def text(query: Query, name: str) -> str:
    value = query.get(name, "").strip()
    if len(value) > _MAX_FILTER:
        raise BadParameter(name, f"at most {_MAX_FILTER} characters")
    return value


def number(query: Query, name: str, allowed: tuple[int, ...], default: int) -> int:
    value = query.get(name, "")
    if not value:
        return default
    if not value.isdigit() or int(value) not in allowed:
        raise BadParameter(name, f"expected one of {', '.join(map(str, allowed))}")
    return int(value)


def layer_index(query: Query) -> str:
    value = query.get("layer", "")
    if value and (not value.isdigit() or len(value) > 4):
        raise BadParameter("layer", "expected a layer's index (0 is the base)")
    return str(int(value)) if value else ""


# --- overview --------------------------------------------------------------------------------------------
def overview(
    store: Lookups, feeds: Feeds, query: Query, refresh: Refresh | None, now: datetime, cache_key: str = ""
) -> dict[str, Any]:
    """Registries and repositories with their images by health, findings by severity and fix, the top risks,
    scans of the last 24 hours, feed freshness and the findings trend. `registry` and `health` narrow the
    repository table; `days` picks the trend's span. With `cache_key` (the store's location) the fleet-wide
    figures are kept for `FLEET_SECONDS` in this process: each is a scan of a whole table."""
    registry = text(query, "registry")
    health = choice(query, "health", HEALTHS)
    days = number(query, "days", TREND_DAYS, 30)

    def fleet() -> dict[str, Any]:
        return {
            "health_counts": store.health_counts(),
            "severity": severity_totals(store),
            "top_risks": top_risks(store, refresh),
            "trend": trend(store, now, days),
            "as_of": now,
        }

    figures = _fleet_cached((cache_key, days), fleet) if cache_key else fleet()
    return {
        "filters": {"registry": registry, "health": health, "days": days},
        "registries": registries(figures["health_counts"], registry, health),
        "severity": figures["severity"],
        "top_risks": figures["top_risks"],
        "scans": scans_since(store, now - timedelta(hours=24)),
        "feeds": feed_freshness(feeds, now),
        "trend": figures["trend"],
        "as_of": figures["as_of"],
        "healths": COUNTED_HEALTHS,
        "all_healths": HEALTHS,
        "trend_days": TREND_DAYS,
    }


FLEET_SECONDS = 10.0
_FLEET: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}
_FLEET_LOCK = threading.Lock()


def _fleet_cached(key: tuple[str, int], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`compute()`, or what it gave for `key` less than `FLEET_SECONDS` ago."""
    with _FLEET_LOCK:
        kept = _FLEET.get(key)
    if kept is not None and time.monotonic() - kept[0] < FLEET_SECONDS:
        return kept[1]
    figures = compute()
    with _FLEET_LOCK:
        if len(_FLEET) > 64:  # a few stores and spans per process; never grows without bound
            _FLEET.clear()
        _FLEET[key] = (time.monotonic(), figures)
    return figures


def registries(counted: Sequence[HealthCount], registry: str, health: str) -> list[dict[str, Any]]:
    """Per registry: its repositories, each with its live images counted by health, and the registry's sums."""
    out: dict[str, dict[str, Any]] = {}
    repos: dict[tuple[str, str], dict[str, Any]] = {}
    for count in counted:
        if registry and count.registry != registry:
            continue
        entry = out.setdefault(count.registry, {"registry": count.registry, "counts": _zero(), "repositories": []})
        repo = repos.get((count.registry, count.repository))
        if repo is None:
            repo = {"repository": count.repository, "counts": _zero()}
            repos[(count.registry, count.repository)] = repo
            entry["repositories"].append(repo)
        bucket = _bucket(count.health)
        for counts in (entry["counts"], repo["counts"]):
            counts[bucket] += count.images
            counts["total"] += count.images
    for entry in out.values():
        if health:
            bucket = _bucket(health)
            entry["repositories"] = [r for r in entry["repositories"] if r["counts"][bucket]]
    return [out[name] for name in sorted(out)]


def _zero() -> dict[str, int]:
    return {name: 0 for name in (*COUNTED_HEALTHS, "Other", "total")}


def _bucket(health: str | None) -> str:
    if health is None:
        return "NotAssessed"  # no assessment yet: nothing was proved either way
    return health if health in COUNTED_HEALTHS else "Other"


def severity_totals(store: Lookups) -> dict[str, Any]:
    by_severity: dict[str, int] = dict.fromkeys(SEVERITY_ORDER, 0)
    fixable = total = 0
    for count in store.finding_counts():
        by_severity[count.severity] = by_severity.get(count.severity, 0) + count.findings
        total += count.findings
        fixable += count.findings if count.fix_status == "fixed" else 0
    share = round(100 * fixable / total) if total else 0
    return {"by_severity": by_severity, "total": total, "fixable": fixable, "fixable_share": share}


def top_risks(store: Lookups, refresh: Refresh | None) -> list[dict[str, Any]]:
    """The riskiest vulnerabilities across the fleet, with today's KEV and EPSS (`refresh`)."""
    spread = store.widespread_vulnerabilities(_RISK_CANDIDATES)
    current = refreshed([s.finding for s in spread], refresh)
    ranked = sorted(
        zip(spread, [c.finding for c in current], strict=True),
        key=lambda pair: (risk_order(pair[1]), -pair[0].digests, pair[0].vuln_id),
    )
    return [{"id": s.vuln_id, "digests": s.digests, "finding": f} for s, f in ranked[:TOP_RISKS]]


def scans_since(store: Lookups, since: datetime) -> dict[str, Any]:
    counts = {c.status: c.scans for c in store.scan_counts(since)}
    return {
        "since": since,
        "succeeded": counts.get("succeeded", 0),
        "failed": counts.get("failed", 0),
        "running": counts.get("running", 0),
        "total": sum(counts.values()),
        "failures": store.recent_scans(since, "failed", 10),
    }


def feed_freshness(feeds: Feeds, now: datetime) -> dict[str, Any]:
    """Each ecosystem's newest feed date and its age in days; the KEV and EPSS dates."""
    described = feeds.describe()
    rows = []
    for entry in described.get("ecosystems", []):
        feed_date = str(entry.get("feed_date") or "")
        rows.append(
            {
                "ecosystem": entry.get("ecosystem", ""),
                "records": entry.get("records", 0),
                "feed_date": feed_date[:10],
                "age_days": _age_days(feed_date, now),
                "selection": bool(entry.get("selection")),
            }
        )
    return {
        "ecosystems": rows,
        "kev": described.get("kev", {}),
        "epss": described.get("epss", {}),
        "total_records": described.get("total_records", 0),
    }


def _age_days(stamp: str, now: datetime) -> int | None:
    try:
        return (now.date() - date.fromisoformat(stamp[:10])).days
    except ValueError:
        return None


def trend(store: Lookups, now: datetime, days: int) -> dict[str, Any]:
    """Open findings (not disabled) at the end of each of the last `days` days, by severity: counted from
    when each finding was first seen and resolved (the store's history)."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    dates = [first + timedelta(days=n) for n in range(days)]
    series: dict[str, list[int]] = {s: [0] * days for s in SEVERITY_ORDER}
    for span in store.finding_spans(datetime.combine(first, datetime.min.time(), UTC)):
        opened = date.fromisoformat(span.opened)
        resolved = date.fromisoformat(span.resolved) if span.resolved else None
        values = series.setdefault(span.severity, [0] * days)
        for n, day in enumerate(dates):
            if opened <= day and (resolved is None or resolved > day):
                values[n] += span.findings
    return {"dates": dates, "series": series}


# --- image -----------------------------------------------------------------------------------------------
def image(
    store: Lookups,
    registry: str,
    digest: str,
    query: Query,
    refresh: Refresh | None,
    layers: Callable[[], list[dict[str, Any]]],
) -> dict[str, Any]:
    """One digest: repositories and tags (with history), health, findings filtered and sorted by the query
    (`severity`, `fix`, `package`, `origin`, `layer`, `sort`, `disabled`), layers and scan history."""
    filters = {
        "severity": choice(query, "severity", SEVERITY_ORDER),
        "fix": choice(query, "fix", FIX_STATUSES),
        "package": text(query, "package"),
        "origin": choice(query, "origin", ORIGIN_FILTERS),
        "layer": layer_index(query),
        "sort": choice(query, "sort", FINDING_SORTS, "risk"),
        "disabled": choice(query, "disabled", ("show",)),
    }
    detail = store.get_image(registry, digest)
    if detail is None:
        raise NotFound(f"no image {registry}@{digest} in the store")
    found = refreshed(list(detail.findings), refresh)
    shown = [s for s in found if _kept(s, filters)]
    return {
        "detail": detail,
        "filters": filters,
        "findings": sort_findings(shown, filters["sort"]),
        "total_findings": sum(1 for s in found if not s.finding.disabled),
        "disabled_findings": sum(1 for s in found if s.finding.disabled),
        "layers": layers(),
        "scans": store.scan_history(registry, digest),
        "severities": SEVERITY_ORDER,
        "fix_statuses": FIX_STATUSES,
        "origins": ORIGIN_FILTERS,
        "sorts": FINDING_SORTS,
    }


def _kept(stored: StoredFinding, filters: Mapping[str, str]) -> bool:
    f = stored.finding
    checks = (
        filters["disabled"] == "show" or not f.disabled,
        not filters["severity"] or f.severity == filters["severity"],
        not filters["fix"] or f.fix_status == filters["fix"],
        not filters["origin"] or f.origin == filters["origin"],
        not filters["package"] or filters["package"].casefold() in f.package.name.casefold(),
        not filters["layer"] or (f.package.layer is not None and str(f.package.layer.index) == filters["layer"]),
    )
    return all(checks)


def sort_findings(found: list[StoredFinding], order: str) -> list[StoredFinding]:
    keys: dict[str, Callable[[StoredFinding], Any]] = {
        "risk": lambda s: (risk_order(s.finding), s.key),
        "severity": lambda s: (SEVERITY_ORDER.index(s.finding.severity), -s.finding.risk, s.key),
        "package": lambda s: (s.finding.package.name, SEVERITY_ORDER.index(s.finding.severity), s.key),
        "first_seen": lambda s: (-s.first_seen.timestamp(), s.key),
    }
    return sorted(found, key=keys[order])


def scan_seconds(scan: ScanRecord) -> float | None:
    if scan.finished_at is None:
        return None
    return round((scan.finished_at - scan.started_at).total_seconds(), 2)


# --- vulnerability ---------------------------------------------------------------------------------------
def vulnerability(
    store: Lookups, vuln_id: str, records: Sequence[Mapping[str, Any]], refresh: Refresh | None
) -> dict[str, Any]:
    """One vulnerability: the database's records of it (summary, details, references), the severities and
    their sources as the findings carry them, and the live images and tags carrying it."""
    occurrences = store.occurrences(vuln_id)
    if not occurrences and not records:
        raise NotFound(f"no vulnerability {vuln_id} in the store or the database")
    current = refreshed([o.finding for o in occurrences], refresh)
    findings: list[Finding] = [s.finding for s in current]
    sources = sorted({(f.severity, f.severity_source, f.cvss.vector if f.cvss else "") for f in findings})
    return {
        "id": vuln_id,
        "records": records,
        "occurrences": list(zip(occurrences, current, strict=True)),
        "severity_sources": sources,
        "kev": next((f.kev for f in findings if f.kev), None),
        "epss": max((f.epss for f in findings if f.epss), key=lambda e: e.score, default=None),
        "aliases": sorted({a for f in findings for a in (f.id, *f.aliases)} - {vuln_id}),
    }


# --- images of a repository ------------------------------------------------------------------------------
def images(store: Lookups, query: Query) -> dict[str, Any]:
    """A page of live images (`registry`, `repository`, `health`, `cursor` as `/api/images` takes them)."""
    filters = {
        "registry": text(query, "registry"),
        "repository": text(query, "repository"),
        "health": choice(query, "health", HEALTHS),
    }
    cursor = query.get("cursor") or None
    try:
        page = store.list_images(
            filters["registry"] or None,
            filters["repository"] or None,
            filters["health"] or None,  # type: ignore[arg-type]
            PAGE,
            cursor,
        )
    except CursorError:
        raise BadParameter("cursor", "not a cursor this store issued") from None
    return {
        "filters": filters,
        "images": page.items,
        "next": page.cursor,
        "healths": HEALTHS,
        "severities": SEVERITY_ORDER,
    }


# --- one finding -----------------------------------------------------------------------------------------
def finding(store: Lookups, registry: str, digest: str, key: str, refresh: Refresh | None) -> dict[str, Any]:
    detail = store.get_image(registry, digest)
    stored = next((s for s in detail.findings if s.key == key), None) if detail is not None else None
    if detail is None or stored is None:
        raise NotFound(f"no unresolved finding {key} on {registry}@{digest}")
    (current,) = refreshed([stored], refresh)
    return {
        "stored": current,
        "registry": registry,
        "digest": digest,
        "repository": detail.repositories[0].key.repository,
    }


# --- rules -----------------------------------------------------------------------------------------------
def rules(views: list[RuleView], hidden: Mapping[str, tuple[int, int]], today: date) -> list[dict[str, Any]]:
    """Each rule as the table shows it: its document, whether it has expired, what it hides now."""
    out = []
    for view in views:
        doc = rule_view_document(view)
        expires = view.rule.expires
        findings_hidden, images_hidden = hidden.get(view.rule.name, (0, 0))
        out.append(
            doc
            | {
                "expires": expires.isoformat() if expires else "",
                "expired": expires is not None and expires < today,
                "hides": findings_hidden,
                "images": images_hidden,
                "created_at": view.created_at,
                "source": view.rule.source,
            }
        )
    return out


def rule_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The rule document a creation form describes (validated by `rule_admin.create_rule`)."""

    def listed(name: str) -> list[str]:
        return [item.strip() for item in form.get(name, "").split(",") if item.strip()]

    match: dict[str, Any] = {}
    for name in ("ids", "packages", "repositories"):
        if listed(name):
            match[name] = listed(name)
    doc: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "justification": form.get("justification", "").strip(),
        "match": match,
    }
    if form.get("expires", "").strip():
        doc["expires"] = form["expires"].strip()
    return doc
