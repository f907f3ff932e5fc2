"""S3 entry point: an object landed under `incoming/` through a presigned PUT.

For each ObjectCreated record: map the object key (S3 URL-encodes it in the event, a
space as '+'; Powertools' per-record S3Object.key hands it over still encoded, so it is
decoded here) back to the store key, read the object's size and
type (the event has no content type), and hand it to the core's `upload_landed`,
which checks it against the declaration and dispatches the job to ImgGo with a
presigned GET URL. Repeated events are no-ops in the core.

A record that fails raises after the others were handled, so Lambda's asynchronous
retries run the event again (the handled records are no-ops the second time).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from handlers_aws.observability import LazyHandler, observability
from handlers_aws.runtime import current


def _handle(event: Any, context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.data_classes import S3Event

    from core.adapters.aws.s3_blobs import S3BlobStore
    from core.service.uploads import parse_upload_key, upload_landed

    log = observability().logger
    runtime = current()
    runtime.refresh_if_due()
    services = runtime.services
    blobs = services.blobs
    if not isinstance(blobs, S3BlobStore):
        raise RuntimeError("the upload trigger needs IMGGO_FN_BLOB_URL=s3://bucket[/prefix]")
    outcomes: list[dict[str, Any]] = []
    failures: list[str] = []
    for record in S3Event(event).records:
        object_key = unquote_plus(record.s3.get_object.key)
        outcome: dict[str, Any] = {"key": object_key}
        outcomes.append(outcome)
        if record.s3.bucket.name != blobs.bucket:
            outcome["skipped"] = f"bucket {record.s3.bucket.name} is not {blobs.bucket}"
            log.warning("ignoring %s: %s", object_key, outcome["skipped"])
            continue
        key = blobs.key_for_object(record.s3.bucket.name, object_key)
        created = record.event_name.startswith("ObjectCreated")
        # Not one of our keys: skipped before spending a HEAD request on it.
        if not created or key is None or parse_upload_key(key) is None:
            outcome["skipped"] = "not an upload"
            continue
        try:
            described = blobs.describe(key)
            if described is None:
                outcome["skipped"] = "the object is gone"
                continue
            job = upload_landed(
                services, key, size=described.size, content_type=described.content_type
            )
        except Exception:
            log.exception("upload %s could not be taken in", object_key)
            failures.append(object_key)
            outcome["error"] = True
            continue
        if job is None:
            outcome["skipped"] = "no matching upload job"
        else:
            outcome.update(job_id=job.id, status=job.status.value)
            log.info("upload %s -> job %s %s", object_key, job.id, job.status.value)
    if failures:
        raise RuntimeError(f"{len(failures)} upload(s) failed: {failures}")
    return {"records": outcomes}


handler = LazyHandler(_handle)
