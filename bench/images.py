"""Small, distinct PNGs made on the fly (distinct bytes: content dedupe must not help)."""

from __future__ import annotations

import io

from PIL import Image


def distinct_pngs(count: int, size: int = 16) -> list[bytes]:
    images = []
    for i in range(count):
        img = Image.new("RGB", (size, size), ((i * 37) % 256, (i * 91) % 256, (i // 7) % 256))
        # the index itself, in the first pixel: no two images share their bytes
        img.putpixel((0, 0), (i & 255, (i >> 8) & 255, (i >> 16) & 255))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        images.append(buf.getvalue())
    return images
