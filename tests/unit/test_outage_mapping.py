"""Which SDK failures each cloud's mapping calls transient (they become 503
`store_unavailable`) and which pass through unchanged (a deployment mistake, seen as
such). The adapters' outage tests prove the same against dead and stuck servers."""

from __future__ import annotations

import pytest

from core.domain.errors import UnavailableError


def _client_error(code: str, status: int) -> BaseException:
    from botocore.exceptions import ClientError

    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


def _aws_failures() -> list[tuple[BaseException, bool]]:
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    return [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), True),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True),
        (_client_error("SlowDown", 503), True),
        (_client_error("ThrottlingException", 400), True),
        (_client_error("ProvisionedThroughputExceededException", 400), True),
        (_client_error("InternalError", 500), True),
        (_client_error("SomethingNew", 502), True),
        (_client_error("TooManyRequests", 429), True),
        (_client_error("AccessDenied", 403), False),
        (_client_error("NoSuchBucket", 404), False),
        (_client_error("ConditionalCheckFailedException", 400), False),
        (NoCredentialsError(), False),
        (ValueError("not ours to judge"), False),
    ]


def _gcp_failures() -> list[tuple[BaseException, bool]]:
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    return [
        (api.ServiceUnavailable("down"), True),
        (api.DeadlineExceeded("slow"), True),
        (api.InternalServerError("oops"), True),
        (api.TooManyRequests("slow down"), True),
        (api.ResourceExhausted("quota"), True),
        (api.RetryError("Timeout of 6.0s exceeded", cause=None), True),
        (auth.TransportError("metadata server"), True),
        (requests.ConnectionError("refused"), True),
        (requests.ReadTimeout("stuck"), True),
        (TimeoutError(), True),
        (api.NotFound("no topic"), False),
        (api.PermissionDenied("no"), False),
        (api.InvalidArgument("bad"), False),
        (ValueError("not ours to judge"), False),
    ]


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_transient_failures_become_store_unavailable_and_others_pass(cloud: str) -> None:
    if cloud == "aws":
        from core.adapters.aws.errors import is_transient, unavailable_on_outage

        failures = _aws_failures()
    else:
        from core.adapters.gcp.errors import is_transient, unavailable_on_outage

        failures = _gcp_failures()
    for failure, transient in failures:
        assert is_transient(failure) is transient, failure
        with pytest.raises(Exception) as caught, unavailable_on_outage("Backend"):
            raise failure
        if transient:
            assert isinstance(caught.value, UnavailableError), failure
            error = caught.value
            assert (error.status, error.code, error.retry_after_s) == (503, "store_unavailable", 5)
            assert error.details == {"backend": "Backend", "reason": type(failure).__name__}
            assert error.__cause__ is failure
        else:
            assert caught.value is failure
