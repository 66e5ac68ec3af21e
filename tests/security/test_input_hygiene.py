"""Input hygiene at the HTTP edge, tried against a real `acrguard serve` on a SQLite store and on a real
PostgreSQL store: JSON nested past the bound, lone surrogates, invalid UTF-8, NUL and oversized bodies on every
write and event endpoint; NUL, surrogates and forged, truncated or re-encoded page cursors in queries and
routes; a forged `Host` header; serve's own routing errors; and schemathesis over the OpenAPI document. Every
one must be a 4xx with the one error body (or, for the registry's notifications, a dead letter and a 200:
the registry retries any other answer for ever), and nothing a 5xx.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import azure.functions as func
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode

from scanner.assess.findings import find_vulnerabilities
from scanner.assess.image_health import summarise
from scanner.inventory.build import inventory
from scanner.model.client_input import MAX_DEPTH, MAX_JSON_BYTES
from scanner.report.subassessments import QUALYS_KEY
from scanner.service.events import EventError, parse_event
from scanner.store import open_store
from scanner.vulndb.location import open_scan_database
from scanner.vulndb.osv_import import import_sources
from tests.integration import realparts
from tests.localhost.stack import FUNCTION_KEY, HEADERS, Serve, start_serve
from tests.store.pg_server import running_postgres

ROOT = Path(__file__).resolve().parents[2]
REG = "contoso.azurecr.io"
MT = "application/vnd.docker.distribution.manifest.v2+json"
REPOSITORIES = ("app/a", "app/b", "app/c")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
WEBHOOK = f"/runtime/webhooks/eventgrid?functionName=acr_events&code={FUNCTION_KEY}"
SUB = (
    f"/api/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/{REG}"
    f"/providers/Microsoft.Security/assessments/{QUALYS_KEY}/subAssessments"
)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


@dataclass
class Edge:
    serve: Serve
    store: str
    vuln: str  # a vulnerability every seeded image carries
    registry: str  # a real, empty registry on 127.0.0.1 (plain HTTP) that generated scan orders are pointed at

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        answer = realparts.http(
            method,
            self.serve.url(path),
            headers={**HEADERS, "Content-Type": "application/json", **(headers or {})},
            data=body,
            timeout=60,
        )
        return answer.status, json.loads(answer.body) if answer.body else None


@pytest.fixture(scope="module")
def vulndb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vulndb") / "alpine.sqlite"
    import_sources(path, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    return path


def seed(store_url: str, vulndb: Path) -> str:
    """Three Unhealthy images carrying the Alpine 3.10 fixture image's real findings; returns one finding's id."""
    inv = inventory(f"docker-archive:{ROOT / 'tests/fixtures/images/fanal/image3_gz_layers.tar'}")[0]
    findings = find_vulnerabilities(inv.packages, open_scan_database(str(vulndb)))
    with open_store(store_url) as store:
        for n, repository in enumerate(REPOSITORIES, 1):
            at = T0 + timedelta(minutes=n)
            store.record_push(REG, repository, digest(n), "v1", MT, at)
            store.save_assessment(REG, digest(n), findings, "Unhealthy", "", summarise(findings), at)
    return findings[0].id


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def edge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, vulndb: Path) -> Iterator[Edge]:
    work = tmp_path_factory.mktemp(f"edge-{request.param}")
    with running_postgres() if request.param == "postgres" else nullcontext() as postgres:
        store = postgres.fresh_url() if postgres is not None else str(work / "store.sqlite")
        vuln = seed(store, vulndb)
        with realparts.running_registry(work / "registry") as registry:
            serve = start_serve(work / "serve", db=vulndb, store=store, insecure_registries=(registry.host,))
            try:
                yield Edge(serve, store, vuln, registry.host)
            finally:
                serve.stop()


def assert_error_body(status: int, body: Any, context: object) -> None:
    """The one error body: `{"error": {"code": <a name, not a number>, "message": <one line>}}`."""
    assert isinstance(body, dict) and set(body) == {"error"}, (status, body, context)
    error = body["error"]
    assert set(error) == {"code", "message"} and isinstance(error["code"], str), (status, body, context)
    assert not error["code"].isdigit() and "\n" not in error["message"], (status, body, context)


# --------------------------------------------------------------------------------------------------
# JSON bodies on the write and event endpoints

BAD = '"__BAD__"'
EVENT_GRID = [
    {
        "id": "e1",
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.ContainerRegistry/registries/contoso",
        "subject": "app/a:v9",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2026-01-01T00:00:00Z",
        "dataVersion": "1",
        "metadataVersion": "1",
        "data": {
            "id": "e1",
            "timestamp": "2026-01-01T00:00:00Z",
            "action": "push",
            "target": {"mediaType": MT, "digest": digest(9), "repository": "__BAD__", "tag": "v9"},
            "request": {"host": REG},
        },
    }
]
NOTIFICATION = {
    "events": [
        {
            "id": "n1",
            "timestamp": "2026-01-01T00:00:00Z",
            "action": "push",
            "target": {"mediaType": MT, "digest": digest(9), "repository": "__BAD__", "tag": "v9"},
            "request": {"host": REG, "method": "PUT"},
        }
    ]
}
# (endpoint, a body the endpoint would take, with "__BAD__" where the attack goes)
ENDPOINTS: list[tuple[str, Any]] = [
    (WEBHOOK, EVENT_GRID),
    ("/api/registry-notifications", NOTIFICATION),
    ("/api/scans", {"registry": REG, "repository": "__BAD__", "digest": digest(9)}),
    ("/api/rules", {"name": "r1", "justification": "__BAD__", "match": {"vulnerability": "CVE-2019-14697"}}),
    ("/api/import-notifications", {"registry": REG, "repository": "__BAD__", "digest": digest(9)}),
]
# (variant, JSON text put in place of the bad string, or a whole body when it starts with `[`/`{`; status)
VARIANTS: list[tuple[str, bytes, int]] = [
    ("arrays nested 100,000 deep (whole body)", b"[" * 100_000 + b"]" * 100_000, 400),
    ("objects nested 50,000 deep (whole body)", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400),
    ("arrays nested just past the bound in a field", b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, 400),
    ("escaped lone high surrogate", b'"app\\ud800"', 400),
    ("escaped lone low surrogate", b'"\\udc00app"', 400),
    ("surrogate encoded as UTF-8 bytes", b'"app\xed\xa0\x80"', 400),
    ("invalid UTF-8", b'"app\xff\xfe"', 400),
    ("NUL in a value", b'"app/a\\u0000x"', 400),
    ("NUL in a key", b'{"k\\u0000": "v"}', 400),
    ("a body over the JSON bound", b'"' + b"a" * (MAX_JSON_BYTES + 1) + b'"', 413),
]


def attack_body(template: Any, variant: bytes, whole: bool) -> bytes:
    return variant if whole else json.dumps(template).encode().replace(BAD.encode(), variant)


def test_bad_json_is_4xx_on_every_write_and_event_endpoint(edge: Edge) -> None:
    through: list[tuple[str, str, int, Any]] = []
    tried = 0
    for endpoint, template in ENDPOINTS:
        for name, variant, expected in VARIANTS:
            tried += 1
            body = attack_body(template, variant, whole="whole body" in name)
            status, answer = edge.request("POST", endpoint, body)
            if endpoint == "/api/registry-notifications":
                # The distribution registry retries every answer but 2xx/3xx for ever: refused means dead-lettered.
                ok = status == 200 and answer["dead_lettered"] is True and answer["accepted"] == 0
            else:
                ok = status == expected
                if ok:
                    assert_error_body(status, answer, (endpoint, name))
            if not ok:
                through.append((endpoint, name, status, answer))
    assert tried == len(ENDPOINTS) * len(VARIANTS)
    assert through == [], f"{len(through)} of {tried} attacks got through: {through}"
    # Nothing reached the store: no image of the attacked repository, and serve still answers.
    status, images = edge.request("GET", "/api/images")
    assert status == 200 and {i["repository"] for i in images["value"]} == set(REPOSITORIES)


def test_refused_event_deliveries_are_dead_lettered_with_their_error(edge: Edge) -> None:
    nul = attack_body(EVENT_GRID, b'"app/a\\u0000x"', whole=False)
    status, answer = edge.request("POST", WEBHOOK, nul)
    assert status == 400 and "NUL" in answer["error"]["message"]
    deep = b"[" * 100_000 + b"]" * 100_000
    assert edge.request("POST", WEBHOOK, deep)[0] == 400
    status, letters = edge.request("GET", "/api/dead-letters")  # lists a 100,000-deep body without recursing
    assert status == 200, letters
    errors = [letter["error"] for letter in letters["value"]]
    assert any(e.startswith("Event Grid delivery: the string at $[0].data.target.repository") for e in errors), errors
    assert any(e == f"Event Grid delivery: JSON nested deeper than {MAX_DEPTH} levels" for e in errors), errors


@pytest.mark.parametrize(
    ("repository", "problem"), [("app/a\x00x", "contains NUL"), ("app\ud800", "contains a lone surrogate")]
)
def test_an_event_the_functions_worker_decoded_is_held_to_the_same_bounds(repository: str, problem: str) -> None:
    """In Azure the worker decodes the event before the handler sees it: the parse refuses it (and the handler
    dead-letters it) before anything reaches a store."""
    raw = json.loads(json.dumps(EVENT_GRID[0]).replace("__BAD__", "x"))
    raw["data"]["target"]["repository"] = repository
    event = func.EventGridEvent(
        id=raw["id"],
        data=raw["data"],
        topic=raw["topic"],
        subject=raw["subject"],
        event_type=raw["eventType"],
        event_time=T0,
        data_version=raw["dataVersion"],
    )
    with pytest.raises(EventError, match=f"^event: the string at \\$.data.target.repository {problem}"):
        parse_event(event)
    deep: Any = "x"
    for _ in range(5_000):
        deep = [deep]
    raw["data"]["target"]["repository"] = deep
    with pytest.raises(EventError, match="nested deeper"):
        parse_event(raw)


# --------------------------------------------------------------------------------------------------
# query, route and cursor values


def next_cursor(edge: Edge, path: str, parameter: str) -> str:
    status, page = edge.request("GET", path)
    assert status == 200 and "nextLink" in page, page
    return parse_qs(urlsplit(page["nextLink"]).query)[parameter][0]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_bad_query_route_and_cursor_values_are_400(edge: Edge) -> None:
    images = next_cursor(edge, "/api/images?limit=1", "cursor")
    rows = next_cursor(edge, f"{SUB}?$top=1", "$skipToken")
    payload, mac = images.split(".")
    forged_key = json.dumps([REG, "app/a", digest(1)]).encode()
    cursors = {
        "forged (the unsigned format)": b64(forged_key),
        "forged (a made-up mac)": f"{b64(forged_key)}.{b64(bytes(32))}",
        # 5,000 levels: past Python's recursion limit, and its URL still within what an HTTP server reads.
        "nested 5,000 deep": b64(b"[" * 5_000 + b"]" * 5_000),
        "a lone surrogate inside": b64(b'["\\ud800", "a", "b"]'),
        "truncated": images[:-1],
        "payload truncated": f"{payload[:-2]}.{mac}",
        "re-encoded with padding": f"{payload}==.{mac}",
        "re-encoded in standard base64": images.replace("-", "+").replace("_", "/") + "+/",
        "mac of another listing": f"{rows.split('.')[0]}.{mac}",
        "a sub-assessment token used for images": rows,
        "NUL": images + "%00",
        "a lone surrogate": images + "%ED%A0%80",
    }
    paths = [f"/api/images?cursor={quote(c, safe='%')}" for c in cursors.values()]
    paths += [f"/api/vulnerabilities/{edge.vuln}/images?cursor={quote(images, safe='')}"]  # another listing's
    paths += [f"{SUB}?$skipToken={quote(c, safe='%')}" for c in (images, b64(b"[" * 5_000), rows[:-3])]
    paths += [
        "/api/images?registry=%00",
        "/api/images?repository=app%ED%A0%80",
        "/api/images?repository=app%FF",
        "/api/images?%00=1",
        f"/api/images/{REG}/sha256%3A%00",
        f"/api/images/{REG}%ED%A0%80/{digest(1)}/findings",
        "/api/vulnerabilities/CVE-1%00/images",
        f"/api/images/{REG}/{digest(1)}/findings?severity=%00",
    ]
    through = []
    for path in paths:
        status, answer = edge.request("GET", path)
        if status != 400:
            through.append((path, status, answer))
        else:
            assert_error_body(status, answer, path)
    assert through == [], f"{len(through)} of {len(paths)} got through: {through}"
    # The genuine cursors still work.
    assert edge.request("GET", f"/api/images?limit=1&cursor={images}")[0] == 200
    assert edge.request("GET", f"{SUB}?$top=1&$skipToken={rows}")[0] == 200


def test_next_link_is_built_from_serves_address_never_the_host_header(edge: Edge) -> None:
    for host in ("evil.example", "evil.example:8443", "evil.example/phish#", "user@evil.example"):
        status, page = edge.request("GET", "/api/images?limit=1&registry=" + REG, headers={"Host": host})
        assert status == 200, page
        link = page["nextLink"]
        assert link.startswith(edge.serve.url("/api/images?")), (host, link)
        query = parse_qs(urlsplit(link).query)
        assert query["registry"] == [REG] and query["limit"] == ["1"]
        follow = realparts.http("GET", link, headers=HEADERS)
        assert follow.status == 200 and json.loads(follow.body)["value"][0]["repository"] == "app/b"


# --------------------------------------------------------------------------------------------------
# serve's own answers


def test_serves_routing_errors_carry_the_one_error_body(edge: Edge) -> None:
    serve = edge.serve
    expected = {
        ("GET", "/api/no-such-function"): (404, "NotFound"),
        ("GET", "/elsewhere"): (404, "NotFound"),
        ("POST", "/api/health"): (405, "MethodNotAllowed"),
        ("GET", WEBHOOK): (405, "MethodNotAllowed"),
        ("POST", "/runtime/webhooks/eventgrid?functionName=acr_events&code=wrong"): (401, "Unauthorized"),
        ("POST", "/runtime/webhooks/eventgrid?functionName=nothing&code=" + FUNCTION_KEY): (404, "NotFound"),
        ("GET", "/api/images?registry=%FF"): (400, "BadRequest"),
        ("GET", "/api/images/%FF/x"): (400, "BadRequest"),
    }
    for (method, path), (status, code) in expected.items():
        # The API key is an event credential too: the wrong-code delivery must come without it.
        headers = {} if path.endswith("code=wrong") else HEADERS
        answer = realparts.http(method, serve.url(path), headers=headers, data=b"[]" if method == "POST" else None)
        body = json.loads(answer.body)
        assert (answer.status, body["error"]["code"]) == (status, code), (method, path, body)
        assert_error_body(answer.status, body, path)
    # The two refusals a new user meets, the host's (no function key) and acrguard's (no API key), are one shape,
    # each with the challenge.
    for headers in ({"x-api-key": HEADERS["x-api-key"]}, {"x-functions-key": FUNCTION_KEY}):
        answer = realparts.http("GET", serve.url("/api/images"), headers=headers)
        body = json.loads(answer.body)
        assert (answer.status, sorted(body), sorted(body["error"])) == (401, ["error"], ["code", "message"]), body
        assert body["error"]["code"] == "Unauthorized" and answer.headers.get("www-authenticate", "").startswith(
            "Bearer"
        )
        assert_error_body(answer.status, body, "/api/images")
    # A body declared over serve's bound is refused before it is read.
    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
        sock.sendall(b"POST /api/scans HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ") and json.loads(body)["error"]["code"] == "PayloadTooLarge"


# --------------------------------------------------------------------------------------------------
# schemathesis over the OpenAPI document

EXAMPLES = 5  # per operation and generation mode: bounded, and deterministic (derandomized)


def _at_local_registry(case: Case, host: str) -> Case:
    """Scan orders and import notifications name the test's own registry, whatever registry was generated:
    a generated one may be a resolvable host, and the tests connect to 127.0.0.1 only."""
    body = case.body
    for item in body if isinstance(body, list) else [body]:
        if isinstance(item, dict) and isinstance(item.get("registry"), str):
            item["registry"] = host
    return case


@pytest.mark.parametrize("credentials", ["with credentials", "without credentials"])
def test_schemathesis_finds_no_server_error(edge: Edge, credentials: str) -> None:
    document = json.loads(realparts.http("GET", edge.serve.url("/api/openapi.json")).body)
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the requests go to 127.0.0.1 only
    headers = dict(HEADERS) if credentials == "with credentials" else {}
    server_errors: list[tuple[str, str, int, str]] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode).map(lambda c: _at_local_registry(c, edge.registry))

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case: Case) -> None:
                nonlocal calls
                calls += 1
                response = case.call(base_url=edge.serve.url("/api"), session=session, headers=headers, timeout=60)
                if response.status_code >= 500:
                    sent = {"path": case.path_parameters, "query": case.query, "body": case.body}
                    where = f"{case.operation.method.upper()} {case.operation.path}"
                    server_errors.append((where, repr(sent)[:300], response.status_code, response.text[:300]))

            try:
                call()
            except Unsatisfiable:  # an operation without inputs has no negative case (health, openapi.json)
                assert mode is GenerationMode.NEGATIVE and operation.path in ("/health", "/openapi.json")
    assert calls > 50
    assert server_errors == [], f"{len(server_errors)} server errors in {calls} calls: {server_errors}"
