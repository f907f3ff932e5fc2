"""What `func azure functionapp publish` indexes: the one FunctionApp of handlers_azure."""

from handlers_azure.app import app  # noqa: F401 - the host finds `app` here
