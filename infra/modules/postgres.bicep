// The findings store: PostgreSQL flexible server with Entra ID authentication only (no password
// authentication, no administrator password). The scan job's identity is made an Entra administrator here;
// the function's in postgres-function-admin.bicep (after this one: the server takes one administrator at a time).
param location string
param tags object
param resourceToken string
param skuName string
param skuTier string
@description('The function app\'s name: its system-assigned identity\'s PostgreSQL role')
param functionAppName string
param jobIdentityName string
param jobIdentityPrincipalId string

@description('Storage of the server, in GiB (grows on its own when full)')
param storageSizeGB int = 32

var databaseName = 'acrguard'

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: 'psql-${resourceToken}'
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: '16'
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    // Geo-redundant backup doubles the backup cost; findings can be rebuilt by rescanning: left to the operator.
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: subscription().tenantId
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

// Azure services only (the 0.0.0.0 rule): Flex Consumption without VNet integration and the Container Apps
// consumption environment have no fixed outbound addresses. Sign-in still needs an Entra token of an admin.
resource azureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

resource jobAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: jobIdentityPrincipalId
  dependsOn: [
    database
    azureServices
  ]
  properties: {
    principalType: 'ServicePrincipal'
    principalName: jobIdentityName
    tenantId: subscription().tenantId
  }
}

output serverName string = server.name
output host string = server.properties.fullyQualifiedDomainName
output databaseName string = databaseName
// The store URLs: an Entra principal's PostgreSQL role is its name; the token is the password (ACRGUARD_STORE_AUTH=entra).
output functionStoreUrl string = 'postgresql://${functionAppName}@${server.properties.fullyQualifiedDomainName}/${databaseName}'
output jobStoreUrl string = 'postgresql://${jobIdentityName}@${server.properties.fullyQualifiedDomainName}/${databaseName}'
output jobAdminName string = jobAdmin.name
