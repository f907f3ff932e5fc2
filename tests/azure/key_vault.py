"""Loopback stand-ins for Key Vault's secrets REST API and for the managed identity
endpoint the Functions platform gives an app (no emulator exists for either).

`KeyVaultStandIn`, what azure-keyvault-secrets' SecretClient relies on: HTTPS (it
refuses plain HTTP), the bearer challenge (a request without a token gets 401 with a
`WWW-Authenticate` naming the resource; the client then asks its credential for a token
and sends it again), `GET /secrets/NAME[/VERSION]` answering the secret bundle, and 404
`SecretNotFound`. The challenge names as its resource the vault's authority without its
first label (`0.0.1:PORT` for `127.0.0.1:PORT`), as Key Vault's `vault.azure.net` is
`NAME.vault.azure.net` without its first: the client's resource check
(`verify_challenge_resource`, on by default) then passes exactly as it does against the
real service, so nothing in the client is switched off for the tests. The certificate
is self-signed for 127.0.0.1, built here with `cryptography`; a client trusts it through
`connection_verify=<ca file>` or, like any requests-based client, REQUESTS_CA_BUNDLE.

`ManagedIdentityStandIn`, the App Service / Functions identity endpoint
(`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`): `GET ?api-version=2019-08-01&resource=R`
with `X-IDENTITY-HEADER` answers a token for R. With those two variables set, the
production credential (DefaultAzureCredential -> ManagedIdentityCredential) gets its
tokens here, and the vault accepts them. `StaticCredential` hands out the same token
without any endpoint, for tests of the adapter alone. Nothing reaches an identity
provider.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.loopback import base_url, serve_on_loopback, stop

TOKEN = "key-vault-test-token"
IDENTITY_HEADER = "identity-header-test-value"


class StaticCredential:
    """An azure-core TokenCredential that always has the same token."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes += scopes
        return AccessToken(TOKEN, int(time.time()) + 3600)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "vault-cert.pem", directory / "vault-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class KeyVaultStandIn:
    """Secrets by name, each a list of (version, value); the last one is current."""

    def __init__(self, directory: Path) -> None:
        self.secrets: dict[str, list[tuple[str, str]]] = {}
        self.reads = 0
        self._lock = threading.Lock()
        self.ca_file, key_file = self_signed(directory)
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    challenge = (
                        'Bearer authorization="https://login.invalid/tenant", '
                        f'resource="{vault.resource}"'
                    )
                    self._send(401, {"error": {"code": "Unauthorized"}}, challenge)
                    return
                parts = urlsplit(self.path).path.strip("/").split("/")
                if len(parts) not in (2, 3) or parts[0] != "secrets":
                    self._send(400, {"error": {"code": "BadParameter", "message": "path"}})
                    return
                found = vault.lookup(parts[1], parts[2] if len(parts) == 3 else None)
                if found is None:
                    message = f"A secret with (name/id) {parts[1]} was not found in this key vault."
                    self._send(404, {"error": {"code": "SecretNotFound", "message": message}})
                    return
                version, value = found
                host = self.headers.get("Host", "127.0.0.1")
                self._send(
                    200,
                    {
                        "value": value,
                        "id": f"https://{host}/secrets/{parts[1]}/{version}",
                        "attributes": {"enabled": True, "recoveryLevel": "Recoverable"},
                    },
                )

            def _send(self, status: int, body: dict[str, Any], challenge: str = "") -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if challenge:
                    self.send_header("WWW-Authenticate", challenge)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        # TLS on the listening socket before the serving thread starts.
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{port}"
        self.resource = f"https://0.0.1:{port}"  # see the module docstring

    def write(self, name: str, value: str) -> str:
        with self._lock:
            self.secrets.setdefault(name, []).append((uuid.uuid4().hex, value))
        return name

    def lookup(self, name: str, version: str | None) -> tuple[str, str] | None:
        with self._lock:
            self.reads += 1
            versions = self.secrets.get(name, [])
            if version is None:
                return versions[-1] if versions else None
            return next((v for v in versions if v[0] == version), None)

    def close(self) -> None:
        stop(self.httpd)


class ManagedIdentityStandIn:
    """The App Service managed identity endpoint: a token for any resource, to a caller
    that sends the instance's identity header. `resources`: what was asked for, in order."""

    def __init__(self) -> None:
        self.resources: list[str] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                    self._send(401, {"statusCode": 401, "message": "no identity header"})
                    return
                if query.get("api-version") != ["2019-08-01"] or not query.get("resource"):
                    self._send(400, {"statusCode": 400, "message": "bad request"})
                    return
                resource = query["resource"][0]
                standin.resources.append(resource)
                self._send(
                    200,
                    {
                        "access_token": TOKEN,
                        "expires_on": str(int(time.time()) + 3600),
                        "resource": resource,
                        "token_type": "Bearer",
                    },
                )

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = serve_on_loopback(Handler)
        self.url = base_url(self.httpd) + "/msi/token"

    def environment(self) -> dict[str, str]:
        """What the platform sets in a function app with a managed identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": IDENTITY_HEADER}

    def close(self) -> None:
        stop(self.httpd)
