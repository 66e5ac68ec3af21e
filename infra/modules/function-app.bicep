// The Function App: Flex Consumption, Python 3.11. Its system-assigned identity is the host's (its storage,
// the deployment container, telemetry); its code signs in as acrguard's identity (AZURE_CLIENT_ID), shared
// with the scan job. No key or connection string in the settings (scanner/azure/deployment.py NEEDED_SETTINGS).
param location string
param tags object
param resourceToken string
@description('The app name, which is also its identity\'s PostgreSQL role (main.bicep builds the store URL from it)')
param name string
param storageAccountName string
param appInsightsName string
param storeUrl string
param appIdentityId string
param appIdentityClientId string
param queueUrl string
param dbBlobUrl string
param registries string
param registryResources string
param logWorkspaceId string
param exportEndpoint string
param exportRuleId string
param exportRegistryIds string
param apiAudience string
param dashboardClientId string
@description('Key Vault secret URI of the dashboard registration\'s client secret; the setting holds only a reference to it')
param dashboardClientSecretUri string

@description('Instances Flex Consumption may scale out to')
param maximumInstanceCount int = 40

@description('Memory of each instance (2048 or 4096)')
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  //checkov:skip=CKV_AZURE_225:zone redundancy of a Flex Consumption plan is offered in some regions only; set zoneRedundant where it is
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero on demand; always-ready instances are a cost the operator opts into
  //checkov:skip=CKV_AZURE_213:App Service health checks are not offered on Flex Consumption; the platform replaces failed instances
  //checkov:skip=CKV_AZURE_16:the site has both identities; the check accepts 'SystemAssigned' or 'UserAssigned' alone, not the combined type ARM defines
  identity: {
    type: 'SystemAssigned, UserAssigned'
    userAssignedIdentities: {
      '${appIdentityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: appIdentityId
    //checkov:skip=CKV_AZURE_222:Event Grid and the HTTP API's callers reach the app over its public endpoint; every route needs a function key, an Entra token or acrguard's key
    publicNetworkAccess: 'Enabled'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}deployment'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    //checkov:skip=CKV_AZURE_17:no client certificates: Event Grid presents none; callers authenticate with a function key or an Entra token
    siteConfig: {
      // The settings the code needs (scanner/azure/deployment.py NEEDED_SETTINGS); the host retries its storage
      // until the roles made for this identity (roles.bicep) take effect, minutes after the first deployment.
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD'
        }
        {
          // DefaultAzureCredential in the code: acrguard's identity (the host's settings name no client id:
          // the host signs in as the system-assigned identity)
          name: 'AZURE_CLIENT_ID'
          value: appIdentityClientId
        }
        {
          name: 'ACRGUARD_STORE'
          value: storeUrl
        }
        {
          name: 'ACRGUARD_STORE_AUTH'
          value: 'entra'
        }
        {
          name: 'ACRGUARD_QUEUE'
          value: queueUrl
        }
        {
          name: 'ACRGUARD_DB'
          value: '/tmp/acrguard-vulndb.sqlite'
        }
        {
          name: 'ACRGUARD_DB_BLOB_URL'
          value: dbBlobUrl
        }
        {
          name: 'ACRGUARD_REGISTRIES'
          value: registries
        }
        {
          name: 'ACRGUARD_REGISTRY_RESOURCES'
          value: registryResources
        }
        {
          name: 'ACRGUARD_LOG_WORKSPACE_ID'
          value: logWorkspaceId
        }
        {
          name: 'ACRGUARD_EXPORT_ENDPOINT'
          value: exportEndpoint
        }
        {
          name: 'ACRGUARD_EXPORT_RULE_ID'
          value: exportRuleId
        }
        {
          name: 'ACRGUARD_EXPORT_REGISTRY_IDS'
          value: exportRegistryIds
        }
        {
          name: 'ACRGUARD_TRUST_FUNCTIONS_HOST'
          value: 'true'
        }
        {
          name: 'ACRGUARD_ENTRA_TENANT_ID'
          value: empty(apiAudience) && empty(dashboardClientId) ? '' : subscription().tenantId
        }
        {
          // Without an API registration of its own, the API takes the dashboard registration's tokens (same app roles).
          name: 'ACRGUARD_ENTRA_AUDIENCE'
          value: empty(apiAudience) ? dashboardClientId : apiAudience
        }
        {
          name: 'ACRGUARD_ENTRA_CLIENT_ID'
          value: dashboardClientId
        }
        {
          // A Key Vault reference, resolved by the platform with acrguard's identity: the secret is not here.
          name: 'ACRGUARD_ENTRA_CLIENT_SECRET'
          value: empty(dashboardClientSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${dashboardClientSecretUri})'
        }
      ]
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
  }
}

output id string = site.id
output name string = site.name
output hostPrincipalId string = site.identity.principalId
output url string = 'https://${site.properties.defaultHostName}'
