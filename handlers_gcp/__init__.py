"""Google Cloud Functions (gen2) handlers on functions-framework: thin translators.

The entry points live in `handlers_gcp.functions`; the root `main.py` imports them, as
`gcloud functions deploy --entry-point NAME` expects. Importing this package builds
nothing: services are built on the first invocation (`handlers_gcp.runtime`).
"""

__all__: list[str] = []
