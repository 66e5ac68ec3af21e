// acrguard's identity: the scan job's, and the one the function's code signs in with (AZURE_CLIENT_ID). One
// identity because both processes write the same PostgreSQL tables, and PostgreSQL objects belong to the role
// that created them: two Entra roles would lock each other out. User-assigned, so its roles exist before the job.
param location string
param tags object
param resourceToken string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-acrguard-${resourceToken}'
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
