"""JSON written byte for byte as JavaScript's `JSON.stringify(value)` writes it.

The real service is a Node program: its webhook bodies are `JSON.stringify(payload)`, and
the signature is over those bytes. Python's `json.dumps` differs in ways a receiver that
(wrongly) re-serialises would trip over, and the simulator should not hide:

- numbers follow ECMAScript Number::toString: `1` not `1.0`, `1e-7` not `1e-07`,
  `1.5e+21`, `123456789012345680000` for 1.2345678901234568e20; NaN and Infinity are
  `null`, -0 is `0`; an integer beyond 2**53 is first rounded to a double, as in JS;
- a lone surrogate is escaped (`\\udc80`, ES2019 "well-formed JSON.stringify") where
  Python would write it raw and then fail to encode it as UTF-8;
- object keys that are array indices ("0", "7") come first in ascending order, then the
  other keys in insertion order: the order in which JS enumerates an object's keys.

Strings, apart from surrogates, are escaped as json's C encoder does, which is what JS
does too: `"`, `\\` and control characters only, everything else raw UTF-8.
"""

from __future__ import annotations

import json.encoder
import math
import re
from collections.abc import Mapping
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_MAX_ARRAY_INDEX = 2**32 - 2  # ECMAScript: an array index is below 2**32 - 1
_MAX_SAFE_INTEGER = 2**53
_quote_fast = json.encoder.encode_basestring  # the C escaper when available


def stringify(value: Any) -> str:
    """`JSON.stringify(value)` for JSON-shaped Python values (dict, list, str, numbers...)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def dumps(value: Any) -> bytes:
    """`stringify` as the UTF-8 bytes that go on the wire (always encodable)."""
    return stringify(value).encode("utf-8")


def number(x: float) -> str:
    """ECMAScript Number::toString(x) for a finite double; NaN and +-Infinity -> `null`."""
    if math.isnan(x) or math.isinf(x):
        return "null"
    if x == 0:
        return "0"  # also -0, which JSON.stringify writes as 0
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digits that round-trip, as Number::toString asks.
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # n: where the decimal point sits relative to the first significant digit.
    n = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        head = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def quote(text: str) -> str:
    """A JSON string literal as JSON.stringify writes it."""
    if not _SURROGATE.search(text):
        return _quote_fast(text)
    # A surrogate pair held as two code points is one character to JS: join it first.
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    pieces = _SURROGATE.split(joined)
    lone = _SURROGATE.findall(joined)
    out = [_quote_fast(pieces[0])[:-1]]
    for surrogate, piece in zip(lone, pieces[1:], strict=True):
        out.append(f"\\u{ord(surrogate):04x}")
        out.append(_quote_fast(piece)[1:-1])
    out.append('"')
    return "".join(out)


def _integer(n: int) -> str:
    if -_MAX_SAFE_INTEGER <= n <= _MAX_SAFE_INTEGER:
        return str(n)
    try:
        return number(float(n))  # a JS number is a double: big integers are rounded
    except OverflowError:
        return "null"  # beyond the largest double: Infinity in JS


def _ordered(mapping: Mapping[Any, Any]) -> list[tuple[str, Any]]:
    for key in mapping:
        if not isinstance(key, str):
            raise TypeError(f"object keys must be strings, not {type(key).__name__}")
    indices = sorted((k for k in mapping if _is_array_index(k)), key=int)
    if not indices:
        return list(mapping.items())
    chosen = set(indices)
    rest = [(k, v) for k, v in mapping.items() if k not in chosen]
    return [(k, mapping[k]) for k in indices] + rest


def _is_array_index(key: str) -> bool:
    return _ARRAY_INDEX.fullmatch(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(quote(value))
    elif isinstance(value, int):
        out.append(_integer(value))
    elif isinstance(value, float):
        out.append(number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(_ordered(value)):
            if i:
                out.append(",")
            out.append(quote(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
