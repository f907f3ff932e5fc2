"""SQS entry point: each message is one work item; the verdict is the core's.

Powertools' BatchProcessor reports failed messages in `batchItemFailures` (the event
source mapping enables ReportBatchItemFailures), so SQS redelivers only those:

    verdict   what SQS is told
    DONE      success: the message is deleted
    POISON    success: deleted (the core logged it, counted it, recorded its job)
    RETRY     item failure: visible again after the visibility timeout; after the
              queue's maxReceiveCount it moves to the dead-letter queue
    DEFER     success: the core sent it again with DelaySeconds (no ImgGo budget yet),
              so a deferral never spends a receive count

A record is not started without time for its worst case (the core decides; see
core.platform.FunctionHost.queue_message): it is reported failed instead, so a batch
never runs into the function timeout and loses its whole report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from handlers_aws.observability import LazyHandler
from handlers_aws.runtime import host, time_left

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

_processor: BatchProcessor | None = None


class WorkItemFailedError(Exception):
    """Raised for a record BatchProcessor must report failed (redelivered later)."""


def _record_handler(remaining: Callable[[], float] | None) -> Callable[[SQSRecord], str]:
    def record(record: SQSRecord) -> str:
        outcome = host().queue_message(
            record.body, message_id=record.message_id, time_left=remaining
        )
        if not outcome.acknowledge:
            raise WorkItemFailedError(outcome.code)
        return outcome.code or "done"

    return record


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
    return process_partial_response(
        event=event,
        record_handler=_record_handler(time_left(context)),
        processor=_processor,
        context=context,
    )


handler = LazyHandler(_handle)
