// One monitored registry's login server (deployed in the registry's resource group; creates nothing).
param registryName string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

output loginServer string = registry.properties.loginServer
