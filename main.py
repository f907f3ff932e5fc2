from handlers_gcp.functions import *  # noqa: F403 - the entry points gcloud deploys
