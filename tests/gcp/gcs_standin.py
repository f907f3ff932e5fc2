"""A small loopback stand-in for Cloud Storage: there is no GCS emulator on this machine.

It speaks just enough of two GCS surfaces, as they are on the wire:
- XML API object PUT / GET through V4 signed URLs (`/{bucket}/{object}?X-Goog-...`): the
  signature is really verified (canonical request, GOOG4-RSA-SHA256, the signer's public
  key), the expiry and the signed headers are enforced, and `x-goog-content-length-range`
  refuses a body outside its range with 400, as GCS does. So a URL our adapter signs
  works here only if it would be well-formed for GCS.
- JSON API media upload / download, object metadata and delete, which
  google-cloud-storage uses for `put` / `get` / `describe` / `delete` when
  STORAGE_EMULATOR_HOST points here (`POST /upload/storage/v1/b/B/o?uploadType=
  multipart`, `GET /download/storage/v1/b/B/o/NAME?alt=media`, `GET` and `DELETE`
  `/storage/v1/b/B/o/NAME`).

`object_resource()` gives the object's JSON API resource: the data of a
`google.cloud.storage.object.v1.finalized` CloudEvent.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.loopback import base_url, serve_on_loopback, stop


@dataclass
class StoredObject:
    data: bytes
    content_type: str
    generation: int
    created: float


class SignatureError(Exception):
    pass


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(sorted(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs))


def verify_v4(
    public_key: rsa.RSAPublicKey,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    *,
    now: float,
) -> dict[str, str]:
    """Check a V4-signed request the way GCS does; return its signed headers."""
    params = dict(query)
    if params.get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256":
        raise SignatureError("not a GOOG4-RSA-SHA256 signed URL")
    try:
        signature = bytes.fromhex(params["X-Goog-Signature"])
        stamp = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Goog-Expires"])
        credential = params["X-Goog-Credential"]
        signed_names = params["X-Goog-SignedHeaders"].split(";")
    except (KeyError, ValueError) as exc:
        raise SignatureError(f"malformed signed URL: {exc}") from None
    if not 1 <= expires <= 7 * 24 * 3600:
        raise SignatureError("X-Goog-Expires out of range")
    if now > stamp.timestamp() + expires:
        raise SignatureError("the signed URL has expired")
    lower = {k.lower(): v for k, v in headers.items()}
    signed: dict[str, str] = {}
    for name in signed_names:
        if name not in lower:
            raise SignatureError(f"signed header {name} is missing from the request")
        signed[name] = " ".join(lower[name].split())
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in sorted(signed))
    canonical_request = "\n".join(
        [
            method,
            raw_path,
            _canonical_query([(k, v) for k, v in query if k != "X-Goog-Signature"]),
            canonical_headers,
            ";".join(sorted(signed)),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = credential.split("/", 1)[1]
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            params["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    try:
        public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError("SignatureDoesNotMatch") from None
    return signed


class GcsStandIn:
    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self.public_key = public_key
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self._lock = threading.Lock()
        self._generation = int(time.time() * 1e6)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                standin._handle(self, "PUT")

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def do_DELETE(self) -> None:
                standin._handle(self, "DELETE")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = serve_on_loopback(Handler)

    @property
    def url(self) -> str:
        return base_url(self.httpd)

    def close(self) -> None:
        stop(self.httpd)

    # ------------------------------------------------------------------ helpers for tests
    def object_resource(self, bucket: str, name: str) -> dict[str, Any]:
        """The JSON API resource of an object, as a finalized event carries it."""
        with self._lock:
            obj = self.objects[(bucket, name)]
        created = datetime.fromtimestamp(obj.created, tz=UTC).isoformat().replace("+00:00", "Z")
        return {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/{obj.generation}",
            "name": name,
            "bucket": bucket,
            "generation": str(obj.generation),
            "metageneration": "1",
            "contentType": obj.content_type,
            "timeCreated": created,
            "updated": created,
            "storageClass": "STANDARD",
            "size": str(len(obj.data)),  # the JSON API writes uint64 as a string
            "md5Hash": "",
        }

    def put_object(self, bucket: str, name: str, data: bytes, content_type: str) -> None:
        """Write an object directly, as any other writer of the bucket might."""
        self._store(bucket, name, data, content_type)

    def names(self, bucket: str) -> list[str]:
        with self._lock:
            return sorted(n for b, n in self.objects if b == bucket)

    # ------------------------------------------------------------------ the wire
    def _store(self, bucket: str, name: str, data: bytes, content_type: str) -> StoredObject:
        with self._lock:
            self._generation += 1
            obj = StoredObject(data, content_type, self._generation, time.time())
            self.objects[(bucket, name)] = obj
            return obj

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        query = parse_qsl(parts.query, keep_blank_values=True)
        if parts.path.startswith("/upload/storage/v1/b/") and method == "POST":
            status, headers, out = self._json_upload(parts.path, dict(query), req, body)
        elif parts.path.startswith("/download/storage/v1/b/") and method == "GET":
            status, headers, out = self._json_download(parts.path)
        elif parts.path.startswith("/storage/v1/b/") and "/o/" in parts.path:
            status, headers, out = self._json_object(method, parts.path)
        elif parts.path.startswith("/storage/v1/b/") and method == "GET":
            status, headers, out = self._json_bucket(parts.path)
        elif any(k == "X-Goog-Signature" for k, _ in query):
            status, headers, out = self._signed(req, method, parts.path, query, body)
        else:
            status, headers, out = 404, {"Content-Type": "text/plain"}, b"not found"
        with self._lock:
            self.requests.append((method, parts.path, status))
        req.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(out))}.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(out)

    def _signed(
        self,
        req: BaseHTTPRequestHandler,
        method: str,
        raw_path: str,
        query: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in req.headers.items()}
        try:
            signed = verify_v4(self.public_key, method, raw_path, query, headers, now=time.time())
        except SignatureError as exc:
            return _xml_error(403, "SignatureDoesNotMatch", str(exc))
        bucket, _, name = unquote(raw_path).lstrip("/").partition("/")
        if method == "PUT":
            limit = signed.get("x-goog-content-length-range")
            if limit is not None:
                low, _, high = limit.partition(",")
                if not int(low) <= len(body) <= int(high):
                    return _xml_error(400, "EntityTooLarge", "size outside the signed range")
            self._store(bucket, name, body, headers.get("Content-Type", "application/octet-stream"))
            return 200, {"ETag": '"standin"'}, b""
        if method == "GET":
            with self._lock:
                obj = self.objects.get((bucket, name))
            if obj is None:
                return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
            return 200, {"Content-Type": obj.content_type}, obj.data
        return _xml_error(405, "MethodNotAllowed", method)

    def _json_upload(
        self, path: str, query: dict[str, str], req: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        bucket = unquote(path.split("/")[5])  # /upload/storage/v1/b/{bucket}/o
        if query.get("uploadType") != "multipart":
            return 400, {"Content-Type": "application/json"}, b'{"error":"multipart only"}'
        # multipart/related: a JSON metadata part, then the media part.
        raw = f"Content-Type: {req.headers['Content-Type']}\r\n\r\n".encode() + body
        message = BytesParser(policy=HTTP).parsebytes(raw)
        parts = list(message.iter_parts())  # type: ignore[attr-defined]
        meta = json.loads(parts[0].get_payload(decode=True))
        media = parts[1].get_payload(decode=True)
        name = meta.get("name") or query.get("name", "")
        content_type = meta.get("contentType") or parts[1].get_content_type()
        self._store(bucket, name, media, content_type)
        resource = self.object_resource(bucket, name)
        return 200, {"Content-Type": "application/json"}, json.dumps(resource).encode()

    def _json_bucket(self, path: str) -> tuple[int, dict[str, str], bytes]:
        # What GCS answers the deployed function, whose role on the bucket is object-only
        # (roles/storage.objectAdmin, no storage.buckets.get). Our store never asks
        # (core.adapters.gcp.gcs_blobs: No bucket reads); requests shows it if it does.
        error = {"error": {"code": 403, "message": "storage.buckets.get denied"}}
        return 403, {"Content-Type": "application/json"}, json.dumps(error).encode()

    def _json_object(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        # /storage/v1/b/{bucket}/o/{name}: the object's resource, or its removal.
        segments = path.split("/")
        bucket, name = unquote(segments[4]), unquote("/".join(segments[6:]))
        with self._lock:
            found = (bucket, name) in self.objects
            if found and method == "DELETE":
                del self.objects[(bucket, name)]
        if not found:
            error = {"error": {"code": 404, "message": "No such object"}}
            return 404, {"Content-Type": "application/json"}, json.dumps(error).encode()
        if method == "DELETE":
            return 204, {}, b""
        resource = self.object_resource(bucket, name)
        return 200, {"Content-Type": "application/json"}, json.dumps(resource).encode()

    def _json_download(self, path: str) -> tuple[int, dict[str, str], bytes]:
        # /download/storage/v1/b/{bucket}/o/{name}
        segments = path.split("/")
        bucket, name = unquote(segments[5]), unquote("/".join(segments[7:]))
        with self._lock:
            obj = self.objects.get((bucket, name))
        if obj is None:
            error = {"error": {"code": 404, "message": "No such object"}}
            return 404, {"Content-Type": "application/json"}, json.dumps(error).encode()
        return 200, {"Content-Type": obj.content_type}, obj.data


def _xml_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
    body += f"<Message>{message}</Message></Error>"
    return status, {"Content-Type": "application/xml"}, body.encode()
