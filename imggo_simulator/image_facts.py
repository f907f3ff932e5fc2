"""What Pillow can honestly say about an image's bytes.

Pillow is imported lazily, on the first analysis (in a background worker thread), so that
importing the simulator - e.g. by the CLI just to print its help - stays cheap.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from typing import Any

ExifValue = str | int | float

_MAX_EXIF_ENTRIES = 64
_MAX_EXIF_STRING = 256
# Sub-IFD pointers: their values are offsets, not facts about the picture.
_EXIF_POINTER_TAGS = frozenset({0x8769, 0x8825, 0xA005, 0x014A})


class ImageDecodeError(Exception):
    """The bytes are not an image Pillow can decode."""


@dataclass(frozen=True, slots=True)
class ImageFacts:
    width: int
    height: int
    format: str
    mime_type: str
    mode: str
    file_size_bytes: int
    sha256: str
    megapixels: float
    aspect_ratio: float
    orientation: str
    has_alpha: bool
    animated: bool
    frame_count: int
    brightness: float
    dominant_colors: list[str] = field(default_factory=list)
    exif: dict[str, ExifValue] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def camera_make(self) -> str | None:
        return _exif_str(self.exif, "Make")

    @property
    def camera_model(self) -> str | None:
        return _exif_str(self.exif, "Model")

    @property
    def taken_at(self) -> str | None:
        return _exif_str(self.exif, "DateTimeOriginal") or _exif_str(self.exif, "DateTime")


def _exif_str(exif: dict[str, ExifValue], name: str) -> str | None:
    value = exif.get(name)
    return value if isinstance(value, str) and value else None


def analyze_image(data: bytes) -> ImageFacts:
    """Decode `data` and describe it; ImageDecodeError if it is not a decodable image."""
    from PIL import Image, ImageStat

    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "UNKNOWN"
            width, height = img.size
            mode = img.mode
            frame_count = int(getattr(img, "n_frames", 1))
            animated = bool(getattr(img, "is_animated", False))
            has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
            exif = _read_exif(img)
            # thumbnail() decodes JPEGs at reduced scale (draft mode): cheap on big photos,
            # and colour statistics need no more than a few thousand pixels.
            img.thumbnail((96, 96))
            rgb = img.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"image too large to decode: {exc}") from exc
    except Exception as exc:  # Pillow raises many types for garbage input
        raise ImageDecodeError("image could not be decoded: not a supported image file") from exc

    brightness = round(ImageStat.Stat(rgb.convert("L")).mean[0] / 255.0, 4)
    ratio = width / height if height else 0.0
    return ImageFacts(
        width=width,
        height=height,
        format=fmt,
        mime_type=Image.MIME.get(fmt, "application/octet-stream"),
        mode=mode,
        file_size_bytes=len(data),
        sha256=digest,
        megapixels=round(width * height / 1_000_000, 4),
        aspect_ratio=round(ratio, 4),
        orientation=_orientation(width, height),
        has_alpha=has_alpha,
        animated=animated,
        frame_count=frame_count,
        brightness=brightness,
        dominant_colors=_dominant_colors(rgb),
        exif=exif,
    )


def _orientation(width: int, height: int) -> str:
    if width == height:
        return "square"
    return "landscape" if width > height else "portrait"


def _dominant_colors(rgb: Any, count: int = 5) -> list[str]:
    from PIL import Image

    quantized = rgb.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    # Most frequent first; the palette index breaks ties so the order is deterministic.
    ranked = sorted(quantized.getcolors() or [], key=lambda c: (-c[0], c[1]))
    colors: list[str] = []
    for _, index in ranked:
        r, g, b = palette[index * 3 : index * 3 + 3]
        hex_ = f"#{r:02x}{g:02x}{b:02x}"
        if hex_ not in colors:
            colors.append(hex_)
    return colors[:count] or ["#000000"]


def _read_exif(img: Any) -> dict[str, ExifValue]:
    from PIL import ExifTags

    try:
        exif = img.getexif()
        entries = list(exif.items())
        if 0x8769 in exif:
            entries.extend(exif.get_ifd(ExifTags.IFD.Exif).items())
    except Exception:  # a corrupt EXIF block must not fail an otherwise fine image
        return {}
    out: dict[str, ExifValue] = {}
    for tag, raw in entries:
        if tag in _EXIF_POINTER_TAGS or len(out) >= _MAX_EXIF_ENTRIES:
            continue
        name = ExifTags.TAGS.get(tag)
        value = _exif_scalar(raw)
        if name and value is not None:
            out[name] = value
    return dict(sorted(out.items()))


def _exif_scalar(raw: Any) -> ExifValue | None:
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.replace("\x00", "").strip()
        return text[:_MAX_EXIF_STRING] if text else None
    try:  # IFDRational and friends
        number = float(raw)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return round(number, 6)
