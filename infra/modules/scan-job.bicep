// The scan job: a Container Apps job started by KEDA's azure-queue scaler while scan requests wait, each
// execution running `acrguard worker --runner none` until the queue is empty (the container is the sandbox).
// acrguard's identity (app-identity.bicep) pulls the image, reads the queue (the scaler too), the database blob
// and PostgreSQL.
param location string
param tags object
param resourceToken string
param image string
param identityId string
param identityClientId string
param imageRegistryServer string
param workspaceId string
param storageAccountName string
param scanQueueName string
param storeUrl string
param queueUrl string
param dbBlobUrl string
param registries string
param exportEndpoint string
param exportRuleId string
param exportRegistryIds string

@description('Executions running at once at most')
param maxExecutions int = 10

@description('Scan requests waiting per execution started')
param queueLength int = 5

// Until azd deploy has pushed the scanner image, a public placeholder keeps the job valid.
var placeholderImage = 'mcr.microsoft.com/k8se/quickstart-jobs:latest'

resource containerEnvironment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: 'cae-${resourceToken}'
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
  }
}

// The environment's console and system logs go to the workspace through diagnostic settings: no shared key.
resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs'
  scope: containerEnvironment
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

resource job 'Microsoft.App/jobs@2025-01-01' = {
  name: 'job-scan-${resourceToken}'
  location: location
  tags: union(tags, {
    'azd-service-name': 'worker'
  })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: containerEnvironment.id
    configuration: {
      triggerType: 'Event'
      // A scan that fails is retried by the queue (backoff, dead letter), not by the platform.
      replicaRetryLimit: 0
      replicaTimeout: 3600
      eventTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
        scale: {
          minExecutions: 0
          maxExecutions: maxExecutions
          pollingInterval: 30
          rules: [
            {
              name: 'scan-queue'
              type: 'azure-queue'
              metadata: {
                accountName: storageAccountName
                queueName: scanQueueName
                queueLength: string(queueLength)
              }
              identity: identityId
            }
          ]
        }
      }
      registries: [
        {
          server: imageRegistryServer
          identity: identityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'worker'
          image: empty(image) ? placeholderImage : image
          command: [
            'acrguard'
            'worker'
            '--runner'
            'none'
          ]
          env: [
            {
              name: 'AZURE_CLIENT_ID'
              value: identityClientId
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
          ]
          resources: {
            cpu: json('2.0')
            memory: '4Gi'
          }
        }
      ]
    }
  }
}

output name string = job.name
output environmentName string = containerEnvironment.name
