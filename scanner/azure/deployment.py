"""What the Azure deployment (`infra/`, `azure.yaml`) must give the code, as pure data: the settings each
process needs set there, the Azure roles each of the two identities needs and why, the Event Grid event types the
`acr_events` trigger acts on, and the columns of the findings export table.

tests/infra checks the Bicep against these lists (parsed with pycep, the parser checkov uses); a change to
the code that needs a new setting or role changes a line here and the template with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Process = Literal["function", "job"]
Identity = Literal["app", "host"]
Scope = Literal["monitored-registry", "image-registry", "storage", "vulndb-container", "workspace", "dcr", "insights"]

# The Function App's Event Grid trigger (scanner.azure.events) the registries' subscriptions deliver to.
EVENT_FUNCTION = "acr_events"
# What the subscriptions let through: pushes queue scans, deletes forget images. Chart events and the rest are
# ignored by the code (scanner.service.events), so they are not delivered at all.
SUBSCRIBED_EVENT_TYPES = ("Microsoft.ContainerRegistry.ImagePushed", "Microsoft.ContainerRegistry.ImageDeleted")

# The scan queue and the event dead letters (scanner.queue.factory, scanner.service.config), each with the
# `-poison` queue its dead letters go to; created by the template so that no identity needs to create queues.
QUEUES = ("scan-requests", "scan-requests-poison", "acrguard-event-dead-letters", "acrguard-event-dead-letters-poison")


@dataclass(frozen=True)
class NeededSetting:
    env: str
    processes: tuple[Process, ...]
    why: str


# Settings the deployment must set because their defaults do not work in Azure. Every other declared setting
# has a default that does (scanner.model.settings), and platform settings (AzureWebJobsStorage__*,
# APPLICATIONINSIGHTS_*, AZURE_CLIENT_ID) are the template's own business.
NEEDED_SETTINGS: tuple[NeededSetting, ...] = (
    NeededSetting("ACRGUARD_STORE", ("function", "job"), "no default: the findings store both processes share"),
    NeededSetting(
        "ACRGUARD_STORE_AUTH",
        ("function", "job"),
        "`entra`: PostgreSQL takes an Entra token as the password; the default `password` has none to give",
    ),
    NeededSetting("ACRGUARD_QUEUE", ("function", "job"), "no default: the function queues scans, the job drains"),
    NeededSetting(
        "ACRGUARD_DB", ("function", "job"), "the default under ~ is not known to be writable on Flex Consumption"
    ),
    NeededSetting(
        "ACRGUARD_DB_BLOB_URL",
        ("function", "job"),
        "the function's update timer publishes the database there and the job downloads it (a file is not shared)",
    ),
    NeededSetting(
        "ACRGUARD_REGISTRIES", ("function", "job"), "empty allows no registry: events from them would be refused"
    ),
    NeededSetting(
        "ACRGUARD_REGISTRY_RESOURCES",
        ("function",),
        "the sub-assessments of a subscription (list_all) are those of the registries it names",
    ),
    NeededSetting(
        "ACRGUARD_LOG_WORKSPACE_ID", ("function",), "unset, the resource-log timer reads nothing (pulls, imports)"
    ),
    NeededSetting(
        "ACRGUARD_EXPORT_ENDPOINT",
        ("function", "job"),
        "unset, nothing is exported: the job's scans and the function's rescans both change findings",
    ),
    NeededSetting("ACRGUARD_EXPORT_RULE_ID", ("function", "job"), "the data collection rule the export writes through"),
    NeededSetting(
        "ACRGUARD_EXPORT_REGISTRY_IDS",
        ("function", "job"),
        "the exported rows' subscription and resource group (the store knows login servers only)",
    ),
    NeededSetting(
        "ACRGUARD_TRUST_FUNCTIONS_HOST",
        ("function",),
        "Event Grid deliveries are refused unless a key-checking host is recognised; the Functions host is one",
    ),
)


@dataclass(frozen=True)
class NeededRole:
    role: str  # a built-in role's name, a key of ROLE_IDS
    identity: Identity
    scope: Scope
    gates: bool  # only when gates are enabled (the `enableGates` parameter)
    why: str


# "app" is acrguard's user-assigned identity: the function's code signs in with it (AZURE_CLIENT_ID) and the scan
# job runs as it. One identity for both because both write the same PostgreSQL tables, which belong to the role
# that created them: with one Entra role each, the function and the job would lock each other out of the store.
# "host" is the Function App's system-assigned identity, for the Functions host's own needs.
NEEDED_ROLES: tuple[NeededRole, ...] = (
    NeededRole(
        "AcrPull",
        "app",
        "monitored-registry",
        False,
        "the job fetches the images it scans; the function resolves a manual scan's tag to its digest"
        " (scanner.service.manage.registry_resolver)",
    ),
    NeededRole("AcrPull", "app", "image-registry", False, "the job pulls its own image from the project's ACR"),
    NeededRole(
        "AcrPush",
        "app",
        "monitored-registry",
        True,
        "gate `lock`: update_manifest_properties(can_read=...) needs the repository's metadata_write, which the"
        " push permission carries; the least built-in role that has it (scanner.policy.gate_actions.AcrActions)",
    ),
    NeededRole(
        "AcrQuarantineWriter",
        "app",
        "monitored-registry",
        True,
        "gate `quarantine`: PATCH /acr/v1/{repo}/_manifests/{digest} with quarantineState",
    ),
    NeededRole(
        "Storage Queue Data Contributor",
        "app",
        "storage",
        False,
        "scan requests: the function sends, the job receives, renews and deletes, KEDA reads the length;"
        " both dead-letter",
    ),
    NeededRole(
        "Storage Blob Data Contributor",
        "app",
        "vulndb-container",
        False,
        "the database-update timer publishes the vulnerability database blob; the job downloads it",
    ),
    NeededRole(
        "Log Analytics Reader",
        "app",
        "workspace",
        False,
        "the resource-log timer queries ContainerRegistryRepositoryEvents (scanner.azure.log_analytics)",
    ),
    NeededRole(
        "Monitoring Metrics Publisher",
        "app",
        "dcr",
        False,
        "the findings export sends rows through the Logs Ingestion API to the data collection rule",
    ),
    NeededRole(
        "Storage Blob Data Owner",
        "host",
        "storage",
        False,
        "the Functions host's identity-based AzureWebJobsStorage (leases, timers) and its deployment container",
    ),
    NeededRole(
        "Monitoring Metrics Publisher",
        "host",
        "insights",
        False,
        "Application Insights with local (key) authentication off takes the host's telemetry by Entra ID only",
    ),
)

# Built-in role definition ids (the same in every tenant).
ROLE_IDS = {
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "AcrQuarantineWriter": "c8d4ff99-41c3-41a8-9f60-21dfdad59608",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Log Analytics Reader": "73c42c96-874c-492b-b04d-ab87d138a893",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
