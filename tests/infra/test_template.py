"""The Bicep under infra/, parsed (no Bicep compiler here), against what the code needs: every needed setting set
on the Function App and the scan job, every needed role assigned to the right identity on the right resource,
the Event Grid subscription aimed at the real trigger, the modules wired as they declare, no key anywhere."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

import pytest

from scanner.azure import deployment
from scanner.azure.deployment import NEEDED_ROLES, NEEDED_SETTINGS, ROLE_IDS
from scanner.model.settings import SETTINGS, Settings
from scanner.report.defender_export import EXPORT_COLUMNS, TABLE
from tests.app_index import blueprint_functions
from tests.infra import bicep

# Settings of the platform or of the Azure SDK (not acrguard's): the Functions host's identity-based storage,
# Application Insights, the user-assigned identity DefaultAzureCredential signs in as.
PLATFORM = frozenset(
    {
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "AZURE_CLIENT_ID",
    }
)
DECLARED = frozenset(setting.env for setting in SETTINGS.values())


def _secret_settings() -> frozenset[str]:
    return frozenset(SETTINGS[f.name].env for f in fields(Settings) if not f.repr)


def _key_vault_reference(value: Any) -> bool:
    """A setting's value that is `@Microsoft.KeyVault(SecretUri=…)` or empty, or a choice between those: never
    a literal or a parameter holding the secret itself."""
    if isinstance(value, str):  # pycep writes string literals and identifiers alike as strings
        return value == "" or value.startswith("@Microsoft.KeyVault(SecretUri=")
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    if operator.get("type") != "conditional":
        return False
    branches = operator["operands"]
    return _key_vault_reference(branches["true_value"]) and _key_vault_reference(branches["false_value"])


def function_settings() -> dict[str, Any]:
    site = bicep.resources("modules/function-app.bicep")["site"]
    return bicep.name_values(site.body["properties"]["siteConfig"]["appSettings"])


def job_container() -> dict[str, Any]:
    job = bicep.resources("modules/scan-job.bicep")["job"]
    containers = job.body["properties"]["template"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def job_settings() -> dict[str, Any]:
    return bicep.name_values(job_container()["env"])


SET_BY_PROCESS = {"function": function_settings, "job": job_settings}


def test_every_template_parses() -> None:
    # checkov passes over a file it cannot parse without a word: a parse failure must fail here instead.
    files = bicep.template_files()
    assert "main.bicep" in files and len(files) > 5
    for relative in files:
        assert bicep.template(relative), relative


def test_needed_settings_are_declared_settings() -> None:
    for needed in NEEDED_SETTINGS:
        assert needed.env in DECLARED, f"{needed.env}: not declared in scanner.model.settings"


@pytest.mark.parametrize("process", ["function", "job"])
def test_every_needed_setting_is_set(process: str) -> None:
    set_there = SET_BY_PROCESS[process]()
    missing = [n.env for n in NEEDED_SETTINGS if process in n.processes and n.env not in set_there]
    assert not missing, f"{process}: needed settings the template does not set: {missing}"


@pytest.mark.parametrize("process", ["function", "job"])
def test_every_setting_set_is_declared_and_no_secret(process: str) -> None:
    set_there = SET_BY_PROCESS[process]()
    unknown = sorted(set(set_there) - DECLARED - PLATFORM)
    assert not unknown, f"{process}: settings nobody reads (a typo?): {unknown}"
    # A secret may be named only as a Key Vault reference, which the platform resolves with an identity.
    secrets = sorted(n for n in set(set_there) & _secret_settings() if not _key_vault_reference(set_there[n]))
    assert not secrets, f"{process}: secrets in app settings (identity-based connections only): {secrets}"


def test_no_key_or_password_anywhere_in_the_templates() -> None:
    for relative in bicep.template_files():
        text = (bicep.INFRA / relative).read_text()
        for forbidden in ("listKeys", "AccountKey", "administratorLoginPassword", "SharedAccessKey", "@secure"):
            assert forbidden not in text, f"{relative}: {forbidden}"


def test_store_queue_and_blob_settings_are_identity_based() -> None:
    for process, settings in SET_BY_PROCESS.items():
        values = settings()
        assert values["ACRGUARD_STORE_AUTH"] == "entra", process
        # The URLs are modules' outputs (postgres.bicep, storage.bicep).
        assert _wired(process, "storeUrl") == ("postgres", "outputs", "storeUrl"), process
        assert _wired(process, "queueUrl") == ("storage", "outputs", "queueEndpoint"), process
        assert _wired(process, "dbBlobUrl") == ("storage", "outputs", "vulndbBlobUrl"), process
    storage_outputs = bicep.outputs("modules/storage.bicep")
    assert bicep.accessor(storage_outputs["queueEndpoint"]["value"]) == (
        "account",
        "properties",
        "primaryEndpoints",
        "queue",
    )
    assert "vulndb.sqlite" in json.dumps(storage_outputs["vulndbBlobUrl"]["value"])


def _module_of(process: str) -> bicep.ModuleCall:
    path = {"function": "modules/function-app.bicep", "job": "modules/scan-job.bicep"}[process]
    (call,) = [c for c in bicep.module_calls().values() if c.path == path]
    return call


def _wired(process: str, param: str) -> Any:
    value = _module_of(process).params[param]
    chain = bicep.accessor(value)
    return chain if chain is not None and len(chain) > 1 else value


def test_postgres_has_one_entra_admin_whose_role_both_processes_sign_in_as() -> None:
    server = bicep.resources("modules/postgres.bicep")["server"]
    auth = server.body["properties"]["authConfig"]
    assert auth["activeDirectoryAuth"] == "Enabled" and auth["passwordAuth"] == "Disabled"
    admins = [r for r in bicep.all_resources() if r.type.endswith("/administrators")]
    assert len(admins) == 1  # tables belong to the role that made them: one role, or the processes lock each other out
    admin = admins[0].body
    assert admin["properties"]["principalName"] == "identityName" and admin["name"] == "identityPrincipalId"
    main = bicep.module_calls()
    assert bicep.accessor(main["postgres"].params["identityName"]) == ("identity", "outputs", "name")
    assert bicep.accessor(main["postgres"].params["identityPrincipalId"]) == ("identity", "outputs", "principalId")
    store_url = bicep.outputs("modules/postgres.bicep")["storeUrl"]["value"]
    assert store_url.startswith("postgresql://${identityName}@")
    # and both processes sign in as that identity
    assert function_settings()["AZURE_CLIENT_ID"] == "appIdentityClientId"
    assert job_settings()["AZURE_CLIENT_ID"] == "identityClientId"
    assert bicep.accessor(main["functionApp"].params["appIdentityClientId"]) == ("identity", "outputs", "clientId")
    assert bicep.accessor(main["job"].params["identityClientId"]) == ("identity", "outputs", "clientId")


# (file, resource type) of a role assignment's scope -> the scope NEEDED_ROLES names.
SCOPES = {
    ("modules/monitored-registry.bicep", "Microsoft.ContainerRegistry/registries"): "monitored-registry",
    ("modules/roles.bicep", "Microsoft.ContainerRegistry/registries"): "image-registry",
    ("modules/roles.bicep", "Microsoft.Storage/storageAccounts"): "storage",
    ("modules/roles.bicep", "Microsoft.Storage/storageAccounts/blobServices/containers"): "vulndb-container",
    ("modules/roles.bicep", "Microsoft.OperationalInsights/workspaces"): "workspace",
    ("modules/roles.bicep", "Microsoft.Insights/dataCollectionRules"): "dcr",
    ("modules/roles.bicep", "Microsoft.Insights/components"): "insights",
}
PRINCIPALS = {"appPrincipalId": "app", "hostPrincipalId": "host"}


def assigned() -> set[tuple[str, str, str, bool]]:
    """(role id, identity, scope, gates only) of every role assignment in the templates."""
    found = set()
    for a in bicep.role_assignments():
        scope = SCOPES[(a.file, a.scope_type)]
        assert a.condition in (None, "enableGates"), f"{a.file}: {a.symbol}: condition {a.condition!r}"
        found.add((a.role_id, PRINCIPALS[a.principal], scope, a.condition == "enableGates"))
    return found


def needed() -> set[tuple[str, str, str, bool]]:
    return {(ROLE_IDS[r.role], r.identity, r.scope, r.gates) for r in NEEDED_ROLES}


def test_every_needed_role_is_assigned() -> None:
    names = {v: k for k, v in ROLE_IDS.items()}
    missing = sorted((names[r], p, s, g) for r, p, s, g in needed() - assigned())
    assert not missing, f"roles the code needs that the template does not assign: {missing}"


def test_every_assigned_role_is_needed() -> None:
    names = {v: k for k, v in ROLE_IDS.items()}
    extra = sorted((names.get(r, r), p, s, g) for r, p, s, g in assigned() - needed())
    assert not extra, f"roles assigned that no code needs (add a NeededRole with why, or drop them): {extra}"


def test_role_assignments_are_idempotent_and_for_service_principals() -> None:
    for relative in bicep.template_files():
        for resource in bicep.resources(relative).values():
            if resource.type != "Microsoft.Authorization/roleAssignments":
                continue
            name = resource.body["name"]["function"]
            assert name["type"] == "guid", f"{relative}: {resource.symbol}"
            # guid(scope, principal, role): redeploying finds the same assignment instead of a conflict
            assert bicep.atoms(name["parameters"]) >= {
                resource.body["properties"]["principalId"],
                resource.body["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"],
            }
            assert resource.body["properties"]["principalType"] == "ServicePrincipal"


def test_principals_and_gates_are_wired_from_the_identities() -> None:
    main = bicep.module_calls()
    for symbol in ("roles", "monitored"):
        assert bicep.accessor(main[symbol].params["appPrincipalId"]) == ("identity", "outputs", "principalId")
    assert bicep.accessor(main["roles"].params["hostPrincipalId"]) == ("functionApp", "outputs", "hostPrincipalId")
    assert main["monitored"].params["enableGates"] == "enableGates"
    site = bicep.resources("modules/function-app.bicep")["site"].body
    assert bicep.accessor(bicep.outputs("modules/function-app.bicep")["hostPrincipalId"]["value"]) == (
        "site",
        "identity",
        "principalId",
    )
    assert site["identity"]["type"] == "SystemAssigned, UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == [
        "'${appIdentityId}'"
    ]  # pycep keeps a quoted key's quotes
    assert bicep.accessor(main["functionApp"].params["appIdentityId"]) == ("identity", "outputs", "id")
    # The host's own connections name no client id: they are the system-assigned identity's.
    settings = function_settings()
    assert not any(name.startswith("AzureWebJobsStorage__") and name.endswith("clientId") for name in settings)
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    job = bicep.resources("modules/scan-job.bicep")["job"].body
    assert job["identity"]["type"] == "UserAssigned"
    assert list(job["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    assert bicep.accessor(main["job"].params["identityId"]) == ("identity", "outputs", "id")


def test_modules_are_called_with_the_parameters_they_declare() -> None:
    # A stand-in for the compiler's check: every required parameter given, none unknown, outputs that exist.
    calls = bicep.module_calls()
    for call in calls.values():
        declared = bicep.parameters(call.path)
        required = {name for name, p in declared.items() if p.get("default") is None}
        assert required <= set(call.params), f"{call.symbol}: missing {sorted(required - set(call.params))}"
        assert set(call.params) <= set(declared), f"{call.symbol}: unknown {sorted(set(call.params) - set(declared))}"
    main = bicep.template("main.bicep")
    for chain in bicep.accessors([main.get("modules"), main.get("variables"), main.get("outputs")]):
        if len(chain) >= 3 and chain[1] == "outputs" and chain[0] in calls:
            module_outputs = bicep.outputs(calls[chain[0]].path)
            assert chain[2] in module_outputs, f"main.bicep: {'.'.join(chain)} is not an output of its module"


def test_parameters_file_matches_main() -> None:
    document = json.loads((bicep.INFRA / "main.parameters.json").read_text())
    given = set(document["parameters"])
    declared = bicep.parameters("main.bicep")
    assert given <= set(declared)
    assert {name for name, p in declared.items() if p.get("default") is None} <= given
    for name in ("monitoredRegistryIds", "enableGates", "postgresSkuName"):
        assert name in given


def test_function_app_is_flex_consumption_python_311() -> None:
    functions = bicep.resources("modules/function-app.bicep")
    assert functions["plan"].body["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    config = functions["site"].body["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "SystemAssignedIdentity"
    container = bicep.template("modules/storage.bicep")["variables"]["deploymentContainerName"]["value"]
    assert config["deployment"]["storage"]["value"] == f"${{storage.properties.primaryEndpoints.blob}}{container}"
    settings = function_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    # Flex Consumption refuses these as app settings (functionAppConfig.runtime carries them).
    assert "FUNCTIONS_WORKER_RUNTIME" not in settings and "FUNCTIONS_EXTENSION_VERSION" not in settings


def test_event_subscription_targets_the_event_grid_trigger() -> None:
    from scanner.azure import events
    from scanner.service.events import _ACR_TYPES

    functions = blueprint_functions(events.bp)
    trigger = functions[deployment.EVENT_FUNCTION]
    assert [b.type for b in trigger.get_bindings()] == ["eventGridTrigger"]
    subscription = bicep.resources("modules/monitored-registry.bicep")["eventSubscription"]
    assert subscription.condition == "deployEventSubscription"
    properties = subscription.body["properties"]
    destination = properties["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == f"${{functionAppId}}/functions/{deployment.EVENT_FUNCTION}"
    assert properties["filter"]["includedEventTypes"] == list(deployment.SUBSCRIBED_EVENT_TYPES)
    assert {_ACR_TYPES[t] for t in deployment.SUBSCRIBED_EVENT_TYPES} == {"push", "delete"}
    # One event per delivery, well within ACRGUARD_MAX_EVENTS_PER_REQUEST's default.
    assert destination["properties"]["maxEventsPerBatch"] <= SETTINGS["max_events_per_request"].default  # type: ignore[operator]
    topic = bicep.resources("modules/monitored-registry.bicep")["topic"].body
    assert topic["properties"]["topicType"] == "Microsoft.ContainerRegistry.Registries"
    assert bicep.accessor(bicep.module_calls()["monitored"].params["functionAppId"]) == ("functionApp", "outputs", "id")


def test_registry_resource_log_goes_to_the_workspace_the_timer_reads() -> None:
    from scanner.service.resource_log import TABLE

    diagnostics = bicep.resources("modules/monitored-registry.bicep")["diagnostics"].body
    assert [log["category"] for log in diagnostics["properties"]["logs"]] == [TABLE]
    main = bicep.module_calls()
    assert bicep.accessor(main["monitored"].params["workspaceId"]) == ("monitoring", "outputs", "workspaceId")
    assert bicep.accessor(main["functionApp"].params["logWorkspaceId"]) == (
        "monitoring",
        "outputs",
        "workspaceCustomerId",
    )


def test_queues_are_the_codes_and_the_job_scales_on_the_scan_queue() -> None:
    from scanner.queue.factory import DEFAULT_QUEUE_NAME
    from scanner.service.config import EVENT_DEAD_LETTER_QUEUE

    storage = bicep.template("modules/storage.bicep")["variables"]
    assert tuple(storage["queueNames"]["value"]) == deployment.QUEUES
    assert {DEFAULT_QUEUE_NAME, f"{DEFAULT_QUEUE_NAME}-poison", EVENT_DEAD_LETTER_QUEUE} <= set(deployment.QUEUES)
    assert bicep.outputs("modules/storage.bicep")["scanQueueName"]["value"] == {
        "operator": {"type": "index_accessor", "operands": {"operand_1": "queueNames", "operand_2": 0}}
    } or "queueNames" in bicep.atoms(bicep.outputs("modules/storage.bicep")["scanQueueName"]["value"])
    assert deployment.QUEUES[0] == DEFAULT_QUEUE_NAME
    job = bicep.resources("modules/scan-job.bicep")["job"].body["properties"]
    (rule,) = job["configuration"]["eventTriggerConfig"]["scale"]["rules"]
    assert rule["type"] == "azure-queue"
    assert rule["metadata"]["queueName"] == "scanQueueName" and rule["metadata"]["accountName"] == "storageAccountName"
    assert rule["identity"] == "identityId"  # the job's managed identity, no connection string secret
    assert "auth" not in rule
    assert job["configuration"]["registries"] == [{"server": "imageRegistryServer", "identity": "identityId"}]


def test_the_job_runs_the_worker_without_a_nested_sandbox() -> None:
    from scanner.cli.main import build_parser

    command = job_container()["command"]
    assert command[:2] == ["acrguard", "worker"]
    args = build_parser().parse_args(command[1:])
    assert args.command == "worker" and args.runner == "none"


def test_findings_table_stream_and_columns_agree() -> None:
    monitoring = bicep.template("modules/monitoring.bicep")
    variables = monitoring["variables"]
    assert variables["findingsTable"]["value"] == TABLE
    assert variables["findingsStream"]["value"] == f"Custom-{TABLE}" == Settings().export_stream
    columns = [(c["name"], c["type"]) for c in variables["findingsColumns"]["value"]]
    assert tuple(columns) == EXPORT_COLUMNS
    declared = bicep.resources("modules/monitoring.bicep")
    assert declared["findings"].body["properties"]["schema"]["columns"] == "findingsColumns"
    rule = declared["rule"].body["properties"]
    # pycep keeps a quoted key's quotes
    streams = {key.strip("'"): value for key, value in rule["streamDeclarations"].items()}
    assert streams == {f"Custom-{TABLE}": {"columns": "findingsColumns"}}
    (flow,) = rule["dataFlows"]
    assert flow["streams"] == ["findingsStream"] and flow["outputStream"] == "findingsStream"
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", name) for name, _ in EXPORT_COLUMNS)


def test_loop_variables_are_deploy_time_values() -> None:
    # Bicep refuses (BCP182) a variable's for-loop whose body reads a module's outputs or a resource's
    # properties: such values are computed in a module and read from its outputs instead.
    for relative in bicep.template_files():
        for name, variable in bicep.template(relative).get("variables", {}).items():
            value = variable["value"]
            if isinstance(value, dict) and "loop_type" in value:
                chains = list(bicep.accessors(value["config"]))
                assert not chains, f"{relative}: variable {name} reads {chains} in its loop"
                # and in its string interpolations, which pycep keeps as text
                runtime = [a for a in bicep.atoms(value["config"]) if ".outputs." in a or ".properties." in a]
                assert not runtime, f"{relative}: variable {name} reads {runtime} in its loop"


# Bicep functions a symbol would shadow (a resource named `deployment` hides deployment(), and so on).
BICEP_FUNCTIONS = frozenset(
    [
        "deployment",
        "environment",
        "subscription",
        "resourceGroup",
        "tenant",
        "managementGroup",
        "reference",
        "resourceId",
        "subscriptionResourceId",
        "extensionResourceId",
        "json",
        "string",
        "int",
        "bool",
        "union",
        "length",
        "first",
        "last",
        "split",
        "join",
        "uniqueString",
        "guid",
        "toLower",
        "toUpper",
        "empty",
        "range",
        "concat",
        "contains",
        "format",
        "replace",
    ]
)


def test_no_symbol_shadows_a_bicep_function() -> None:
    for relative in bicep.template_files():
        document = bicep.template(relative)
        symbols = set()
        for section in ("parameters", "variables", "resources", "modules", "outputs"):
            symbols |= set(document.get(section, {}))
        shadowing = sorted(symbols & BICEP_FUNCTIONS)
        assert not shadowing, f"{relative}: {shadowing}"


def test_sign_in_with_microsoft_is_wired_with_the_secret_as_a_key_vault_reference() -> None:
    values = function_settings()
    assert values["ACRGUARD_ENTRA_CLIENT_ID"] == "dashboardClientId"
    assert _key_vault_reference(values["ACRGUARD_ENTRA_CLIENT_SECRET"])
    assert "@Microsoft.KeyVault(SecretUri=${dashboardClientSecretUri})" in bicep.atoms(
        values["ACRGUARD_ENTRA_CLIENT_SECRET"]
    )
    # The tenant is set for either registration; the API then needs an audience: the dashboard's when it has none.
    assert "dashboardClientId" in bicep.atoms(values["ACRGUARD_ENTRA_TENANT_ID"])
    assert "dashboardClientId" in bicep.atoms(values["ACRGUARD_ENTRA_AUDIENCE"])
    site = bicep.resources("modules/function-app.bicep")["site"]
    assert site.body["properties"]["keyVaultReferenceIdentity"] == "appIdentityId"
    assert not _key_vault_reference("dashboardClientSecret") and not _key_vault_reference("hunter2")
