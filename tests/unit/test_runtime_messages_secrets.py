import threading

import pytest

from core.adapters.secrets import CachedSecrets, EnvSecrets
from core.api.http import Request
from core.config import Settings
from core.domain.errors import ValidationError
from core.ports import WorkItem
from core.runtime import Runtime
from core.service.messages import decode_work_item, encode_work_item
from tests.fakes import make_services


def test_runtime_builds_services_once_and_not_for_health():
    built = []

    def build(settings):
        built.append(settings)
        return make_services(settings=settings)

    runtime = Runtime(Settings, build)
    assert runtime.app.handle(Request("GET", "/health")).status == 200
    assert not runtime.built
    barrier = threading.Barrier(8)

    def touch():
        barrier.wait()
        runtime.services  # noqa: B018

    threads = [threading.Thread(target=touch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and runtime.builds == 1


def test_runtime_rebuilds_once_a_rotated_secret_is_seen():
    now = [0.0]
    secret = ["whsec_one_0123456789"]

    def load():
        return Settings(store_url="memory://", webhook_secrets=(secret[0],))

    runtime = Runtime(load, lambda s: make_services(settings=s), recheck_s=60, clock=lambda: now[0])
    first = runtime.services
    secret[0] = "whsec_two_0123456789"
    now[0] = 30
    runtime.refresh_if_due()
    assert runtime.services is first  # not due yet
    now[0] = 61
    runtime.refresh_if_due()
    assert runtime.services is not first and runtime.builds == 2
    assert runtime.services.settings.webhook_secrets == ("whsec_two_0123456789",)
    now[0] = 200
    runtime.refresh_if_due()  # unchanged settings: kept
    assert runtime.builds == 2


def test_work_item_round_trip_and_poison():
    assert decode_work_item(encode_work_item(WorkItem("abc"))) == WorkItem("abc")
    for bad in (
        b"\xff",
        "not json",
        "[]",
        '{"v":2,"job_id":"x"}',
        '{"v":1}',
        '{"v":1,"job_id":""}',
    ):
        with pytest.raises(ValidationError):
            decode_work_item(bad)


def test_cached_secrets_expire_after_ttl():
    now = [0.0]
    env = {"K": "one"}
    cache = CachedSecrets(EnvSecrets(env), ttl_s=10, clock=lambda: now[0])
    assert cache.get("K") == "one"
    env["K"] = "two"
    assert cache.get("K") == "one"
    now[0] = 11
    assert cache.get("K") == "two"
    assert "two" not in repr(cache)


def test_api_key_config_is_checked():
    from core.config import parse_api_keys

    digest = "a" * 64
    assert parse_api_keys(f"acme corp={digest}, b={'B' * 64}") == {
        digest: "acme corp",
        "b" * 64: "b",
    }
    for bad in ("acme", f"acme={'a' * 63}", f"acme={'g' * 64}", f"../x={digest}", f"a/b={digest}"):
        with pytest.raises(ValueError):
            parse_api_keys(bad)
