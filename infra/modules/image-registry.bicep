// The project's own registry: azd deploy builds the scan job's image from the Dockerfile and pushes it here;
// the job pulls it with its managed identity (no admin user).
param location string
param tags object
param resourceToken string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: 'cr${resourceToken}'
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_233:zone redundancy needs the Premium SKU; one image that azd deploy can push again does not justify it
  //checkov:skip=CKV_AZURE_166:image quarantine needs the Premium SKU and this registry only holds acrguard's own image
  sku: {
    name: 'Basic'
  }
  //checkov:skip=CKV_AZURE_163:scanning images is acrguard's job: add this registry to the monitored ones to have acrguard scan its own image
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    //checkov:skip=CKV_AZURE_139:azd deploy pushes from the developer's machine over the public endpoint; Entra ID only (admin user off)
    publicNetworkAccess: 'Enabled'
  }
}

output name string = registry.name
output loginServer string = registry.properties.loginServer
