"""The Secrets contract: what every secret store adapter must show, written once.

Each backend runs THIS suite by subclassing it in `test_<backend>_secrets.py` and
providing the fixtures it names:

    class TestSsmSecrets(SecretsContract, SecretsOutageContract):
        @pytest.fixture
        def secrets(self, moto_url): ...      # the adapter (a fresh namespace per test)
        @pytest.fixture
        def writer(self, ...): ...            # a SecretWriter for that namespace
        @pytest.fixture
        def outage_secrets(self): ...         # (port, CallLimits) -> an adapter whose
                                              # endpoint is 127.0.0.1:port

Promised: a stored value reads back exactly; a reference to nothing is None; behind the
one caching policy (core.adapters.secrets.secret_store, TTL from
IMGGO_FN_SECRETS_TTL_S) a rotation is seen once the TTL has passed and not before;
values never reach a log line or a repr; an unreachable store raises UnavailableError
`store_unavailable` within the limits, and a cache that holds a value keeps serving it
through the outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar, Protocol

import pytest

from core.adapters.clock import ManualClock
from core.adapters.outages import CallLimits
from core.adapters.secrets import STALE_RECHECK_S, secret_store
from core.domain.errors import UnavailableError
from core.ports import Secrets
from tests.support.outage import dead_port, tarpit, timed

TTL = {"IMGGO_FN_SECRETS_TTL_S": "60"}


class SecretWriter(Protocol):
    def write(self, name: str, value: str) -> str:
        """Store (or rotate) secret `name`; the reference the adapter reads it by."""

    def ref(self, name: str) -> str:
        """The reference of secret `name`, whether or not it was ever written."""


OutageSecrets = Callable[[int, CallLimits], Secrets]


class Switchable:
    """Answers with one real adapter, then another (the same store, now unreachable),
    counting the reads."""

    def __init__(self, current: Secrets) -> None:
        self.current = current
        self.reads = 0

    def get(self, name: str) -> str | None:
        self.reads += 1
        return self.current.get(name)


class SecretsContract:
    @pytest.mark.parametrize(
        "value",
        [
            "imggo_live_0123456789abcdef",
            "acme corp=" + "a" * 64 + ",b=" + "b" * 64,  # the API-key hashes' format
            "  spaces kept  ",
            "ünïcødé ✓ «quotes» \"and\" 'more'",
            "line one\nline two",
        ],
        ids=["api-key", "hashes", "spaces", "unicode", "newline"],
    )
    def test_a_stored_value_reads_back_exactly(
        self, secrets: Secrets, writer: SecretWriter, value: str
    ) -> None:
        assert secrets.get(writer.write("imggo-api-key", value)) == value

    def test_a_reference_to_nothing_is_none(self, secrets: Secrets, writer: SecretWriter) -> None:
        writer.write("imggo-api-key", "present")
        assert secrets.get(writer.ref("imggo-nothing-here")) is None

    def test_secrets_are_kept_apart(self, secrets: Secrets, writer: SecretWriter) -> None:
        a, b = writer.write("imggo-a", "value-a"), writer.write("imggo-b", "value-b")
        assert (secrets.get(a), secrets.get(b)) == ("value-a", "value-b")

    def test_a_rotation_is_seen_after_the_ttl_and_not_before(
        self, secrets: Secrets, writer: SecretWriter
    ) -> None:
        clock = ManualClock(start=1000.0)
        cache = secret_store(secrets, TTL, clock=clock.now)
        ref = writer.write("imggo-api-key", "imggo_v1")
        assert cache.get(ref) == "imggo_v1"
        writer.write("imggo-api-key", "imggo_v2")
        clock.advance(59)
        assert cache.get(ref) == "imggo_v1"  # within the TTL: not asked again
        clock.advance(2)
        assert cache.get(ref) == "imggo_v2"
        assert secrets.get(ref) == "imggo_v2"  # the adapter itself keeps nothing

    def test_values_are_never_logged_nor_shown(
        self, secrets: Secrets, writer: SecretWriter, caplog: pytest.LogCaptureFixture
    ) -> None:
        value = "imggo_live_do_not_log_me_0123456789"
        ref = writer.write("imggo-api-key", value)
        with caplog.at_level(logging.DEBUG):  # every logger, the SDK's too
            logging.getLogger("secrets-contract").debug("canary")
            cache = secret_store(secrets, TTL, clock=ManualClock().now)
            assert cache.get(ref) == value
            assert cache.get(writer.ref("imggo-nothing-here")) is None
        assert "canary" in caplog.text  # the capture works at DEBUG
        assert value not in caplog.text
        assert all(value not in str(r.args) for r in caplog.records)
        assert value not in repr(secrets) and value not in repr(cache)


class SecretsOutageContract:
    outage_limits: ClassVar[CallLimits] = CallLimits(
        connect_s=0.5, read_s=0.5, attempts=2, retry_s=1.0
    )
    slack_s: ClassVar[float] = 2.0

    def _assert_unavailable(self, secrets: Secrets, ref: str) -> None:
        elapsed, outcome = timed(lambda: secrets.get(ref))
        assert isinstance(outcome, UnavailableError), repr(outcome)
        assert (outcome.status, outcome.code) == (503, "store_unavailable")
        assert outcome.retry_after_s is not None and outcome.retry_after_s > 0
        assert elapsed < self.outage_limits.worst_case_s + self.slack_s, elapsed

    def test_a_refused_connection_is_store_unavailable(
        self, outage_secrets: OutageSecrets, writer: SecretWriter
    ) -> None:
        self._assert_unavailable(
            outage_secrets(dead_port(), self.outage_limits), writer.ref("imggo-api-key")
        )

    def test_a_server_that_never_answers_is_store_unavailable(
        self, outage_secrets: OutageSecrets, writer: SecretWriter
    ) -> None:
        with tarpit() as port:
            self._assert_unavailable(
                outage_secrets(port, self.outage_limits), writer.ref("imggo-api-key")
            )

    def test_a_warm_cache_keeps_its_value_through_an_outage(
        self,
        secrets: Secrets,
        writer: SecretWriter,
        outage_secrets: OutageSecrets,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        clock = ManualClock(start=1000.0)
        backend = Switchable(secrets)
        cache = secret_store(backend, TTL, clock=clock.now)
        ref = writer.write("imggo-api-key", "imggo_v1")
        assert cache.get(ref) == "imggo_v1"
        backend.current = outage_secrets(dead_port(), self.outage_limits)
        clock.advance(61)
        assert cache.get(ref) == "imggo_v1"  # kept: the functions keep working
        assert "keeping the value read" in caplog.text and "imggo_v1" not in caplog.text
        reads = backend.reads
        clock.advance(STALE_RECHECK_S - 1)
        assert cache.get(ref) == "imggo_v1" and backend.reads == reads  # not asked again yet
        backend.current = secrets
        writer.write("imggo-api-key", "imggo_v2")
        clock.advance(1)
        assert cache.get(ref) == "imggo_v2"  # back, and the rotation with it

    def test_a_cold_cache_passes_the_outage_on(
        self, outage_secrets: OutageSecrets, writer: SecretWriter
    ) -> None:
        cache = secret_store(outage_secrets(dead_port(), self.outage_limits), TTL)
        self._assert_unavailable(cache, writer.ref("imggo-api-key"))
