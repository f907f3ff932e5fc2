"""Azure Functions (Python v2 programming model) entry points: `handlers_azure.app` holds
the one FunctionApp; `function_app.py` at the repository root imports it for the host."""
