// The findings store: PostgreSQL flexible server with Entra ID authentication only (no password
// authentication, no administrator password). acrguard's identity (app-identity.bicep), which the function's
// code and the scan job share, is its Entra administrator and the one role owning the store's tables.
param location string
param tags object
param resourceToken string
param skuName string
param skuTier string
param identityName string
param identityPrincipalId string

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

resource admin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: identityPrincipalId
  dependsOn: [
    database
    azureServices
  ]
  properties: {
    principalType: 'ServicePrincipal'
    principalName: identityName
    tenantId: subscription().tenantId
  }
}

output serverName string = server.name
output host string = server.properties.fullyQualifiedDomainName
output databaseName string = databaseName
// The store URL: an Entra principal's PostgreSQL role is its name; the token is the password (ACRGUARD_STORE_AUTH=entra).
output storeUrl string = 'postgresql://${identityName}@${server.properties.fullyQualifiedDomainName}/${databaseName}'
output adminName string = admin.name
