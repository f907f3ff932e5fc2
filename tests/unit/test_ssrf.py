import pytest

from core.domain.errors import ValidationError
from core.service.ssrf import UrlGuard

PROBES_BLOCKED = [
    "http://127.0.0.1/a.png",
    "http://localhost.example/a.png",  # resolves to loopback via the stub below
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f000001/",  # hex
    "http://0x7f.1/",
    "http://0177.0.0.1/",  # octal
    "http://127.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",  # mapped 169.254.169.254
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.example/computeMetadata/v1/",  # resolves to link-local via stub
    "http://[fe80::1]/",
    "http://10.1.2.3/",
    "http://172.16.0.5/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://[fc00::1]/",
    "http://rebind.example/",  # one public and one private address: refused
]

RESOLVE = {
    "localhost.example": ["127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "rebind.example": ["93.184.216.34", "10.0.0.1"],
    "images.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
}


def resolver(host: str) -> list[str]:
    if host not in RESOLVE:
        raise OSError("no such host")
    return RESOLVE[host]


@pytest.fixture
def guard() -> UrlGuard:
    return UrlGuard(resolver)


@pytest.mark.parametrize("url", PROBES_BLOCKED)
def test_private_and_special_addresses_are_refused(guard, url):
    with pytest.raises(ValidationError) as info:
        guard.check(url)
    assert info.value.code == "forbidden_image_url"


@pytest.mark.parametrize(
    "url,code",
    [
        ("ftp://images.example/a.png", "invalid_image_url"),
        ("file:///etc/passwd", "invalid_image_url"),
        ("gopher://images.example/", "invalid_image_url"),
        ("http:///nohost", "invalid_image_url"),
        ("http://user:pw@images.example/a.png", "invalid_image_url"),
        ("http://images.example:99999/a.png", "invalid_image_url"),
        ("http://nowhere.example/a.png", "unresolvable_image_url"),
        ("http://images.example/" + "a" * 3000, "invalid_image_url"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(guard, url, code):
    with pytest.raises(ValidationError) as info:
        guard.check(url)
    assert info.value.code == code


def test_public_host_passes(guard):
    assert guard.check("https://images.example/cat.png?x=1") == "https://images.example/cat.png?x=1"


def test_allow_list_lets_a_local_test_host_through():
    guard = UrlGuard(resolver, allow=["127.0.0.0/8", "sim.local"])
    assert guard.check("http://127.0.0.1:8787/a.png")
    assert guard.check("http://sim.local/a.png")  # allowed by name: never resolved
    with pytest.raises(ValidationError):
        guard.check("http://10.0.0.1/")
