"""The OpenAPI 3.1 document of the HTTP API, built in code so it cannot drift from the route table's
parameters without a test noticing (tests/azure/test_openapi.py and test_manage_openapi.py check every route
and method is described): the lookups, the management API, the registry's notification endpoint and the
Event Grid webhook (the Functions host's, which `acrguard serve` plays)."""

from __future__ import annotations

from typing import Any

from scanner import __version__
from scanner.model.types import HEALTHS
from scanner.report.subassessments import LIST_ALL_REGISTRY_ROUTE, LIST_ALL_SUBSCRIPTION_ROUTE, ROUTE
from scanner.service.odata_filter import FIELDS, MAX_LENGTH

SUB_PATH = "/" + ROUTE
LIST_ALL_REGISTRY_PATH = "/" + LIST_ALL_REGISTRY_ROUTE
LIST_ALL_SUBSCRIPTION_PATH = "/" + LIST_ALL_SUBSCRIPTION_ROUTE


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _ok(description: str, schema_ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_ERRORS = {
    "400": {"$ref": "#/components/responses/Error"},
    "401": {"$ref": "#/components/responses/Error"},
    "403": {"$ref": "#/components/responses/Error"},
    "404": {"$ref": "#/components/responses/Error"},
    "503": {"$ref": "#/components/responses/Error"},
}
_SUB_PARAMS = [
    _path("sub", "subscription id"),
    _path("rg", "resource group"),
    _path("registry", "container registry name"),
    _path("key", "assessment key: dbd0cb49-… (Qualys-era shape) or c0b7cfc6-… (MDVM-era shape)"),
    _query("api-version", "accepted for Azure compatibility (2019-01-01-preview)"),
    _query("shape", "overrides the additionalData shape the key selects", {"enum": ["qualys", "mdvm"]}),
]
_LIST_PARAMS = [
    _query("$top", "page size", {"type": "integer", "minimum": 1, "maximum": 1000}),
    _query("$skipToken", "opaque token from nextLink"),
    _query(
        "$filter",
        "OData subset: `eq`, `ne`, `in (…)`, `and`, `or`, `not`, parentheses; literals 'text' ('' is a quote), true,"
        " false, null; e.g. `properties/status/severity eq 'High' and additionalData/patchable eq true`. Fields"
        " (under `properties/`, which may be left out): " + ", ".join(FIELDS) + ". Anything else is a 400 naming"
        " the problem and its position. A page may hold fewer rows than `$top` (even none) and still have a"
        " nextLink: a filtered page reads a bounded number of rows.",
        {"type": "string", "maxLength": MAX_LENGTH},
    ),
]
_LIST_ALL_PARAMS = [
    _query("api-version", "accepted for Azure compatibility (2019-01-01-preview)"),
    _query(
        "shape",
        "the additionalData shape and assessment key of the rows: mdvm (default, key c0b7cfc6-…) or qualys"
        " (key dbd0cb49-…)",
        {"enum": ["qualys", "mdvm"]},
    ),
    *_LIST_PARAMS,
]
_SEVERITIES = ["Critical", "High", "Medium", "Low", "Unknown"]
_HEALTHS = list(HEALTHS)  # every health an image may have, NotAssessed included
_BOOL = {"enum": ["true", "false"]}
_OBJECT = {"type": "object", "additionalProperties": True}


def _get(summary: str, parameters: list[dict[str, Any]], ok: dict[str, Any], secured: bool = True) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "parameters": parameters, "responses": {"200": ok, **_ERRORS}}
    if not secured:
        operation["security"] = []
    return {"get": operation}


def _body(ref: str, description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _write(
    summary: str, parameters: list[dict[str, Any]], responses: dict[str, Any], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A POST or DELETE: never anonymous (see auth.py), so the document-wide security applies."""
    operation: dict[str, Any] = {"summary": summary, "parameters": parameters, "responses": {**responses, **_ERRORS}}
    if body is not None:
        operation["requestBody"] = body
    return operation


def _manage_paths() -> dict[str, Any]:
    rule_name = [_path("name", "rule name (case-insensitive)")]
    conflict = {"409": {"$ref": "#/components/responses/Error"}}
    return {
        "/scans": {
            "post": _write(
                "Request a scan of one image by digest, or by tag (resolved by the service)",
                [],
                {
                    "202": _ok("queued", "ScanOutcome"),
                    "200": _ok("already scanned by this scanner version, or already pending", "ScanOutcome"),
                    "403": {"$ref": "#/components/responses/Error"},  # a registry that is not allowed
                    "502": {"$ref": "#/components/responses/Error"},
                },
                _body("ScanOrder", "what to scan"),
            )
        },
        "/import-notifications": {
            "post": _write(
                "Explicit import notifications: one object or a list; malformed items are dead-lettered",
                [],
                {
                    "202": _ok("at least one scan queued", "ImportReport"),
                    "200": _ok("nothing new to scan", "ImportReport"),
                },
                _body("ImportNotifications", "imported images"),
            )
        },
        "/rules": {
            **_get(
                "Disable rules: files (read-only) then stored ones, in the order they apply",
                [],
                _ok("rules", "RuleList"),
            ),
            "post": _write(
                "Create a disable rule (the YAML schema of one rule) and re-assess the images it may change",
                [],
                {"201": _ok("created", "RuleChange"), **conflict},
                _body("RuleInput", "one rule"),
            ),
        },
        "/rules/{name}": {
            **_get("One disable rule", rule_name, _ok("the rule", "Rule")),
            "delete": _write(
                "Delete a stored rule and re-assess the images it disabled findings of (409 for a file rule)",
                rule_name,
                {"200": _ok("deleted", "RuleChange"), **conflict},
            ),
        },
        "/dead-letters": _get(
            "Event and scan dead letters with their errors, oldest first", [], _ok("dead letters", "DeadLetterList")
        ),
        "/dead-letters/{id}/requeue": {
            "post": _write(
                "Move a scan dead letter back to the scan queue (409 for an event dead letter)",
                [_path("id", "dead letter id")],
                {"202": _ok("requeued", "Requeued"), **conflict},
            )
        },
    }


_EVENT_REFUSALS = {
    "413": {"$ref": "#/components/responses/Error"},
    "415": {"$ref": "#/components/responses/Error"},
}
EVENTGRID_PATH = "/runtime/webhooks/eventgrid"


def _event_paths() -> dict[str, Any]:
    """Where registry events come in; a sender without its credential, the wrong media type or too many
    events in one request causes no work."""
    envelope = {"schema": {"$ref": "#/components/schemas/RegistryNotification"}}
    event_grid = {"schema": {"$ref": "#/components/schemas/EventGridDelivery"}}
    function_name = {**_query("functionName", "the Event Grid function", {"const": "acr_events"}), "required": True}
    key_in_url = _query("code", "the function key, when the subscription's URL carries it")
    return {
        "/registry-notifications": {
            "post": {
                "summary": "The distribution registry's notifications: manifest pushes queue scans, manifest GETs"
                " are pulls (sent with the registry's `notifications.endpoints[].headers`: Authorization: Bearer)",
                "parameters": [],
                "requestBody": {
                    "required": True,
                    "description": "the registry's event envelope",
                    "content": {
                        "application/vnd.docker.distribution.events.v1+json": envelope,
                        "application/json": envelope,
                    },
                },
                "responses": {
                    "200": _ok("handled, or kept as a dead letter when unreadable", "NotificationReport"),
                    **_ERRORS,
                    **_EVENT_REFUSALS,
                },
                "security": [{"bearer": []}, {"apiKey": []}, {"functionKey": []}],
            }
        },
        EVENTGRID_PATH: {
            "servers": [{"url": "/"}],
            "post": {
                "summary": "Event Grid webhook delivery (Event Grid schema or CloudEvents 1.0, one event or a"
                " batch); the SubscriptionValidation handshake answers only an authenticated request",
                "parameters": [function_name, key_in_url],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": event_grid,
                        "application/cloudevents+json": event_grid,
                        "application/cloudevents-batch+json": event_grid,
                    },
                },
                "responses": {
                    "200": {
                        "description": "delivered (empty), or the validation handshake's answer",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Validation"}}},
                    },
                    **_ERRORS,
                    **_EVENT_REFUSALS,
                },
                "security": [{"functionKeyQuery": []}, {"functionKey": []}, {"bearer": []}, {"apiKey": []}],
            },
            "options": {
                "summary": "CloudEvents abuse-protection handshake (authenticated like a delivery)",
                "parameters": [function_name, key_in_url],
                "responses": {"200": {"description": "WebHook-Allowed-Origin names the origin that asked"}, **_ERRORS},
                "security": [{"functionKeyQuery": []}, {"functionKey": []}, {"bearer": []}, {"apiKey": []}],
            },
        },
    }


def document() -> dict[str, Any]:
    image_params = [_path("registry", "registry login server"), _path("digest", "manifest digest")]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "acrguard",
            "version": __version__,
            "description": "Container registry vulnerability findings, Azure sub-assessment compatible.",
        },
        "servers": [{"url": "/api"}],
        "security": [{"functionKey": []}, {"apiKey": []}, {"bearer": []}],
        "paths": {
            "/health": _get("Liveness", [], _ok("alive", "Health"), secured=False),
            "/openapi.json": _get("This document", [], {"description": "OpenAPI 3.1"}, secured=False),
            SUB_PATH: _get(
                "List sub-assessments (Azure List)", [*_SUB_PARAMS, *_LIST_PARAMS], _ok("a page", "SubAssessmentList")
            ),
            LIST_ALL_REGISTRY_PATH: _get(
                "List every sub-assessment of a registry (Azure ListAll at the registry's scope)",
                [
                    _path("sub", "subscription id"),
                    _path("rg", "resource group"),
                    _path("registry", "container registry name or login server"),
                    *_LIST_ALL_PARAMS,
                ],
                _ok("a page", "SubAssessmentList"),
            ),
            LIST_ALL_SUBSCRIPTION_PATH: _get(
                "List every sub-assessment of a subscription (Azure ListAll at the subscription's scope): the"
                " registries ACRGUARD_REGISTRY_RESOURCES names in that subscription",
                [_path("sub", "subscription id"), *_LIST_ALL_PARAMS],
                _ok("a page", "SubAssessmentList"),
            ),
            "/scans/{scan_id}": _get(
                "One scan by id (an image's lastScan.scanId)",
                [_path("scan_id", "scan id")],
                _ok("the scan", "Scan"),
            ),
            SUB_PATH + "/{name}": _get(
                "Get one sub-assessment (Azure Get)",
                [*_SUB_PARAMS, _path("name", "sub-assessment name")],
                _ok("the resource", "SubAssessment"),
            ),
            "/images": _get(
                "Images (not deleted) with their health",
                [
                    _query("registry", "registry login server"),
                    _query("repository", "repository"),
                    _query("status", "health", {"enum": _HEALTHS}),
                    _query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("cursor", "opaque cursor from nextLink"),
                ],
                _ok("a page", "ImageList"),
            ),
            "/images/{registry}/{digest}": _get(
                "One image: health, summary, tags, findings", image_params, _ok("the image", "Image")
            ),
            "/images/{registry}/{digest}/findings": _get(
                "An image's unresolved findings, highest risk first (sort=severity: most severe first)",
                [
                    *image_params,
                    _query(
                        "sort",
                        "risk (default): by risk score, then severity, id, package; severity: by class, package, id",
                        {"enum": ["risk", "severity"]},
                    ),
                    _query("severity", "exact class", {"enum": _SEVERITIES}),
                    _query("patchable", "fix available", _BOOL),
                    _query("fix_status", "fix state", {"enum": ["fixed", "not_fixed", "wont_fix"]}),
                    _query("include_disabled", "include findings disabled by rules", _BOOL),
                ],
                _ok("findings", "FindingList"),
            ),
            "/vulnerabilities/{vuln_id}/images": _get(
                "Images (not deleted) with an active finding for a vulnerability id or alias, a page at a time,"
                " ordered by registry, digest, repository",
                [
                    _path("vuln_id", "CVE, GHSA, ALPINE… id"),
                    _query("limit", "page size (default 100)", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("cursor", "opaque cursor from nextLink"),
                ],
                _ok("a page of images", "ImageKeyList"),
            ),
            **_manage_paths(),
            **_event_paths(),
        },
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "ACRGUARD_API_TOKEN, or a Microsoft Entra ID access token (ACRGUARD_ENTRA_TENANT_ID;"
                    " app roles Findings.Read, Findings.Write, Events.Send); on the event endpoints"
                    " ACRGUARD_EVENTS_TOKEN too",
                },
            },
            "responses": {
                "Error": {
                    "description": "one-line error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
            "schemas": _schemas(),
        },
    }


def _list_of(ref: str, paged: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {"value": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}}
    if paged:
        properties["nextLink"] = {"type": "string"}
    return {"type": "object", "required": ["value"], "properties": properties}


def _with_vulnerability(listing: dict[str, Any]) -> dict[str, Any]:
    """The vulnerability lookup echoes the id it was asked for beside the page."""
    return listing | {
        "required": [*listing["required"], "vulnerability"],
        "properties": listing["properties"] | {"vulnerability": {"type": "string"}},
    }


def _with_dropped(listing: dict[str, Any]) -> dict[str, Any]:
    """The dead letters come with how many of each kind were dropped to keep them bounded."""
    dropped = {
        "type": "object",
        "description": "dead letters dropped, oldest first, to keep at most ACRGUARD_MAX_DEAD_LETTERS",
        "properties": {"event": {"type": "integer"}, "scan": {"type": "integer"}},
    }
    return listing | {"properties": listing["properties"] | {"dropped": dropped}}


def _schemas() -> dict[str, Any]:
    status = {
        "type": "object",
        "properties": {
            "code": {"enum": ["Healthy", "Unhealthy", "NotApplicable"]},
            "cause": {"type": "string"},
            "description": {"type": "string"},
            "severity": {"enum": ["Low", "Medium", "High"]},
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
            },
        },
        "Health": {
            "type": "object",
            "properties": {"status": {"type": "string"}, "scanner_version": {"type": "string"}},
        },
        "SubAssessment": {
            "type": "object",
            "required": ["id", "name", "type", "properties"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "type": {"const": "Microsoft.Security/assessments/subAssessments"},
                "properties": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "displayName": {"type": "string"},
                        "remediation": {"type": "string"},
                        "impact": {"type": "string"},
                        "category": {"type": "string"},
                        "description": {"type": "string"},
                        "timeGenerated": {"type": "string"},
                        "status": status,
                        "resourceDetails": {
                            "type": "object",
                            "properties": {"source": {"const": "Azure"}, "id": {"type": "string"}},
                        },
                        "additionalData": {
                            "type": "object",
                            "required": ["assessedResourceType"],
                            "properties": {
                                "assessedResourceType": {
                                    "enum": ["ContainerRegistryVulnerability", "AzureContainerRegistryVulnerability"]
                                }
                            },
                        },
                    },
                },
            },
        },
        "SubAssessmentList": _list_of("SubAssessment", paged=True),
        "Scan": {
            "type": "object",
            "required": ["scanId", "registry", "repository", "digest", "status", "trigger", "startedAt"],
            "properties": {
                "scanId": {"type": "string"},
                "registry": {"type": "string"},
                "repository": {"type": "string"},
                "digest": {"type": "string"},
                "status": {"enum": ["running", "succeeded", "failed"]},
                "trigger": {"type": "string"},
                "startedAt": {"type": "string"},
                "finishedAt": {"type": ["string", "null"]},
                "error": {"type": "string"},
                "timings": {"type": "object", "additionalProperties": {"type": "number"}},
                "scannerVersion": {"type": "string"},
                "dbVersion": {"type": "string"},
                "detectorVersions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ImageSummary": _OBJECT,
        "ImageList": _list_of("ImageSummary", paged=True),
        "Image": _OBJECT,
        "Finding": _OBJECT,
        "FindingList": _list_of("Finding", paged=False),
        "ImageKey": {
            "type": "object",
            "properties": {k: {"type": "string"} for k in ("registry", "repository", "digest")},
        },
        "ImageKeyList": _with_vulnerability(_list_of("ImageKey", paged=True)),
        **_manage_schemas(),
    }


def _text(description: str = "") -> dict[str, Any]:
    return {"type": "string", "minLength": 1, **({"description": description} if description else {})}


def _manage_schemas() -> dict[str, Any]:
    nullable_text = {"type": ["string", "null"]}
    notification = {
        "type": "object",
        "required": ["registry", "repository", "digest"],
        "additionalProperties": False,
        "properties": {
            "registry": _text("login server"),
            "repository": _text(),
            "digest": _text(),
            "tag": _text(),
            "timestamp": _text("ISO 8601 with a time zone; default now"),
        },
    }
    rule_input = {
        "type": "object",
        "required": ["name", "justification", "match"],
        "additionalProperties": False,
        "description": "the schema of one rule in policies/rules/*.yaml (policies/README.md)",
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},
            "justification": _text(),
            "expires": {"type": "string", "format": "date"},
            "match": {"type": "object", "minProperties": 1},
        },
    }
    return {
        "ScanOrder": {
            "type": "object",
            "required": ["registry", "repository"],
            "additionalProperties": False,
            "properties": {
                "registry": _text("login server"),
                "repository": _text(),
                "digest": _text("either digest or tag"),
                "tag": _text("either digest or tag"),
                "force": {"type": "boolean", "description": "rescan even if this scanner version scanned it"},
            },
        },
        "ScanOutcome": {
            "type": "object",
            "required": ["status", "registry", "repository", "digest"],
            "properties": {
                "status": {"enum": ["queued", "pending", "current"]},
                "registry": {"type": "string"},
                "repository": {"type": "string"},
                "digest": {"type": "string"},
                "tag": nullable_text,
                "requestId": {"type": "string"},
                "reason": {"const": "manual"},
                "requestedAt": {"type": "string"},
                "messageId": {"type": "string"},
            },
        },
        "ImportNotification": notification,
        "ImportNotifications": {
            "oneOf": [
                {"$ref": "#/components/schemas/ImportNotification"},
                {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/ImportNotification"}},
            ]
        },
        "ImportReport": {
            "type": "object",
            "required": ["accepted", "queued", "deadLettered", "results"],
            "properties": {
                "accepted": {"type": "integer"},
                "queued": {"type": "integer"},
                "deadLettered": {"type": "integer"},
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["index", "status"],
                        "properties": {
                            "index": {"type": "integer"},
                            "status": {"enum": ["queued", "unchanged", "dead-lettered"]},
                            "digest": {"type": "string"},
                            "error": {"type": "string"},
                        },
                    },
                },
            },
        },
        "RuleInput": rule_input,
        "Rule": {
            "type": "object",
            "required": ["name", "justification", "match", "origin"],
            "properties": {
                "name": {"type": "string"},
                "justification": {"type": "string"},
                "expires": {"type": "string"},
                "match": {"type": "object"},
                "origin": {"enum": ["file", "api"]},
                "source": {"type": "string", "description": "the rule file (origin file)"},
                "createdAt": {"type": "string", "description": "origin api"},
                "status": {
                    "enum": ["active", "expired", "stale"],
                    "description": "expired: past `expires`; stale: matches no finding of any live image's latest"
                    " assessment",
                },
                "warnings": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "the findings in CISA's KEV catalog this rule hides, one line each",
                },
            },
        },
        "RuleList": _list_of("Rule", paged=False)
        | {
            "properties": _list_of("Rule", paged=False)["properties"]
            | {
                "imagesRead": {"type": "integer", "description": "live images whose findings were read"},
                "staleChecked": {
                    "type": "boolean",
                    "description": "false when the store holds more live images than a listing reads: no rule is"
                    " then called stale",
                },
            }
        },
        "RuleChange": {
            "type": "object",
            "required": ["rule", "reassessed", "failed"],
            "properties": {
                "rule": {"$ref": "#/components/schemas/Rule"},
                "reassessed": {"type": "integer", "description": "images re-assessed from stored inventories"},
                "failed": {"type": "integer"},
            },
        },
        "DeadLetter": {
            "type": "object",
            "required": ["id", "kind", "error", "deadAt", "attempts", "body"],
            "properties": {
                "id": {"type": "string"},
                "kind": {"enum": ["event", "scan"]},
                "error": {"type": "string"},
                "deadAt": {"type": "string"},
                "attempts": {"type": "integer"},
                "body": {},
            },
        },
        "DeadLetterList": _with_dropped(_list_of("DeadLetter", paged=False)),
        "RegistryNotification": {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "items": {"type": "object"}}},
        },
        "NotificationReport": {
            "type": "object",
            "required": ["accepted", "dead_lettered"],
            "properties": {
                "accepted": {"type": "integer"},
                "queued": {"type": "integer"},
                "dead_lettered": {"type": "boolean"},
            },
        },
        "EventGridDelivery": {
            "oneOf": [
                {"type": "object"},
                {"type": "array", "items": {"type": "object"}},
            ],
            "description": "Event Grid schema or CloudEvents 1.0 (structured), one event or a batch",
        },
        "Validation": {"type": "object", "properties": {"validationResponse": {"type": "string"}}},
        "Requeued": {
            "type": "object",
            "required": ["requeued", "messageId"],
            "properties": {"requeued": {"type": "string"}, "messageId": {"type": "string"}},
        },
    }
