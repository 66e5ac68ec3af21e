// Every role the function and the scan job hold on this resource group's resources, each with the reason in
// scanner/azure/deployment.py NEEDED_ROLES (tests/infra checks one against the other). The monitored
// registries' roles are in monitored-registry.bicep.
param storageAccountName string
param vulndbContainerName string
param workspaceName string
param dataCollectionRuleName string
param appInsightsName string
param imageRegistryName string
param functionPrincipalId string
param jobPrincipalId string

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
resource functionHostStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor: the function sends scan requests and dead-letters events.
resource functionQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor: the job receives, renews and deletes scan requests; KEDA reads the length.
resource jobQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, jobPrincipalId, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor: the update timer publishes the vulnerability database and its manifest.
resource functionVulndb 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vulndb.id, functionPrincipalId, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: vulndb
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Reader: the job downloads the published database.
resource jobVulndb 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vulndb.id, jobPrincipalId, '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1')
  scope: vulndb
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1')
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Log Analytics Reader: the resource-log timer queries the registries' ContainerRegistryRepositoryEvents.
resource functionWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, functionPrincipalId, '73c42c96-874c-492b-b04d-ab87d138a893')
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '73c42c96-874c-492b-b04d-ab87d138a893')
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher: the findings export (Logs Ingestion API) through the data collection rule.
resource functionExport 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rule.id, functionPrincipalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: rule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource jobExport 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rule.id, jobPrincipalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: rule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher: Application Insights takes telemetry by Entra ID only (local auth off).
resource functionTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionPrincipalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// AcrPull: the job pulls its own image from the project registry.
resource jobImagePull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(imageRegistry.id, jobPrincipalId, '7f951dda-4ed3-4680-a7ca-43fe172d538d')
  scope: imageRegistry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
  }
}
