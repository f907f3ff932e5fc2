"""A loopback stand-in for Secret Manager's REST surface: just `versions/*:access`, the
one call the adapter makes, answered in the API's JSON shape (base64 payload + CRC32C)."""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler

import google_crc32c

from tests.support.loopback import base_url, serve_on_loopback, stop

_ACCESS = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+):access$")


class SecretManagerStandIn:
    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], str] = {}  # (project, name) -> latest value
        self.calls: list[str] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                standin.calls.append(path)
                found = _ACCESS.match(path)
                value = standin.secrets.get(found.group(1, 2)) if found else None
                if found is None or value is None:
                    body = json.dumps(
                        {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
                    ).encode()
                    self.send_response(404)
                else:
                    project, name, version = found.groups()
                    data = value.encode()
                    body = json.dumps(
                        {
                            "name": f"projects/{project}/secrets/{name}/versions/{version}",
                            "payload": {
                                "data": base64.b64encode(data).decode(),
                                "dataCrc32c": str(google_crc32c.value(data)),
                            },
                        }
                    ).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._lock = threading.Lock()
        self.httpd = serve_on_loopback(Handler)

    @property
    def url(self) -> str:
        return base_url(self.httpd)

    def close(self) -> None:
        stop(self.httpd)
