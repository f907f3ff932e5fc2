"""SQS entry point: each message is one work item (dispatch one accepted job to ImgGo).

Powertools' BatchProcessor reports failed messages in `batchItemFailures` (the event
source mapping must enable ReportBatchItemFailures), so SQS redelivers only those and
deletes the rest: one bad item never re-drives the good ones.

A message is reported failed when
- it is poison: not a work item we wrote (decode_work_item refuses it) or its job does
  not exist. It will fail every time; after the queue's maxReceiveCount it lands in
  the dead-letter queue, where it can be inspected;
- ImgGo is unavailable (UnavailableError): retried after the visibility timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers_aws.observability import LazyHandler, observability
from handlers_aws.runtime import current

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

_processor: BatchProcessor | None = None


class WorkItemFailedError(Exception):
    """Raised for a record BatchProcessor must report failed (retry, then DLQ)."""


def _record(record: SQSRecord) -> str:
    from core.service.work import Verdict, handle_work_message

    result = handle_work_message(current().services, record.body)
    log = observability().logger
    if result.verdict is Verdict.POISON:
        log.warning("poison message %s: %s", record.message_id, result.reason)
        raise WorkItemFailedError(result.reason)
    if result.verdict is Verdict.RETRY:
        log.info("job %s not dispatched yet, will retry: %s", result.job_id, result.reason)
        raise WorkItemFailedError(result.reason)
    assert result.job is not None
    return result.job.status.value


def _handle(event: Any, context: Any) -> PartialItemFailureResponse:
    global _processor
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    if _processor is None:
        # Not raising when every record failed: the response already names them all,
        # which is exactly what SQS needs to redeliver (and later dead-letter) them.
        _processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    current().refresh_if_due()
    return process_partial_response(
        event=event, record_handler=_record, processor=_processor, context=context
    )


handler = LazyHandler(_handle)
