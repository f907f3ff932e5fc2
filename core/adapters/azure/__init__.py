"""The Azure adapters: Table Storage job store, Queue Storage, Blob Storage with SAS URLs,
Key Vault secrets. azure-* SDKs are imported only inside this package (and handlers_azure),
each when its adapter is first built."""
