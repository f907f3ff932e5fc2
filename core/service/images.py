"""Recognising image uploads by their first bytes, not by what the client claims."""

from __future__ import annotations

# ImgGo accepts .jpg .jpeg .png .gif .webp .bmp (CONTRACT.md): the formats we let through.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
    (b"BM", "image/bmp", "bmp"),
)


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """(MIME type, file extension) of a supported image, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    for magic, mime, ext in _SIGNATURES:
        if data.startswith(magic):
            return mime, ext
    return None
