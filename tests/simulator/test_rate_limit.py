"""`--rate-limit`: one fixed window per API key, shared by every client and connection
that presents the key, with X-RateLimit-* and Retry-After telling the same story."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from imggo_simulator import DEMO_API_KEY, SimulatorServer
from imggo_simulator.__main__ import build_parser
from imggo_simulator.ratelimit import WINDOW_S, FixedWindowLimiter
from tests.simulator.helpers import OTHER_KEY, SSL_CONTEXT, assert_error


def _client(sim: SimulatorServer, key: str) -> httpx.Client:
    # Each httpx.Client has its own connection pool: separate clients never share a
    # connection, as separate worker processes would not.
    return httpx.Client(
        base_url=sim.url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=5.0,
        trust_env=False,
        verify=SSL_CONTEXT,
    )


@pytest.fixture
def clients(sim: SimulatorServer) -> Iterator[list[httpx.Client]]:
    with ExitStack() as stack:
        yield [stack.enter_context(_client(sim, DEMO_API_KEY)) for _ in range(2)]


def test_two_clients_of_one_key_share_one_window(
    sim: SimulatorServer, clients: list[httpx.Client]
) -> None:
    sim.config.rate_limit_per_minute = 4
    first, second = clients
    sent_at = time.time()
    answers = [(first, second)[i % 2].get("/api/patterns") for i in range(6)]
    answered_at = time.time()

    assert [r.status_code for r in answers] == [200, 200, 200, 200, 429, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["3", "2", "1", "0", "0", "0"]
    assert {r.headers["X-RateLimit-Limit"] for r in answers} == {"4"}
    # One window: every answer, whichever client got it, names the same reset time...
    resets = {int(r.headers["X-RateLimit-Reset"]) for r in answers}
    assert len(resets) == 1
    reset = resets.pop()
    assert sent_at + WINDOW_S - 1 <= reset <= answered_at + WINDOW_S + 1
    # ...and a refused one says to come back exactly then, not sooner, not much later.
    for limited in answers[4:]:
        assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
        retry_after = int(limited.headers["Retry-After"])
        assert reset - answered_at - 1 <= retry_after <= reset - sent_at + 1
        assert limited.json()["error"]["details"] == {"limit": 4, "reset": reset}


def test_concurrent_clients_of_one_key_get_exactly_the_limit(sim: SimulatorServer) -> None:
    sim.config.rate_limit_per_minute = 10
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def burst() -> None:
        with _client(sim, DEMO_API_KEY) as client:
            start.wait(timeout=5)
            for _ in range(5):
                status = client.get("/api/patterns").status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(statuses) == [200] * 10 + [429] * 10


def test_each_key_has_its_own_window(sim: SimulatorServer) -> None:
    sim.config.rate_limit_per_minute = 2
    with _client(sim, DEMO_API_KEY) as demo, _client(sim, OTHER_KEY) as other:
        assert [demo.get("/api/patterns").status_code for _ in range(3)] == [200, 200, 429]
        answers = [other.get("/api/patterns") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["1", "0", "0"]


def test_refused_keys_are_not_charged_to_any_window(sim: SimulatorServer) -> None:
    sim.config.rate_limit_per_minute = 1
    with _client(sim, "imggo_test_not_accepted") as stranger:
        for _ in range(3):
            assert_error(stranger.get("/api/patterns"), 401, "INVALID_API_KEY")
    with _client(sim, DEMO_API_KEY) as demo:
        assert demo.get("/api/patterns").status_code == 200


def test_refused_requests_count_but_never_push_the_window_back() -> None:
    limiter = FixedWindowLimiter()
    t0 = 1_000.0
    decisions = [limiter.hit("k", 2, now=t0 + dt) for dt in (0, 1, 2, 30, 59.5)]
    assert [d.allowed for d in decisions] == [True, True, False, False, False]
    assert [d.remaining for d in decisions] == [1, 0, 0, 0, 0]
    assert {d.reset_at for d in decisions} == {t0 + WINDOW_S}  # knocking on never extends it
    assert decisions[3].headers(now=t0 + 30)["Retry-After"] == "30"
    assert decisions[4].headers(now=t0 + 59.5)["Retry-After"] == "1"
    fresh = limiter.hit("k", 2, now=t0 + WINDOW_S)
    assert fresh.allowed and fresh.remaining == 1 and fresh.reset_at == t0 + 2 * WINDOW_S
    assert "Retry-After" not in fresh.headers(now=t0 + WINDOW_S)


@pytest.mark.parametrize("bad", ["-5", "many", "1.5"])
def test_a_bad_rate_limit_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--rate-limit", bad])
    assert exited.value.code == 2
    assert "--rate-limit" in capsys.readouterr().err
    assert build_parser().parse_args(["--rate-limit", "600"]).rate_limit == 600
