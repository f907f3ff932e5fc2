import threading

import pytest

from core.adapters.secrets import CachedSecrets, EnvSecrets
from core.api.http import Request
from core.domain.errors import ValidationError
from core.ports import WorkItem
from core.runtime import Runtime
from core.service.messages import decode_work_item, encode_work_item
from tests.fakes import make_services


def test_runtime_builds_services_once_and_not_for_health():
    built = []

    def factory():
        built.append(1)
        return make_services()

    runtime = Runtime(factory)
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
    assert built == [1]


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
