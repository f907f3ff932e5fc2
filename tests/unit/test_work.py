from core.domain.job import JobStatus
from core.ports import ImageApiError, WorkItem
from core.service.batch import BatchItem, run_batch
from core.service.messages import encode_work_item
from core.service.work import Verdict, handle_work_message
from tests.fakes import FakeImggo, make_services


class ListQueue:
    def __init__(self):
        self.items = []

    max_delay_s = 900.0

    def send(self, items, *, delay_s=0.0):
        self.items.extend(items)


def test_verdicts_for_every_kind_of_message():
    imggo = FakeImggo()
    services = make_services(imggo=imggo)
    services.queue = ListQueue()
    run_batch(services, "t", "invoice", [BatchItem(image_url="https://images.example/1.png")])
    body = encode_work_item(services.queue.items[0])

    imggo.fail_next.append(ImageApiError("busy", status=503, retryable=True))
    assert handle_work_message(services, body).verdict is Verdict.RETRY
    done = handle_work_message(services, body)
    assert done.verdict is Verdict.DONE and done.job.status is JobStatus.QUEUED
    assert handle_work_message(services, body).verdict is Verdict.DONE  # a repeat
    assert len(imggo.jobs) == 1

    poison = handle_work_message(services, b"not ours")
    assert (poison.verdict, poison.code) == (Verdict.POISON, "bad_message")
    missing = handle_work_message(services, encode_work_item(WorkItem("gone")))
    assert (missing.verdict, missing.code, missing.job_id) == (
        Verdict.POISON,
        "job_missing",
        "gone",
    )
