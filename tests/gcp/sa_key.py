"""A throwaway service-account key, made in the test: V4 signing is offline RSA, so a
fresh key signs URLs exactly as a real one would, and the GCS stand-in verifies them with
its public half. Its token URI is a closed loopback port: nothing can use it to reach
Google, and nothing should try (tests never refresh a token)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.gcp.emulators import PROJECT


@dataclass(frozen=True)
class ServiceAccountKey:
    path: Path
    email: str
    public_key: rsa.RSAPublicKey


def throwaway_key(directory: Path) -> ServiceAccountKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    email = f"imggo-test@{PROJECT}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "throwaway",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    }
    path = directory / "throwaway-sa.json"
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return ServiceAccountKey(path, email, private.public_key())
