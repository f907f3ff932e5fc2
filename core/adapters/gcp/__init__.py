"""Google Cloud adapters: GCS blobs (V4 signed URLs), a Pub/Sub work queue, Secret Manager.

Each module imports its google-cloud library only when the adapter first needs it, so a
cold start that never touches, say, Pub/Sub never pays for importing it; `errors`
(which failures are transient, the retry policy) imports google-api-core only when it
classifies a failure or builds a policy. The Firestore job store lives with the other
stores (core.adapters.stores.firestore).
"""
