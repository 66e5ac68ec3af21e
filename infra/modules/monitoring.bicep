// Log Analytics (the registries' resource log, the job's logs, the findings export table), Application
// Insights for the function (Entra-only ingestion), and the data collection endpoint and rule through which
// the findings export writes rows (Logs Ingestion API).
param location string
param tags object
param resourceToken string

@description('Days of data kept in the workspace (the first 31 are included in the ingestion price)')
param retentionInDays int = 30

var findingsTable = 'AcrguardFindings_CL'
var findingsStream = 'Custom-AcrguardFindings_CL'
// Defender's SecurityNestedRecommendation columns, so KQL written for its export works after a table rename;
// scanner/report/defender_export.py EXPORT_COLUMNS (tests/infra checks they agree).
var findingsColumns = [
  {
    name: 'TimeGenerated'
    type: 'datetime'
  }
  {
    name: 'Id'
    type: 'string'
  }
  {
    name: 'NestedRecommendationId'
    type: 'string'
  }
  {
    name: 'ParentRecommendationId'
    type: 'string'
  }
  {
    name: 'RecommendationName'
    type: 'string'
  }
  {
    name: 'RecommendationSeverity'
    type: 'string'
  }
  {
    name: 'RecommendationState'
    type: 'string'
  }
  {
    name: 'RecommendationSubscriptionId'
    type: 'string'
  }
  {
    name: 'RecommendationLink'
    type: 'string'
  }
  {
    name: 'Description'
    type: 'string'
  }
  {
    name: 'Cause'
    type: 'string'
  }
  {
    name: 'Category'
    type: 'string'
  }
  {
    name: 'Impact'
    type: 'string'
  }
  {
    name: 'RemediationDescription'
    type: 'string'
  }
  {
    name: 'AssessedResourceId'
    type: 'string'
  }
  {
    name: 'ResourceGroup'
    type: 'string'
  }
  {
    name: 'ResourceProviderType'
    type: 'string'
  }
  {
    name: 'ResourceDetails'
    type: 'dynamic'
  }
  {
    name: 'AdditionalData'
    type: 'dynamic'
  }
  {
    name: 'IsSnapshot'
    type: 'boolean'
  }
]

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource findings 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: workspace
  name: findingsTable
  properties: {
    retentionInDays: retentionInDays
    schema: {
      name: findingsTable
      columns: findingsColumns
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

resource endpoint 'Microsoft.Insights/dataCollectionEndpoints@2022-06-01' = {
  name: 'dce-${resourceToken}'
  location: location
  tags: tags
  properties: {
    networkAcls: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource rule 'Microsoft.Insights/dataCollectionRules@2022-06-01' = {
  name: 'dcr-${resourceToken}'
  location: location
  tags: tags
  dependsOn: [
    findings
  ]
  properties: {
    dataCollectionEndpointId: endpoint.id
    streamDeclarations: {
      'Custom-AcrguardFindings_CL': {
        columns: findingsColumns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'workspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          findingsStream
        ]
        destinations: [
          'workspace'
        ]
        transformKql: 'source'
        outputStream: findingsStream
      }
    ]
  }
}

output workspaceId string = workspace.id
output workspaceName string = workspace.name
output workspaceCustomerId string = workspace.properties.customerId
output appInsightsName string = appInsights.name
output dataCollectionRuleName string = rule.name
output dataCollectionRuleImmutableId string = rule.properties.immutableId
output ingestionEndpoint string = endpoint.properties.logsIngestion.endpoint
output findingsStream string = findingsStream
