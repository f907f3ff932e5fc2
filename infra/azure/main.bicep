// imggo-functions on Azure: one Function App (Flex Consumption, Python 3.11) running
// handlers_azure, its storage account (job table, work queue and its -poison queue,
// uploads container), the Event Grid subscription that feeds upload_landed, a Key Vault
// for the secrets (RBAC authorization; app settings are Key Vault references), and
// Application Insights on a Log Analytics workspace.
//
// One user-assigned identity does everything the app does, holding only data-plane
// roles scoped to this storage account and this vault; no storage key or secret value
// is ever in the template or the app settings (deploy steps: docs/deploy-azure.md).
//
// The names of the queue, container and table here are the defaults of
// handlers_azure.runtime (AZURE_DEFAULTS); tests/descriptors/test_bicep.py holds them
// together.

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Prefix of every resource name (lowercase letters and digits).')
@minLength(3)
@maxLength(10)
param baseName string = 'imggofn'

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param storageAccountName string = '${baseName}${uniqueString(resourceGroup().id)}'

@description('Key Vault name (3-24 letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(24)
param keyVaultName string = '${baseName}-${uniqueString(resourceGroup().id)}'

@description('Function App name (globally unique: it is the host name).')
param functionAppName string = '${baseName}-${uniqueString(resourceGroup().id)}'

@description('Job table (letters and digits only).')
param jobsTableName string = 'imggojobs'

@description('Work queue; the Functions host moves what it gives up on to <name>-poison.')
param workQueueName string = 'imggo-work'

@description('Container of direct uploads; upload_landed fires for its incoming/ blobs.')
param uploadContainerName string = 'imggo-uploads'

@description('ImgGo API base URL (the host only: the API paths start with /api).')
param imggoBaseUrl string = 'https://api.imggo.ai'

@description('Key Vault secret holding the ImgGo API key.')
param apiKeySecretName string = 'imggo-api-key'

@description('Key Vault secret holding the ImgGo webhook signing secret(s), comma-separated.')
param webhookSecretName string = 'imggo-webhook-secret'

@description('Key Vault secret holding the client API keys (IMGGO_FN_API_KEYS).')
param clientKeysSecretName string = 'imggo-fn-api-keys'

@description('Seconds secrets read from the vault are cached by the core.')
param secretsTtlSeconds int = 300

@description('NCRONTAB schedule of the reconcile timer.')
param reconcileSchedule string = '0 */5 * * * *'

@description('Upper bound of Flex Consumption instances.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of one instance (MB).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Create the Event Grid subscription to upload_landed. Its endpoint needs the blobs_extension key, which exists only once the code is published: deploy with false, publish, then deploy again with true.')
param subscribeUploads bool = false

@description('Days Log Analytics keeps logs.')
param logRetentionDays int = 30

// Built-in role definition ids (the same in every tenant).
var roles = {
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}
var deploymentContainerName = 'app-package'
var vaultUrl = 'https://${keyVaultName}${environment().suffixes.keyvaultDns}'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${baseName}-identity'
  location: location
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches the account over its public endpoint; access is identity-only (shared keys disabled, no public blobs)
  #checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: no private endpoint in this template, so public network access stays on; every request needs an Entra identity
  #checkov:skip=CKV_AZURE_206: jobs and uploads are short-lived working data (ImgGo keeps the results); locally redundant storage is the cost choice, change the sku for ZRS
  #checkov:skip=CKV_AZURE_43: the name is a parameter (default baseName + uniqueString, lowercase letters and digits) that checkov cannot evaluate; @minLength/@maxLength bound it and ARM rejects a bad one
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource uploadContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: uploadContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource workQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: workQueueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${workQueueName}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource jobsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: jobsTableName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  #checkov:skip=CKV_AZURE_109: without VNet integration the platform resolves Key Vault references over the public endpoint, so the firewall cannot default to deny; access is RBAC-only
  #checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109: no private endpoint in this template, public network access stays enabled
  name: keyVaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${baseName}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${baseName}-insights'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

// Least privilege: data-plane roles only, each scoped to the one resource it is for.
resource tableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource blobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, identity.id, roles.storageBlobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption exists only in some regions and fails the deployment elsewhere; the work queue and job table survive an instance loss
  name: '${baseName}-plan'
  location: location
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_17: clients authenticate with Bearer API keys (core.api) and ImgGo's webhooks are HMAC-signed; neither can present a client certificate
  #checkov:skip=CKV_AZURE_213: Flex Consumption instances are managed by the platform and App Service health check does not replace them; GET /health is there for an external probe
  #checkov:skip=CKV_AZURE_212: Flex Consumption scales out by itself up to maximumInstanceCount; there is no instance count to set
  #checkov:skip=CKV_AZURE_222: public network access is the service itself: clients and ImgGo's webhooks reach it from the internet
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // The host's own storage (triggers, leases, the timer's singleton lock): by identity.
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        // DefaultAzureCredential in the adapters picks the user-assigned identity by this.
        { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'IMGGO_FN_STORE_URL', value: 'azuretables://${jobsTableName}' }
        { name: 'IMGGO_FN_QUEUE_NAME', value: workQueueName }
        { name: 'IMGGO_FN_QUEUE_URL', value: 'azurequeue://${workQueueName}' }
        { name: 'IMGGO_FN_UPLOAD_CONTAINER', value: uploadContainerName }
        { name: 'IMGGO_FN_BLOB_URL', value: 'azureblob://${uploadContainerName}' }
        { name: 'IMGGO_FN_DATA_DIR', value: '/tmp/imggo-fn' }
        { name: 'IMGGO_FN_KEY_VAULT_URL', value: vaultUrl }
        { name: 'IMGGO_FN_RECONCILE_SCHEDULE', value: reconcileSchedule }
        { name: 'IMGGO_FN_SECRETS_TTL_S', value: string(secretsTtlSeconds) }
        { name: 'IMGGO_BASE_URL', value: imggoBaseUrl }
        // Secrets: references the platform resolves with keyVaultReferenceIdentity.
        { name: 'IMGGO_API_KEY', value: '@Microsoft.KeyVault(SecretUri=${vaultUrl}/secrets/${apiKeySecretName}/)' }
        { name: 'IMGGO_WEBHOOK_SECRET', value: '@Microsoft.KeyVault(SecretUri=${vaultUrl}/secrets/${webhookSecretName}/)' }
        { name: 'IMGGO_FN_API_KEYS', value: '@Microsoft.KeyVault(SecretUri=${vaultUrl}/secrets/${clientKeysSecretName}/)' }
      ]
    }
  }
  dependsOn: [
    tableRole
    queueRole
    blobRole
    secretsRole
  ]
}

resource uploadsTopic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: '${baseName}-uploads'
  location: location
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// The Flex Consumption blob trigger (source EventGrid): BlobCreated under incoming/ of
// the uploads container, pushed to the host's blobs extension for upload_landed.
resource uploadsSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = if (subscribeUploads) {
  parent: uploadsTopic
  name: 'upload-landed'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.upload_landed&code=${listKeys('${functionApp.id}/host/default', '2024-04-01').systemKeys.blobs_extension}'
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${uploadContainerName}/blobs/incoming/'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output keyVaultName string = vault.name
output storageAccountName string = storage.name
