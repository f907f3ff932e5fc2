"""S3 entry point: an object landed (through a presigned PUT); the core decides.

S3 URL-encodes the key in the event (a space as '+'; Powertools' S3Object.key hands it
over still encoded), so it is decoded here; the event has no content type, which the
core reads from the bucket. Lambda invokes this asynchronously:

    verdict   what Lambda is told
    DONE      return (the event is done; repeats are no-ops in the core)
    POISON    return (the core logged it and rejected the job where there is one)
    RETRY     raise, after every record was tried: Lambda retries the event, then
              sends it to the on-failure destination (template.yaml: UploadFailureQueue)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from core.service.work import Verdict
from handlers_aws.observability import LazyHandler
from handlers_aws.runtime import host


class UploadEventFailedError(Exception):
    """Raised so Lambda retries the event (and finally sends it to its destination)."""


def _handle(event: Any, context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.data_classes import S3Event

    outcomes: list[dict[str, Any]] = []
    for record in S3Event(event).records:
        name = unquote_plus(record.s3.get_object.key)
        if not record.event_name.startswith("ObjectCreated"):
            outcomes.append({"key": name, "verdict": Verdict.DONE.value, "code": "skipped"})
            continue
        outcome = host().object_landed(record.s3.bucket.name, name, size=record.s3.get_object.size)
        outcomes.append(
            {
                "key": name,
                "verdict": outcome.verdict.value,
                "code": outcome.code,
                "job_id": outcome.job_id,
                "status": outcome.job.status.value if outcome.job else None,
            }
        )
    retry = [o["key"] for o in outcomes if o["verdict"] == Verdict.RETRY.value]
    if retry:
        raise UploadEventFailedError(f"{len(retry)} upload(s) to retry: {retry}")
    return {"records": outcomes}


handler = LazyHandler(_handle)
