"""Every Azure SDK wait is bounded: against a loopback server that accepts connections
and never answers (tests/support/outage.tarpit), a call of the job table - with the
limits it is deployed with - and a managed identity token request fail within their
limits' worst case, far inside host.json's functionTimeout and the scenario suite's
outage budget. Each call runs on a thread with a deadline, so a wait that is not
bounded fails the test at the deadline instead of hanging it. (The queue, blob and Key
Vault clients' bounds are the outage contracts of their own test modules.)"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from core.adapters.azure import clients
from core.adapters.azure.keyvault_secrets import KeyVaultSecrets
from core.adapters.azure.table_store import AzureTableJobStore
from core.adapters.outages import DEFAULT_LIMITS, CallLimits
from core.adapters.stores._common import STORE_LIMITS
from core.domain.errors import UnavailableError
from tests.azure.azurite import ACCOUNT, KEY
from tests.azure.functions_host import HOST_JSON
from tests.azure.key_vault import IDENTITY_HEADER, KeyVaultStandIn
from tests.azure.test_scenarios import AzureDriver
from tests.support.outage import tarpit

SLACK_S = 1.5  # a shared 2-core machine's scheduling, and closing what the call opened
# How long the cloud scenarios let a request take while the job store is away.
OUTAGE_BUDGET_S = AzureDriver.outage_budget_s


def function_timeout_s() -> float:
    """host.json's functionTimeout (hh:mm:ss), what the host cuts an invocation off at."""
    found = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})", HOST_JSON["functionTimeout"])
    assert found, HOST_JSON["functionTimeout"]
    hours, minutes, seconds = (int(part) for part in found.groups())
    return hours * 3600.0 + minutes * 60.0 + seconds


def within(deadline_s: float, call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    """(seconds taken, what `call` raised); fails once `deadline_s` passes without an end."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except Exception as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(deadline_s)
    took = time.monotonic() - started
    if worker.is_alive():
        pytest.fail(f"still waiting after {took:.1f} s: the wait is not bounded")
    return took, outcome[0]


def test_the_deployed_limits_fit_inside_the_function_and_the_outage_budget() -> None:
    timeout = function_timeout_s()
    for limits in (STORE_LIMITS, DEFAULT_LIMITS):
        assert limits.worst_case_s * 10 <= timeout, (limits, timeout)
    # The job table (nearly every request's first call) answers 503 well inside it.
    assert STORE_LIMITS.worst_case_s + SLACK_S <= OUTAGE_BUDGET_S


def test_a_stalled_job_table_is_store_unavailable_within_the_store_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tarpit() as port:
        monkeypatch.setenv(
            clients.CONNECTION_SETTING,
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};",
        )
        store = AzureTableJobStore("stalled")  # built as deployed: clients.call_options
        took, raised = within(OUTAGE_BUDGET_S + 5, lambda: store.get("job-1"))
        store.close()
    assert isinstance(raised, UnavailableError), repr(raised)
    assert (raised.status, raised.code) == (503, "store_unavailable")
    assert took < STORE_LIMITS.worst_case_s, f"the table call took {took:.1f} s"
    print(f"stalled table: store_unavailable after {took:.2f} s")


def test_a_stalled_identity_endpoint_fails_the_token_request_within_its_limits(
    key_vault: KeyVaultStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = CallLimits(connect_s=0.3, read_s=0.3, attempts=2, retry_s=0.5)
    with tarpit() as port:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{port}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
        clients.credential.cache_clear()
        vault = KeyVaultSecrets(
            key_vault.url,
            credential=clients.credential(limits),
            client_options={"connection_verify": str(key_vault.ca_file)},
        )
        ref = key_vault.write("stalled-identity", "v")
        took, raised = within(limits.worst_case_s + 10, lambda: vault.get(ref))
        vault.close()
        clients.credential.cache_clear()
    # Bounded, and not taken for an answer; but DefaultAzureCredential reports every
    # failure of its chain as one ClientAuthenticationError, so it is not a 503.
    assert isinstance(raised, ClientAuthenticationError), repr(raised)
    assert "ManagedIdentityCredential" in str(raised)
    assert took < limits.worst_case_s + SLACK_S, f"the token request took {took:.1f} s"
