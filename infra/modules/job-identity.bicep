// The scan job's identity. User-assigned, so that its roles (AcrPull on the image registry above all) exist
// before the job does: a job's system-assigned identity would be created with the job, too late to pull.
param location string
param tags object
param resourceToken string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-scan-job-${resourceToken}'
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
