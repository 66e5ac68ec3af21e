// The monitored registries' login servers, read from the registries themselves (one created with a
// domain-name label scope is not <name>.azurecr.io), as the entries of ACRGUARD_REGISTRIES and
// ACRGUARD_REGISTRY_RESOURCES. Creates nothing.
param registryIds array

resource registries 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = [for registryId in registryIds: {
  name: last(split(registryId, '/'))
  scope: resourceGroup(split(registryId, '/')[2], split(registryId, '/')[4])
}]

// Reached with the managed identity (ACR's token exchange).
output registryEntries array = [for (registryId, i) in registryIds: '${registries[i].properties.loginServer}=identity']
output resourceEntries array = [for (registryId, i) in registryIds: '${registries[i].properties.loginServer}=${registryId}']
