// acrguard on Azure: everything `azd up` creates, in one resource group, plus the extension resources each
// monitored registry needs in its own resource group (role assignments, diagnostic setting, Event Grid).
// Identity-based connections only: no storage key, connection string or database password anywhere. Two
// identities: the Functions host's (system-assigned) and acrguard's (user-assigned: the function's code, the job).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('The azd environment name: names the resource group and seeds every resource name')
param environmentName string

@minLength(1)
@description('Region of the resource group and its resources (one where Flex Consumption is offered)')
param location string

@description('Resource ids of the container registries to monitor, in this subscription')
param monitoredRegistryIds array = []

@description('Grant the function and the job the roles gates use to lock (AcrPush) and quarantine (AcrQuarantineWriter)')
param enableGates bool = false

@description('PostgreSQL flexible server compute SKU name')
param postgresSkuName string = 'Standard_B1ms'

@description('PostgreSQL flexible server compute tier, matching the SKU name')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

@description('True once the function code is deployed: an Event Grid subscription can only name an existing function (the postdeploy hook sets it)')
param deployEventSubscriptions bool = false

@description('The scan job image; azd deploy builds it from the Dockerfile into the project registry')
param jobImage string = ''

@description('Entra ID audiences accepted as bearer tokens by the HTTP API (the API app registration); empty: Entra tokens off')
param apiAudience string = ''

@description('The dashboard\'s app registration (client id) for sign-in with Microsoft; empty: sign-in by API key only')
param dashboardClientId string = ''

@description('Key Vault secret URI of that registration\'s client secret (the app reads it as a Key Vault reference with acrguard\'s identity, which needs Key Vault Secrets User on it)')
param dashboardClientSecretUri string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

module imageRegistry 'modules/image-registry.bicep' = {
  name: 'image-registry'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

module identity 'modules/app-identity.bicep' = {
  name: 'app-identity'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

// Variables here are deploy-time values only (a for-loop variable may not read a module's outputs): whatever
// depends on deployed resources is computed in a module and read from its outputs.
var functionAppName = 'func-${resourceToken}'

module registryInfo 'modules/registry-info.bicep' = {
  name: 'registry-info'
  scope: rg
  params: {
    registryIds: monitoredRegistryIds
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    name: functionAppName
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    storeUrl: postgres.outputs.storeUrl
    appIdentityId: identity.outputs.id
    appIdentityClientId: identity.outputs.clientId
    queueUrl: storage.outputs.queueEndpoint
    dbBlobUrl: storage.outputs.vulndbBlobUrl
    registries: join(registryInfo.outputs.registryEntries, ',')
    registryResources: join(registryInfo.outputs.resourceEntries, ',')
    logWorkspaceId: monitoring.outputs.workspaceCustomerId
    exportEndpoint: monitoring.outputs.ingestionEndpoint
    exportRuleId: monitoring.outputs.dataCollectionRuleImmutableId
    exportRegistryIds: join(monitoredRegistryIds, ',')
    apiAudience: apiAudience
    dashboardClientId: dashboardClientId
    dashboardClientSecretUri: dashboardClientSecretUri
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    identityName: identity.outputs.name
    identityPrincipalId: identity.outputs.principalId
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    vulndbContainerName: storage.outputs.vulndbContainerName
    workspaceName: monitoring.outputs.workspaceName
    dataCollectionRuleName: monitoring.outputs.dataCollectionRuleName
    appInsightsName: monitoring.outputs.appInsightsName
    imageRegistryName: imageRegistry.outputs.name
    hostPrincipalId: functionApp.outputs.hostPrincipalId
    appPrincipalId: identity.outputs.principalId
  }
}

module job 'modules/scan-job.bicep' = {
  name: 'scan-job'
  scope: rg
  dependsOn: [
    roles
  ]
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    image: jobImage
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    imageRegistryServer: imageRegistry.outputs.loginServer
    workspaceId: monitoring.outputs.workspaceId
    storageAccountName: storage.outputs.name
    scanQueueName: storage.outputs.scanQueueName
    storeUrl: postgres.outputs.storeUrl
    queueUrl: storage.outputs.queueEndpoint
    dbBlobUrl: storage.outputs.vulndbBlobUrl
    registries: join(registryInfo.outputs.registryEntries, ',')
    exportEndpoint: monitoring.outputs.ingestionEndpoint
    exportRuleId: monitoring.outputs.dataCollectionRuleImmutableId
    exportRegistryIds: join(monitoredRegistryIds, ',')
  }
}

module monitored 'modules/monitored-registry.bicep' = [for registryId in monitoredRegistryIds: {
  name: 'monitored-${uniqueString(registryId)}'
  scope: resourceGroup(split(registryId, '/')[2], split(registryId, '/')[4])
  params: {
    registryName: last(split(registryId, '/'))
    functionAppId: functionApp.outputs.id
    appPrincipalId: identity.outputs.principalId
    workspaceId: monitoring.outputs.workspaceId
    enableGates: enableGates
    deployEventSubscription: deployEventSubscriptions
  }
}]

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = imageRegistry.outputs.loginServer
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_URL string = functionApp.outputs.url
output AZURE_SCAN_JOB_NAME string = job.outputs.name
output AZURE_CONTAINER_ENVIRONMENT_NAME string = job.outputs.environmentName
output AZURE_POSTGRES_HOST string = postgres.outputs.host
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.workspaceCustomerId
output AZURE_FINDINGS_INGESTION_ENDPOINT string = monitoring.outputs.ingestionEndpoint
output AZURE_FINDINGS_RULE_ID string = monitoring.outputs.dataCollectionRuleImmutableId
output AZURE_FINDINGS_STREAM string = monitoring.outputs.findingsStream
output ACRGUARD_REGISTRIES string = join(registryInfo.outputs.registryEntries, ',')
