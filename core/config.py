"""Settings, read once from the environment. Every knob has a default that works on a laptop.

Secrets (ImgGo API key, webhook secrets, API-key hashes) are read by name through
`secret_source` so a cloud handler can resolve them from its secret store instead of
plain environment variables; nothing here logs a secret value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

DEFAULT_IMGGO_BASE_URL = "https://api.imggo.ai"
MIB = 1024 * 1024


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


def _flag(env: Mapping[str, str], name: str) -> bool:
    """On unless set to 0, false, no or off."""
    return env.get(name, "1").strip().lower() not in ("0", "false", "no", "off")


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (raw or "").split(",") if p.strip())


_TENANT_RE = re.compile(r"[A-Za-z0-9._ -]{1,64}")


def parse_api_keys(raw: str | None) -> dict[str, str]:
    """`tenant=sha256hex,other=sha256hex` -> {sha256hex: tenant}. Hashes, never keys."""
    keys: dict[str, str] = {}
    for entry in _list(raw):
        tenant, sep, digest = entry.partition("=")
        tenant, digest = tenant.strip(), digest.strip().lower()
        if not sep or len(digest) != 64:
            raise ValueError(
                "IMGGO_FN_API_KEYS entries must look like tenant=<64 hex chars of sha256(key)>"
            )
        int(digest, 16)  # raises ValueError on non-hex
        # Tenants name folders and object keys (uploads/<tenant>/...): keep them plain.
        if not _TENANT_RE.fullmatch(tenant) or tenant in (".", ".."):
            raise ValueError(
                f"tenant names in IMGGO_FN_API_KEYS are 1-64 letters, digits, spaces, "
                f"'.', '_' or '-': {tenant!r} is not"
            )
        keys[digest] = tenant
    return keys


def default_data_dir(env: Mapping[str, str]) -> str:
    """Where a laptop keeps its data without IMGGO_FN_DATA_DIR: the user's data directory
    (XDG), so every command finds the same jobs whichever directory it runs from."""
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "imggo-fn")


def sqlite_store_url(data_dir: str) -> str:
    """The default job store: a SQLite file in the data directory, by absolute path
    (`sqlite:///` + `home/me/...`; with a drive, `sqlite:///C:/...`)."""
    path = os.path.abspath(os.path.join(data_dir, "imggo-fn.db")).replace(os.sep, "/")
    return "sqlite:///" + quote(path.lstrip("/"))


SECRET_NAMES = ("IMGGO_API_KEY", "IMGGO_WEBHOOK_SECRET", "IMGGO_FN_API_KEYS")
SECRET_REF_SUFFIX = "_SECRET_REF"  # noqa: S105 - a name suffix, not a secret
SECRETS_TTL_ENV = "IMGGO_FN_SECRETS_TTL_S"
DEFAULT_SECRETS_TTL_S = 300.0


def secrets_ttl_s(env: Mapping[str, str]) -> float:
    """How long secrets read from a secret store are cached (and rotation rechecked)."""
    return _float(env, SECRETS_TTL_ENV, DEFAULT_SECRETS_TTL_S)


class MissingSecretError(LookupError):
    """A NAME_SECRET_REF names a secret that does not exist (or holds no value)."""


def secret_refs(
    env: Mapping[str, str], fetch: Callable[[str], str | None]
) -> Callable[[str], str | None]:
    """A `secret_source` for Settings.from_env: for a secret NAME, when the environment
    holds NAME_SECRET_REF (an SSM parameter, a Secrets Manager or Secret Manager name),
    the value comes from `fetch(ref)` - the cloud's secret store - never from plain env.
    Every cloud handler uses this one convention. A reference to nothing raises
    MissingSecretError naming it: a function must not start without its API key."""

    def source(name: str) -> str | None:
        ref = env.get(name + SECRET_REF_SUFFIX)
        if not ref:
            return None
        value = fetch(ref)
        if value is None:
            raise MissingSecretError(f"{name}{SECRET_REF_SUFFIX} names {ref}, which holds no value")
        return value

    return source


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with, read once from the environment
    (from_env) and its secret references; compared whole to tell when a rotated
    secret needs a rebuild."""

    # from_env puts both under the user's data directory (default_data_dir); these are
    # for Settings built in code, and keep the same rule: the store in the data dir.
    store_url: str = "sqlite:///./data/imggo-fn.db"
    data_dir: str = "./data"
    blob_url: str = ""  # empty: files under data_dir/blobs
    queue_url: str = ""  # empty: batch items are dispatched inline
    imggo_base_url: str = DEFAULT_IMGGO_BASE_URL
    imggo_api_key: str | None = field(default=None, repr=False)
    imggo_timeout_s: float = 10.0
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    webhook_tolerance_s: float = 300.0
    api_key_hashes: dict[str, str] = field(default_factory=dict, repr=False)
    poll_after_s: float = 5.0
    submit_deadline_s: float = 20.0
    dedupe_window_s: float = 24 * 3600.0
    job_ttl_s: float = 30 * 24 * 3600.0
    give_up_after_s: float = 24 * 3600.0
    reconcile_age_s: float = 60.0
    reconcile_limit: int = 100
    batch_max_items: int = 1000
    batch_concurrency: int = 16
    max_body_bytes: int = 11 * MIB  # a 10 MB image plus multipart framing
    max_image_bytes: int = 10 * MIB
    ssrf_allow: tuple[str, ...] = ()
    # False: image_url host names are never looked up (every name is unresolvable, so
    # refused); for machines without DNS, and for fuzzing without leaving loopback.
    resolve_names: bool = True
    # The ImgGo rate budget shared through the store (core.domain.rate_budget): on by
    # default; its limit is learnt from ImgGo's answers, starting from this many calls
    # a minute until the first one.
    rate_budget: bool = True
    rate_limit_start: int = 60
    # The work queue's dead-letter bound, where the platform counts deliveries and says
    # so (Pub/Sub's deliveryAttempt): a deferral near it is sent again instead of
    # refused (core.platform). 0: not known.
    max_delivery_attempts: int = 0

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        secret_source: Callable[[str], str | None] | None = None,
    ) -> Settings:
        env = os.environ if env is None else env

        def secret(name: str) -> str | None:
            if secret_source is not None:
                value = secret_source(name)
                if value is not None:
                    return value
            return env.get(name) or None

        data_dir = env.get("IMGGO_FN_DATA_DIR") or default_data_dir(env)
        return cls(
            store_url=env.get("IMGGO_FN_STORE_URL") or sqlite_store_url(data_dir),
            data_dir=data_dir,
            blob_url=env.get("IMGGO_FN_BLOB_URL", cls.blob_url),
            queue_url=env.get("IMGGO_FN_QUEUE_URL", cls.queue_url),
            imggo_base_url=env.get("IMGGO_BASE_URL", cls.imggo_base_url),
            imggo_api_key=secret("IMGGO_API_KEY"),
            imggo_timeout_s=_float(env, "IMGGO_TIMEOUT_S", cls.imggo_timeout_s),
            webhook_secrets=_list(secret("IMGGO_WEBHOOK_SECRET")),
            webhook_tolerance_s=_float(env, "IMGGO_FN_WEBHOOK_TOLERANCE_S", 300.0),
            api_key_hashes=parse_api_keys(secret("IMGGO_FN_API_KEYS")),
            poll_after_s=_float(env, "IMGGO_FN_POLL_AFTER_S", cls.poll_after_s),
            submit_deadline_s=_float(env, "IMGGO_FN_SUBMIT_DEADLINE_S", cls.submit_deadline_s),
            dedupe_window_s=_float(env, "IMGGO_FN_DEDUPE_WINDOW_S", cls.dedupe_window_s),
            job_ttl_s=_float(env, "IMGGO_FN_JOB_TTL_S", cls.job_ttl_s),
            give_up_after_s=_float(env, "IMGGO_FN_GIVE_UP_AFTER_S", cls.give_up_after_s),
            reconcile_age_s=_float(env, "IMGGO_FN_RECONCILE_AGE_S", cls.reconcile_age_s),
            reconcile_limit=_int(env, "IMGGO_FN_RECONCILE_LIMIT", cls.reconcile_limit),
            batch_max_items=_int(env, "IMGGO_FN_BATCH_MAX_ITEMS", cls.batch_max_items),
            batch_concurrency=_int(env, "IMGGO_FN_BATCH_CONCURRENCY", cls.batch_concurrency),
            max_body_bytes=_int(env, "IMGGO_FN_MAX_BODY_BYTES", cls.max_body_bytes),
            max_image_bytes=_int(env, "IMGGO_FN_MAX_IMAGE_BYTES", cls.max_image_bytes),
            ssrf_allow=_list(env.get("IMGGO_FN_SSRF_ALLOW")),
            resolve_names=_flag(env, "IMGGO_FN_RESOLVE_NAMES"),
            rate_budget=_flag(env, "IMGGO_FN_RATE_BUDGET"),
            rate_limit_start=_int(env, "IMGGO_FN_RATE_LIMIT_START", cls.rate_limit_start),
            max_delivery_attempts=_int(env, "IMGGO_FN_MAX_DELIVERY_ATTEMPTS", 0),
        )
