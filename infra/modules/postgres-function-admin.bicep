// The function's identity as the second Entra administrator of the findings store; jobAdminName only
// orders it after the first (the server rejects concurrent administrator changes).
param serverName string
param functionAppName string
param functionPrincipalId string
param jobAdminName string

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' existing = {
  name: serverName
}

resource functionAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: functionPrincipalId
  properties: {
    principalType: 'ServicePrincipal'
    principalName: functionAppName
    tenantId: subscription().tenantId
  }
}

output name string = functionAdmin.name
output after string = jobAdminName
