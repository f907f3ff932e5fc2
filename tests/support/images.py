"""Small generated images, and a loopback host that serves them for URL submissions."""

from __future__ import annotations

import io
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from PIL import Image

from tests.support.loopback import base_url, serve_on_loopback, stop


def png(seed: int, size: int = 24) -> bytes:
    img = Image.new("RGB", (size, size), ((seed * 53) % 256, (seed * 97) % 256, 120))
    img.putpixel((seed % size, 0), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class ImageHost:
    """GET /img/N.png -> a distinct PNG per N (whatever query string follows)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    # The query string is the client's business (hostile URLs carry any).
                    seed = int(urlsplit(self.path).path.rsplit("/", 1)[-1].split(".")[0])
                except ValueError:
                    self.send_error(404)
                    return
                body = png(seed)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = serve_on_loopback(Handler)

    def url(self, seed: int) -> str:
        return f"{base_url(self.httpd)}/img/{seed}.png"

    def close(self) -> None:
        stop(self.httpd)
