"""The one stored form of jobs and batches, and what counts as readable.

Every store keeps a job as one JSON document made here and reads it back here, so the
rule is the same everywhere: a document is readable only if `dump_job` could have
written it - strict JSON (no NaN or Infinity), text every UTF-8 reader can take (no
lone surrogates), each field of the type the dataclass declares (a time is a finite
number, a status one of ours). `dump_job` refuses (ValueError) what would not read
back, so such data is stopped before it is stored; `load_job` turns whatever else a
store holds - corrupted in place, written by buggy or newer code - into
UnreadableRecordError, which names the record and never quotes it. Scans decode row
by row (core.adapters.stores._base): one bad row is named, the others are returned.

A job whose manifest is kept in the blob store (core.adapters.stores._manifests) is
stored with `manifest` null and a `manifest_blob` (ManifestRef) naming the blob; the
manifest's own bytes are the same strict JSON (`dump_manifest`, `load_manifest`).

Field types are read off the dataclasses (Job, JobSource, JobError, Batch, ManifestRef):
a field added there is checked here without touching this module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any, Literal, TypeGuard, Union

from core.domain.job import Job, JobError, JobSource, JobStatus
from core.ports import Batch, UnreadableRecordError

Check = Callable[[Any], bool]

UNREADABLE_RECORD = JobError(
    "unreadable_record",
    "the stored job could not be read, so it was failed; submit the image again",
)
MANIFEST_BLOB = "manifest_blob"  # the record key of a job's ManifestRef


@dataclasses.dataclass(frozen=True)
class ManifestRef:
    """Where a job's manifest is kept when its document would be too long for the
    backend's item: the blob's key, and the SHA-256 (hex) and length of its bytes, so
    a blob that is missing, cut short or replaced is caught when it is read back."""

    key: str
    sha256: str
    size: int


# ---------------------------------------------------------------------------- shapes
# A field's rule maps each JSON type its values may have (JSON makes exact types: a bool
# is never an int here) to a further check of the value, or None when the type is
# enough. It runs per field per read, so most fields cost one dict lookup and no call.
Rule = dict[type, Check | None]
_ANY: Rule = {}  # the empty rule: anything goes (free-form values)


def _is_finite(value: int | float) -> bool:
    # An int too big for a float is refused too: times are compared and shown as floats.
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and _is_finite(value)


def _is_int(value: object) -> TypeGuard[int]:
    return type(value) is int


def _refuse(value: Any) -> bool:
    return False


def _rule_for(hint: Any) -> Rule:
    """The rule for values a field of type `hint` may hold in a JSON record."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        merged: Rule = {}
        for arg in args:
            rule = _rule_for(arg)
            if rule is _ANY:
                return _ANY
            merged.update(rule)  # no two members of our unions share a JSON type
        return merged
    if hint is Any:
        return _ANY
    if hint is type(None):
        return {type(None): None}
    if origin is Literal:
        allowed = frozenset(args)
        return {str: lambda value: value in allowed}
    if origin is list:
        item = _rule_for(args[0]) if args else _ANY
        return {list: lambda value: all(_fits(item, v) for v in value)}
    if origin is dict or hint is dict:
        # Keys and values are free-form (manifests, extras) or stringified (item errors).
        return {dict: None}
    if hint is float:
        return {float: _is_finite, int: _is_finite}
    if hint in (int, str, bool):
        return {hint: None}
    if isinstance(hint, type) and issubclass(hint, Enum):
        values = frozenset(member.value for member in hint)
        return {str: lambda value: value in values}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        shape = _Shape.of(hint)
        return {dict: lambda value: shape.misfit(value) is None}
    raise TypeError(f"no record rule for {hint!r}")


_ABSENT = object()


def _fits(rule: Rule, value: Any) -> bool:
    if rule is _ANY:
        return True
    check = rule.get(type(value), _refuse)  # a type the rule does not name is refused
    return check is None or check(value)


@dataclasses.dataclass(frozen=True, eq=False)
class _Shape:
    """The fields a record of one dataclass must (required) or may hold, with their
    rules. Keys it does not know are left to the dataclass's from_record (a Job drops
    them: they come from newer code)."""

    fields: tuple[tuple[str, bool, Rule], ...]  # (name, required, rule)

    @classmethod
    def of(cls, kind: type[Any]) -> _Shape:
        hints = typing.get_type_hints(kind)
        return cls(
            tuple(
                (
                    f.name,
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                    _rule_for(hints[f.name]),
                )
                for f in dataclasses.fields(kind)
            )
        )

    def misfit(self, record: dict[str, Any]) -> str | None:
        """The name of the first field of `record` that is missing or ill-typed, or None."""
        get = record.get
        for name, required, rule in self.fields:
            value = get(name, _ABSENT)
            if value is _ABSENT:
                if required:
                    return name
                continue
            if rule is _ANY:
                continue
            # _fits, inlined: a call per field per read costs more than the check.
            check = rule.get(type(value), _refuse)
            if check is not None and not check(value):
                return name
        return None


_JOB = _Shape.of(Job)
_BATCH = _Shape.of(Batch)
_MANIFEST_REF = _Shape.of(ManifestRef)


class _MisfitError(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(f"field {field}")
        self.reason = f"field {field}"  # a name of ours, never a value: safe to log


# ---------------------------------------------------------------------------- text
# allow_nan=False: NaN/Infinity are not JSON, and cloud document stores reject them.
# One encoder for every write: json.dumps builds a new one per call when given options.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_UTF8_PROBE = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _refuse_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _check_text(doc: str, record: dict[str, Any]) -> None:
    """UnicodeEncodeError if a string of `record` holds a lone surrogate, which no UTF-8
    encoder takes (the HTTP response, a cloud SDK, a log line would each fail on it).
    The encoder escapes every non-ASCII character, so in a document it can only hide in
    a \\u escape (or raw, in a non-ASCII document): only such documents pay for the probe."""
    if "\\u" not in doc and doc.isascii():
        return
    _UTF8_PROBE.encode(record).encode("utf-8")


# ---------------------------------------------------------------------------- codec
def _dump(kind: str, record_id: str, shape: _Shape, record: dict[str, Any]) -> str:
    misfit = shape.misfit(record)
    if misfit is not None:
        raise ValueError(f"{kind} {record_id}: field {misfit} would not read back")
    doc = _ENCODER.encode(record)
    try:
        _check_text(doc, record)
    except UnicodeEncodeError:
        raise ValueError(f"{kind} {record_id}: text with a lone surrogate") from None
    return doc


def _parse(shape: _Shape, doc: object) -> dict[str, Any]:
    if not isinstance(doc, str):
        raise TypeError(f"a stored document is text, not {type(doc).__name__}")
    record = _DECODER.decode(doc)
    if not isinstance(record, dict):
        raise TypeError("a stored document is a JSON object")
    misfit = shape.misfit(record)
    if misfit is not None:
        raise _MisfitError(misfit)
    _check_text(doc, record)
    return record


def _unreadable(kind: str, record_id: str, exc: Exception) -> UnreadableRecordError:
    reason = exc.reason if isinstance(exc, _MisfitError) else type(exc).__name__
    return UnreadableRecordError(kind, record_id, reason)


def dump_job(job: Job, *, manifest_blob: ManifestRef | None = None) -> str:
    """One JSON document per job: what every store can keep, and the copy that makes a
    caller's later mutation of `manifest` or `extras` unable to reach stored state.
    With `manifest_blob`, the manifest is not in the document but named by it (the
    caller passes the job without its manifest)."""
    record = job.to_record()
    if manifest_blob is not None:
        record[MANIFEST_BLOB] = dataclasses.asdict(manifest_blob)
    return _dump("job", job.id, _JOB, record)


def load_job(job_id: str, doc: object) -> tuple[Job, ManifestRef | None]:
    """The job stored as `doc` under `job_id`, and where its manifest is when the
    document does not hold it; UnreadableRecordError if `doc` is not a document
    dump_job could have written."""
    try:
        record = _parse(_JOB, doc)
        job = Job.from_record(record)
        blob = record.get(MANIFEST_BLOB)
        return job, None if blob is None else _manifest_ref(blob)
    except Exception as exc:  # anything a bad document can make decoding raise
        # `from None`: the cause's message may quote the document.
        raise _unreadable("job", job_id, exc) from None


def _manifest_ref(blob: object) -> ManifestRef:
    if not isinstance(blob, dict):
        raise _MisfitError(MANIFEST_BLOB)
    misfit = _MANIFEST_REF.misfit(blob)
    if misfit is not None:
        raise _MisfitError(f"{MANIFEST_BLOB}.{misfit}")
    return ManifestRef(blob["key"], blob["sha256"], blob["size"])


def manifest_blob_of(doc: object) -> ManifestRef | None:
    """The ManifestRef a stored document names, even when the rest of it cannot be
    read (its blob must still go when the record is replaced); None when it names none,
    or is not even a JSON object."""
    try:
        record = _DECODER.decode(doc) if isinstance(doc, str) else None
        blob = record.get(MANIFEST_BLOB) if isinstance(record, dict) else None
        return None if blob is None else _manifest_ref(blob)
    except Exception:  # the document's trouble: it names no blob we could trust
        return None


def dump_manifest(manifest: dict[str, Any]) -> bytes:
    """A manifest alone, as the blob that holds it (the same strict, ASCII JSON as a
    document; the job around it has already been checked by dump_job)."""
    return _ENCODER.encode(manifest).encode("ascii")


def load_manifest(job_id: str, data: bytes) -> dict[str, Any]:
    """A manifest read back from its blob; UnreadableRecordError (for the job) if it is
    not one dump_manifest could have written."""
    try:
        text = data.decode("ascii")
        manifest = _DECODER.decode(text)
        if not isinstance(manifest, dict):
            raise TypeError("a manifest is a JSON object")
        _check_text(text, manifest)
    except Exception as exc:  # anything a bad blob can make decoding raise
        raise _unreadable("job", job_id, exc) from None
    return manifest


def dump_batch(batch: Batch) -> str:
    return _dump("batch", batch.id, _BATCH, batch.to_record())


def load_batch(batch_id: str, doc: object) -> Batch:
    """As load_job, for a batch."""
    try:
        return Batch.from_record(_parse(_BATCH, doc))
    except Exception as exc:  # anything a bad document can make decoding raise
        raise _unreadable("batch", batch_id, exc) from None


def unreadable_stand_in(
    job_id: str,
    *,
    tenant: object,
    created_at: object,
    expires_at: object,
    version: object,
    now: float,
) -> Job:
    """The failed job that replaces an unreadable one: nothing of its document, and of
    what the store keeps beside it (index columns) each fact only if it is well-typed.
    Its version follows the stored one, so the store's version stays monotonic."""
    return Job(
        id=job_id,
        tenant=tenant if isinstance(tenant, str) else "",
        pattern_id="",
        source=JobSource(kind="url"),
        created_at=float(created_at) if _is_number(created_at) else now,
        updated_at=now,
        status=JobStatus.FAILED,
        version=(version if _is_int(version) and version >= 0 else 0) + 1,
        error=UNREADABLE_RECORD,
        completed_at=now,
        expires_at=float(expires_at) if _is_number(expires_at) else None,
    )
