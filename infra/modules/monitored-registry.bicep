// What one monitored registry needs, deployed in the registry's own resource group: the identities' roles on
// it, its resource log sent to the workspace, and the Event Grid system topic with the subscription that
// delivers pushes and deletes to the function's acr_events trigger.
param registryName string
param functionAppId string
param appPrincipalId string
param workspaceId string
param enableGates bool
param deployEventSubscription bool

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

// AcrPull: the job fetches the images it scans; the function resolves a manual scan's tag to its digest.
resource appPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, appPrincipalId, '7f951dda-4ed3-4680-a7ca-43fe172d538d')
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// AcrPush, gates only: `lock` sets a manifest's readEnabled (metadata_write, carried by the push permission).
// The worker applies gates after a scan, the function's rescan timer after a re-match.
resource appLock 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableGates) {
  name: guid(registry.id, appPrincipalId, '8311e382-0749-4cb8-b61a-304f252e45ec')
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '8311e382-0749-4cb8-b61a-304f252e45ec')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// AcrQuarantineWriter, gates only: `quarantine` sets a manifest's quarantineState.
resource appQuarantine 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableGates) {
  name: guid(registry.id, appPrincipalId, 'c8d4ff99-41c3-41a8-9f60-21dfdad59608')
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'c8d4ff99-41c3-41a8-9f60-21dfdad59608')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Pulls and imports reach acrguard only through the resource log (Event Grid has no pull event).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'acrguard'
  scope: registry
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'ContainerRegistryRepositoryEvents'
        enabled: true
      }
    ]
  }
}

// A registry has at most one system topic: a registry that already has one must be given this subscription
// on that topic instead (README, Deploy to Azure).
resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'acrguard-${registryName}'
  location: registry.location
  properties: {
    source: registry.id
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

// Only once the function code is deployed: Event Grid refuses a subscription to a function that does not exist.
resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (deployEventSubscription) {
  parent: topic
  name: 'acrguard-scan'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/acr_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.ContainerRegistry.ImagePushed'
        'Microsoft.ContainerRegistry.ImageDeleted'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output loginServer string = registry.properties.loginServer
