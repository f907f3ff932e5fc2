"""The secrets contract against AwsSecrets on moto's server: SSM SecureString parameters
and Secrets Manager secrets; references in every spelling; the function's SSM
references read in one call; and the reader wired into the Lambda runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from core.adapters.aws import clients
from core.adapters.aws.secrets import AwsSecrets
from core.adapters.clock import ManualClock
from core.adapters.outages import CallLimits
from core.adapters.secrets import secret_store
from core.config import MissingSecretError
from tests.aws.conftest import unique
from tests.contract.secrets_contract import SecretsContract, SecretsOutageContract


class SsmWriter:
    def __init__(self) -> None:
        self.prefix = "/" + unique("imggo")

    def write(self, name: str, value: str) -> str:
        clients.client("ssm").put_parameter(
            Name=self.ref(name), Value=value, Type="SecureString", Overwrite=True
        )
        return self.ref(name)

    def ref(self, name: str) -> str:
        return f"{self.prefix}/{name}"


class SecretsManagerWriter:
    def __init__(self) -> None:
        self.prefix = unique("imggo")
        self.made: set[str] = set()

    def write(self, name: str, value: str) -> str:
        sm = clients.client("secretsmanager")
        secret_id = f"{self.prefix}-{name}"
        if secret_id in self.made:
            sm.put_secret_value(SecretId=secret_id, SecretString=value)
        else:
            sm.create_secret(Name=secret_id, SecretString=value)
            self.made.add(secret_id)
        return self.ref(name)

    def ref(self, name: str) -> str:
        return f"secretsmanager:{self.prefix}-{name}"


class AwsContract(SecretsContract, SecretsOutageContract):
    @pytest.fixture
    def secrets(self, moto_url: str) -> Iterator[AwsSecrets]:
        reader = AwsSecrets()
        yield reader
        reader.close()

    @pytest.fixture
    def outage_secrets(self, moto_url: str) -> Iterator[Callable[[int, CallLimits], AwsSecrets]]:
        made: list[AwsSecrets] = []

        def make(port: int, limits: CallLimits) -> AwsSecrets:
            made.append(AwsSecrets(endpoint_url=f"http://127.0.0.1:{port}", limits=limits))
            return made[-1]

        yield make
        for reader in made:
            reader.close()


class TestSsmSecrets(AwsContract):
    @pytest.fixture
    def writer(self, moto_url: str) -> SsmWriter:
        return SsmWriter()


class TestSecretsManagerSecrets(AwsContract):
    @pytest.fixture
    def writer(self, moto_url: str) -> SecretsManagerWriter:
        return SecretsManagerWriter()


def test_every_spelling_of_a_reference(moto_url: str) -> None:
    ssm, sm = SsmWriter(), SecretsManagerWriter()
    parameter = ssm.write("api-key", "from-ssm")
    arn = clients.client("ssm").get_parameter(Name=parameter)["Parameter"]["ARN"]
    sm.write("hook", "from-secrets-manager")
    secret_arn = clients.client("secretsmanager").describe_secret(
        SecretId=sm.ref("hook").removeprefix("secretsmanager:")
    )["ARN"]
    clients.client("secretsmanager").create_secret(Name=unique("bin"), SecretBinary=b"bytes")
    reader = AwsSecrets()
    assert reader.get(parameter) == "from-ssm"
    assert reader.get(arn) == "from-ssm"
    assert reader.get(secret_arn) == "from-secrets-manager"
    assert reader.get_many([parameter, sm.ref("hook"), ssm.ref("nothing")]) == {
        parameter: "from-ssm",
        sm.ref("hook"): "from-secrets-manager",
        ssm.ref("nothing"): None,
    }
    reader.close()


def test_a_binary_secret_reads_as_text(moto_url: str) -> None:
    name = unique("bin")
    clients.client("secretsmanager").create_secret(Name=name, SecretBinary="clé".encode())
    assert AwsSecrets().get(f"secretsmanager:{name}") == "clé"


def test_the_functions_ssm_references_are_read_in_one_call(moto_url: str) -> None:
    writer = SsmWriter()
    refs = [writer.write(n, f"value-{n}") for n in ("api-key", "webhook-secret", "hashes")]
    env = {
        "IMGGO_API_KEY_SECRET_REF": refs[0],
        "IMGGO_WEBHOOK_SECRET_SECRET_REF": refs[1],
        "IMGGO_FN_API_KEYS_SECRET_REF": refs[2],
    }
    calls: list[str] = []
    reader = AwsSecrets()
    reader._client("ssm").meta.events.register(
        "before-call.ssm", lambda model, **_: calls.append(model.name)
    )
    cache = secret_store(reader, env, clock=ManualClock().now)
    assert [cache.get(ref) for ref in refs] == [
        "value-api-key",
        "value-webhook-secret",
        "value-hashes",
    ]
    assert calls == ["GetParameters"]
    reader.close()


def test_the_lambda_runtime_reads_secrets_by_reference(moto_url: str) -> None:
    from core.platform import FunctionHost
    from handlers_aws.runtime import AwsPlatform

    writer = SsmWriter()
    env = {
        "IMGGO_FN_STORE_URL": "memory://",
        "IMGGO_API_KEY_SECRET_REF": writer.write("api-key", "imggo_test_from_ssm"),
        "IMGGO_WEBHOOK_SECRET_SECRET_REF": writer.ref("not-there"),
    }
    with pytest.raises(MissingSecretError, match="IMGGO_WEBHOOK_SECRET_SECRET_REF names /"):
        FunctionHost(AwsPlatform(env)).load_settings()
    del env["IMGGO_WEBHOOK_SECRET_SECRET_REF"]
    assert FunctionHost(AwsPlatform(env)).load_settings().imggo_api_key == "imggo_test_from_ssm"


def test_a_cold_start_that_reads_no_secret_imports_no_boto3() -> None:
    """The Lambda runtime builds the secret reader on every cold start, also for the
    ones that only answer /health: boto3 (~0.1 s) is imported on the first read."""
    import subprocess
    import sys

    code = (
        "import sys; from handlers_aws.runtime import host; "
        "runtime = host(); assert not runtime.runtime.built; "
        "assert 'boto3' not in sys.modules, 'boto3 imported'; print('ok')"
    )
    env = {"PYTHONPATH": ".", "AWS_REGION": "us-east-1", "IMGGO_FN_STORE_URL": "memory://"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
