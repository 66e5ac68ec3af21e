// The function's storage account: the Functions host's own state (identity-based AzureWebJobsStorage), the
// deployment container Flex Consumption runs the package from, the scan queues and the container holding
// the vulnerability database both the function and the job read. Shared keys are off: Entra ID only.
param location string
param tags object
param resourceToken string

var deploymentContainerName = 'deployment'
var vulndbContainerName = 'vulndb'
// scanner/azure/deployment.py QUEUES: the scan queue and the event dead letters, each with its -poison queue.
var queueNames = [
  'scan-requests'
  'scan-requests-poison'
  'acrguard-event-dead-letters'
  'acrguard-event-dead-letters-poison'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_43:'st' and a 13-character uniqueString are 15 lowercase letters and digits, within the rules; checkov cannot evaluate the interpolation
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  //checkov:skip=CKV_AZURE_206:locally redundant is enough for a queue of scan requests and a database rebuilt from the feeds every 6 hours; choose ZRS/GRS by changing the SKU
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    //checkov:skip=CKV_AZURE_59:Flex Consumption without VNet integration and the Container Apps consumption environment reach the account over its public endpoint; access is Entra ID only (shared keys off)
    publicNetworkAccess: 'Enabled'
    //checkov:skip=CKV_AZURE_35:a deny-by-default firewall would shut out the function and the job, which have no fixed addresses without VNet integration
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      services: {
        blob: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource vulndb 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: vulndbContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for name in queueNames: {
  parent: queues
  name: name
}]

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
output vulndbContainerName string = vulndbContainerName
output vulndbBlobUrl string = '${account.properties.primaryEndpoints.blob}${vulndbContainerName}/vulndb.sqlite.zst'
output scanQueueName string = queueNames[0]
