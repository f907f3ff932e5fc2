"""multipart/form-data encoded once, into one bytes object.

httpx streams a `files=` form as many small writes (one per part header and body);
encoding it ourselves makes each attempt one or two socket writes, and a retry reuses
the same bytes instead of re-encoding.
"""

from __future__ import annotations

import secrets


def _quote(value: str) -> str:
    # RFC 7578 4.2: escape the characters that would end the quoted-string.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode_form(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[str, bytes]:
    """(Content-Type header value, body) for the given text fields and files."""
    boundary = secrets.token_hex(16)
    dash = f"--{boundary}\r\n".encode()
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks += [
            dash,
            f'Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode(),
            value.encode(),
            b"\r\n",
        ]
    for name, (filename, data, content_type) in files.items():
        chunks += [
            dash,
            (
                f'Content-Disposition: form-data; name="{_quote(name)}"; '
                f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode(),
            data,
            b"\r\n",
        ]
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)
