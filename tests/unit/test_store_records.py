"""The stores' one codec: what it refuses to write is exactly what it could not read back."""

import math

import pytest

from core.adapters.stores._records import dump_job, load_job
from core.domain.job import Job, JobSource
from core.ports import UnreadableRecordError
from tests.support.unreadable import UNREADABLE_DOCS, job_record, unreadable_doc


def job(**changes):
    fields = {
        "id": "job-1",
        "tenant": "t",
        "pattern_id": "p",
        "source": JobSource(kind="url", url="https://img.example/a.png"),
        "created_at": 1_700_000_000.5,
        "updated_at": 1_700_000_001.0,
    }
    fields.update(changes)
    return Job(**fields)


@pytest.mark.parametrize(
    "changes",
    [
        {"extras": {"note": "\ud800"}},  # a lone surrogate: no UTF-8 reader can take it
        {"manifest": {"deep": ["\udfff"]}},
        {"created_at": math.nan},
        {"updated_at": math.inf},
        {"created_at": 10**400},  # an int no float can hold
        {"created_at": "yesterday"},
        {"attempts": True},
        {"source": JobSource(kind="ftp", url="x")},  # type: ignore[arg-type]
    ],
)
def test_dump_refuses_what_could_not_be_read_back(changes):
    with pytest.raises(ValueError):
        dump_job(job(**changes))


def test_astral_characters_and_big_ints_in_free_fields_round_trip():
    kept = job(extras={"emoji": "\U0001f600", "n": 10**30}, manifest={"name": "naïve ✓"})
    assert load_job(kept.id, dump_job(kept)) == (kept, None)


@pytest.mark.parametrize("kind", sorted(UNREADABLE_DOCS))
def test_load_names_the_record_and_hides_the_cause(kind):
    raw = unreadable_doc(kind, job_record("job-9", "t", created_at=1.0, updated_at=2.0))
    with pytest.raises(UnreadableRecordError) as caught:
        load_job("job-9", raw)
    assert (caught.value.kind, caught.value.record_id) == ("job", "job-9")
    assert caught.value.reason  # the decoder's exception type, for the logs


def test_load_refuses_a_document_that_is_not_text():
    with pytest.raises(UnreadableRecordError):
        load_job("job-9", b'{"id": "job-9"}')
