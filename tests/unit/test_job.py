import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain.job import Job, JobError, JobSource, JobStatus, advance, can_move

RANK = {"accepted": 0, "queued": 1, "running": 2, "succeeded": 3, "failed": 3, "rejected": 3}


def make_job(status: JobStatus = JobStatus.ACCEPTED) -> Job:
    return Job(
        id="j1",
        tenant="t",
        pattern_id="p",
        source=JobSource("url", url="https://x/a.png"),
        created_at=1.0,
        updated_at=1.0,
        status=status,
    )


def test_forward_moves_apply_and_stamp_time():
    job = advance(make_job(), JobStatus.QUEUED, now=5.0, imggo_job_id="r1")
    assert job is not None and job.status is JobStatus.QUEUED and job.imggo_job_id == "r1"
    assert job.updated_at == 5.0 and job.completed_at is None
    done = advance(job, JobStatus.SUCCEEDED, now=6.0, manifest={"a": 1})
    assert done is not None and done.manifest == {"a": 1} and done.completed_at == 6.0


def test_repeated_and_stale_news_are_no_ops():
    running = make_job(JobStatus.RUNNING)
    assert advance(running, JobStatus.RUNNING, now=2.0) is None
    assert advance(running, JobStatus.QUEUED, now=2.0) is None
    done = make_job(JobStatus.SUCCEEDED)
    for status in JobStatus:
        assert advance(done, status, now=3.0) is None


def test_rejected_only_from_accepted():
    assert can_move(JobStatus.ACCEPTED, JobStatus.REJECTED)
    assert not can_move(JobStatus.QUEUED, JobStatus.REJECTED)


def test_failed_keeps_error_and_record_round_trips():
    job = advance(
        make_job(JobStatus.QUEUED), JobStatus.FAILED, now=2.0, error=JobError("x", "boom")
    )
    assert job is not None
    assert Job.from_record(job.to_record()) == job


def test_replace_copies_and_refuses_unknown_fields():
    job = make_job()
    moved = job.replace(status=JobStatus.QUEUED, attempts=2)
    assert (moved.status, moved.attempts, moved.id) == (JobStatus.QUEUED, 2, job.id)
    assert job.status is JobStatus.ACCEPTED  # the original is untouched
    assert moved == job.replace(attempts=2).replace(status=JobStatus.QUEUED)
    with pytest.raises(TypeError, match="no field"):
        job.replace(colour="red")


def test_records_from_older_and_newer_code_load():
    record = make_job().to_record()
    for optional in ("extras", "dedupe_of", "attempts", "expires_at"):
        del record[optional]
    record["a_field_from_the_future"] = 1
    first, second = Job.from_record(record), Job.from_record(record)
    assert (first.extras, first.attempts, first.dedupe_of) == ({}, 0, None)
    assert first.extras is not second.extras  # each gets its own default dict
    del record["tenant"]
    with pytest.raises(TypeError, match="tenant"):
        Job.from_record(record)


@given(st.lists(st.sampled_from(list(JobStatus)), max_size=20))
def test_any_sequence_of_news_only_moves_forward(events):
    job = make_job()
    for status in events:
        before = job
        moved = advance(job, status, now=2.0)
        if moved is not None:
            assert RANK[moved.status.value] > RANK[before.status.value]
            assert not before.terminal
            job = moved
    # once terminal, it stays where it landed
    if job.terminal:
        assert all(advance(job, s, now=3.0) is None for s in JobStatus)
