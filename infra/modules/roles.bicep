// Every role the Functions host's identity and acrguard's identity (the function's code, the scan job) hold
// on this resource group's resources, each with its reason in scanner/azure/deployment.py NEEDED_ROLES
// (tests/infra checks one against the other). The monitored registries' roles: monitored-registry.bicep.
param storageAccountName string
param vulndbContainerName string
param workspaceName string
param dataCollectionRuleName string
param appInsightsName string
param imageRegistryName string
param hostPrincipalId string
param appPrincipalId string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource vulndb 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobs
  name: vulndbContainerName
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource rule 'Microsoft.Insights/dataCollectionRules@2022-06-01' existing = {
  name: dataCollectionRuleName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource imageRegistry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: imageRegistryName
}

// Storage Blob Data Owner: the host's identity-based AzureWebJobsStorage and the deployment container.
resource hostStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, hostPrincipalId, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: hostPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher: Application Insights takes telemetry by Entra ID only (local auth off).
resource hostTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, hostPrincipalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: hostPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor: the function sends scan requests and dead letters; the job receives,
// renews and deletes them; KEDA reads the queue's length.
resource appQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor: the update timer publishes the vulnerability database; the job downloads it.
resource appVulndb 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vulndb.id, appPrincipalId, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: vulndb
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Log Analytics Reader: the resource-log timer queries the registries' ContainerRegistryRepositoryEvents.
resource appWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appPrincipalId, '73c42c96-874c-492b-b04d-ab87d138a893')
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '73c42c96-874c-492b-b04d-ab87d138a893')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher: the findings export (Logs Ingestion API) through the data collection rule.
resource appExport 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rule.id, appPrincipalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: rule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// AcrPull: the job pulls its own image from the project registry.
resource appImagePull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(imageRegistry.id, appPrincipalId, '7f951dda-4ed3-4680-a7ca-43fe172d538d')
  scope: imageRegistry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}
