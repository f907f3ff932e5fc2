"""JSON from outside, read strictly: only values every part downstream can carry.

Python's `json` accepts more than anything after it can handle. A lone UTF-16 surrogate
(`"\\ud800"`) decodes to a `str` that cannot be encoded as UTF-8, so SQLite, DynamoDB,
Firestore, httpx and our own encoder fail on it later - after the job was stored.
`NaN`, `Infinity` and `1e999` (which overflows to infinity) are not JSON at all for
JavaScript, Firestore or DynamoDB. Numbers past 2**53 silently lose precision in
JavaScript clients and overflow Firestore's int64; a 400-digit one costs quadratic CPU
to convert. (Every double beyond 2**53 is a whole number, so one bound serves integers
and floats alike, and the OpenAPI document can say it: `minimum` / `maximum`.) Deep
nesting overflows recursive encoders. So each is refused here, when
the request is read, with a 400 and a reason - never stored and discovered later.

Every JSON document a caller or ImgGo sends us (request bodies, `extras` sent as a form
field, webhook deliveries, cursors) is read through `loads`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from core.domain.errors import ValidationError

# JavaScript's Number.MAX_SAFE_INTEGER: beyond it a JSON number means different things
# to different readers.
MAX_SAFE_INTEGER = 2**53 - 1
_MAX_INT_DIGITS = len(str(MAX_SAFE_INTEGER))
# Deep enough for any real manifest or extras object, shallow enough for every
# recursive encoder we hand the value to.
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonInputError(ValidationError):
    """The body is not JSON, or is JSON no store, client or encoder could carry."""

    status = 400
    code = "invalid_json"


def _reason(message: str, reason: str) -> JsonInputError:
    return JsonInputError(message, details={"reason": reason})


def _reject_constant(name: str) -> Any:
    raise _reason(f"{name} is not a JSON number", "non_finite_number")


def _out_of_range() -> JsonInputError:
    return _reason(f"numbers must lie within +/-{MAX_SAFE_INTEGER}", "number_out_of_range")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _reason(f"the number {text[:32]} is not finite", "non_finite_number")
    if abs(value) > MAX_SAFE_INTEGER:
        raise _out_of_range()
    return value


def _parse_int(text: str) -> int:
    # Checked on the text first: converting a huge digit string is the expensive part.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS or abs(value := int(text)) > MAX_SAFE_INTEGER:
        raise _out_of_range()
    return value


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonInputError unless `value` (already decoded) is carriable everywhere.
    Iterative, so a hostile depth cannot overflow the stack here either."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise _reason("the JSON holds a lone UTF-16 surrogate", "lone_surrogate")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise _reason(f"the JSON nests deeper than {max_depth} levels", "too_deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _reason("the JSON holds a non-finite number", "non_finite_number")
        elif (
            isinstance(item, int | float)
            and not isinstance(item, bool)
            and abs(item) > MAX_SAFE_INTEGER
        ):
            raise _out_of_range()


def loads(data: bytes | str, *, what: str = "the body") -> Any:
    """Decode `data` strictly (see the module docstring) or raise JsonInputError."""
    try:
        value = json.loads(
            data,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except JsonInputError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _reason(f"{what} is not valid JSON", "syntax") from None
    check_value(value)
    return value
