"""Draw the sample images in this folder: `python examples/make_examples.py`.

The project makes its own samples so they carry no licence baggage and so tests know
exactly what is in them (sizes, formats, EXIF). Output is deterministic for a given
Pillow version; each file stays well under 30 KB.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
INK = (30, 30, 40)
GREY = (170, 170, 180)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def make_invoice(path: Path) -> None:
    img = Image.new("RGB", (600, 800), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 599, 90), fill=(32, 64, 128))
    draw.text((30, 28), "INVOICE", fill="white", font=_font(34))
    draw.text((400, 22), "No. INV-2025-0042", fill="white", font=_font(16))
    draw.text((400, 50), "Date: 2025-01-15", fill="white", font=_font(16))
    draw.text(
        (30, 120), "From: Acme Widgets Ltd\n1 Example Road\nSpringfield", fill=INK, font=_font(15)
    )
    draw.text(
        (330, 120), "Bill to: Globex Corp\n42 Sample Street\nShelbyville", fill=INK, font=_font(15)
    )
    top = 230
    draw.rectangle((30, top, 570, top + 34), fill=(230, 234, 242), outline=GREY)
    for x, label in ((40, "Description"), (330, "Qty"), (400, "Unit"), (490, "Amount")):
        draw.text((x, top + 8), label, fill=INK, font=_font(15))
    rows = (
        ("Blue widget", 4, 12.50),
        ("Red widget", 2, 15.00),
        ("Widget polish", 1, 7.25),
        ("Delivery", 1, 9.99),
    )
    y = top + 34
    subtotal = 0.0
    for desc, qty, unit in rows:
        amount = qty * unit
        subtotal += amount
        draw.rectangle((30, y, 570, y + 34), outline=GREY)
        draw.text((40, y + 8), desc, fill=INK, font=_font(15))
        draw.text((330, y + 8), str(qty), fill=INK, font=_font(15))
        draw.text((400, y + 8), f"{unit:.2f}", fill=INK, font=_font(15))
        draw.text((490, y + 8), f"{amount:.2f}", fill=INK, font=_font(15))
        y += 34
    tax = round(subtotal * 0.2, 2)
    for label, value in (("Subtotal", subtotal), ("VAT 20%", tax), ("TOTAL", subtotal + tax)):
        y += 30
        draw.text((380, y), label, fill=INK, font=_font(16))
        draw.text((490, y), f"{value:.2f}", fill=INK, font=_font(16))
    draw.line((380, y + 26, 570, y + 26), fill=INK, width=2)
    draw.text((30, 740), "Payment due within 30 days. Thank you!", fill=GREY, font=_font(14))
    # A 16-colour palette keeps the PNG small; the page has few colours anyway.
    img.quantize(colors=16).save(path, optimize=True)


def make_product(path: Path) -> None:
    img = Image.new("RGB", (480, 360))
    draw = ImageDraw.Draw(img)
    for y in range(360):  # a soft studio backdrop
        shade = 235 - y // 6
        draw.line((0, y, 479, y), fill=(shade, shade, min(255, shade + 12)))
    draw.ellipse((90, 290, 390, 340), fill=(150, 150, 160))  # shadow
    draw.rounded_rectangle((150, 80, 330, 310), radius=28, fill=(220, 40, 60))  # the product
    draw.rounded_rectangle((175, 110, 305, 200), radius=12, fill=(250, 240, 200))
    draw.ellipse((215, 225, 265, 275), fill=(30, 120, 200))
    draw.text((190, 140), "ACME", fill=(220, 40, 60), font=_font(36))
    exif = Image.Exif()
    exif[0x010F] = "ImgGo Labs"  # Make
    exif[0x0110] = "SimCam 3000"  # Model
    exif[0x0131] = "make_examples.py"  # Software
    exif[0x0132] = "2025:01:15 10:00:00"  # DateTime
    exif.get_ifd(0x8769)[0x9003] = "2025:01:15 09:59:58"  # DateTimeOriginal
    img.save(path, quality=82, optimize=True, exif=exif)


def make_receipt(path: Path) -> None:
    img = Image.new("L", (300, 480), 250)
    draw = ImageDraw.Draw(img)
    draw.text((95, 20), "CORNER SHOP", fill=20, font=_font(20))
    draw.text((70, 50), "12 High Street, Springfield", fill=60, font=_font(12))
    draw.text((20, 80), "2025-01-15   14:32", fill=40, font=_font(14))
    for x in range(20, 280, 8):
        draw.line((x, 105, x + 4, 105), fill=120)
    items = (
        ("Milk 1L", 1.15),
        ("Bread", 1.60),
        ("Apples x6", 2.40),
        ("Coffee", 4.99),
        ("Eggs", 2.10),
    )
    y = 120
    for name, price in items:
        draw.text((20, y), name, fill=30, font=_font(15))
        draw.text((220, y), f"{price:5.2f}", fill=30, font=_font(15))
        y += 28
    for x in range(20, 280, 8):
        draw.line((x, y + 4, x + 4, y + 4), fill=120)
    total = sum(price for _, price in items)
    draw.text((20, y + 16), "TOTAL", fill=10, font=_font(18))
    draw.text((210, y + 16), f"{total:6.2f}", fill=10, font=_font(18))
    draw.text((20, y + 50), "Paid by card ****1234", fill=60, font=_font(13))
    for i in range(40):  # a barcode
        if (i * 7) % 3:
            draw.rectangle((40 + i * 5, y + 90, 42 + i * 5, y + 140), fill=0)
    img.quantize(colors=8).save(path, optimize=True)


def make_sunset(path: Path) -> None:
    frames = []
    for step in range(4):  # the sun sinks across four frames: an animated GIF
        img = Image.new("RGB", (240, 140))
        draw = ImageDraw.Draw(img)
        for y in range(100):
            t = y / 100
            draw.line((0, y, 239, y), fill=(int(250 - 60 * t), int(140 - 90 * t), int(90 + 60 * t)))
        sun_y = 45 + step * 12
        draw.ellipse((95, sun_y, 145, sun_y + 50), fill=(255, 210, 80))
        draw.rectangle((0, 100, 239, 139), fill=(20, 40, 90))  # the sea
        for y in range(104, 140, 6):
            draw.line((70, y, 170, y), fill=(200, 120, 80))
        frames.append(img.quantize(colors=32))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=400, loop=0)


def main() -> None:
    makers = {
        "invoice.png": make_invoice,
        "product.jpg": make_product,
        "receipt.png": make_receipt,
        "sunset.gif": make_sunset,
    }
    for name, make in makers.items():
        path = HERE / name
        make(path)
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
