"""The studio refuses to call loopback, private and metadata addresses unless allow-listed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agents.urlpolicy import OutboundURLRefused, outbound_redirect_check, outbound_url_check

PUBLIC = "93.184.216.34"


def resolver(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


def test_a_public_host_is_allowed_and_normalized() -> None:
    resolve = resolver({"api.example.com": [PUBLIC]})

    url = outbound_url_check(
        "HTTPS://API.Example.com:8443/v1?x=1", allowed_hosts=[], resolve=resolve
    )

    assert url == "https://api.example.com:8443/v1?x=1"


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("::1", "is a loopback address"),
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("192.168.0.10", "is a private address"),
        ("169.254.10.20", "169.254.10.20 is a link-local address"),
        ("fe80::1", "is a link-local address"),
        ("169.254.169.254", "169.254.169.254 is the cloud metadata address"),
        ("fd00:ec2::254", "is the cloud metadata address"),
        ("::ffff:127.0.0.1", "is a loopback address"),
        ("0.0.0.0", "is an unspecified address"),
        ("224.0.0.1", "is a multicast address"),
    ],
)
def test_literal_internal_addresses_are_refused_with_the_reason(address: str, words: str) -> None:
    host = f"[{address}]" if ":" in address else address

    with pytest.raises(OutboundURLRefused, match=words):
        outbound_url_check(f"http://{host}/", allowed_hosts=[], resolve=resolver({}))


def test_a_name_resolving_to_loopback_is_refused_and_the_message_says_what_to_do() -> None:
    resolve = resolver({"sneaky.example.com": ["127.0.0.1"]})

    with pytest.raises(OutboundURLRefused) as caught:
        outbound_url_check("http://sneaky.example.com", allowed_hosts=[], resolve=resolve)

    message = str(caught.value)
    assert "sneaky.example.com resolves to 127.0.0.1, which is a loopback address" in message
    assert "A2A_OUTBOUND_ALLOWED_HOSTS" in message


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    resolve = resolver({"mixed.example.com": [PUBLIC, "10.0.0.5"]})

    with pytest.raises(OutboundURLRefused, match="10.0.0.5, which is a private address"):
        outbound_url_check("https://mixed.example.com", allowed_hosts=[], resolve=resolve)


def test_an_allow_listed_loopback_host_is_allowed() -> None:
    resolve = resolver({"localhost": ["127.0.0.1", "::1"]})

    url = outbound_url_check(
        "http://LocalHost:11434/api", allowed_hosts=["localhost"], resolve=resolve
    )

    assert url == "http://localhost:11434/api"


def test_a_wildcard_entry_allows_subdomains_only() -> None:
    resolve = resolver({"gpu1.lab.internal": ["10.0.0.7"], "evil-lab.internal": ["10.0.0.8"]})
    allowed = ["*.lab.internal"]

    outbound_url_check("http://gpu1.lab.internal", allowed_hosts=allowed, resolve=resolve)
    with pytest.raises(OutboundURLRefused, match="private address"):
        outbound_url_check("http://evil-lab.internal", allowed_hosts=allowed, resolve=resolve)


def test_the_allow_list_defaults_to_the_setting(settings) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["ollama.local"]
    resolve = resolver({"ollama.local": ["192.168.1.20"]})

    assert outbound_url_check("http://ollama.local", resolve=resolve) == "http://ollama.local"


def test_the_metadata_address_is_refused_even_when_allow_listed() -> None:
    resolve = resolver({"metadata.google.internal": ["169.254.169.254"]})

    with pytest.raises(OutboundURLRefused, match="never calls"):
        outbound_url_check(
            "http://metadata.google.internal/computeMetadata/v1/",
            allowed_hosts=["metadata.google.internal"],
            resolve=resolve,
        )
    with pytest.raises(OutboundURLRefused, match="cloud metadata"):
        outbound_url_check(
            "http://[::ffff:169.254.169.254]/", allowed_hosts=["*"], resolve=resolver({})
        )


def test_credentials_in_the_url_are_refused() -> None:
    resolve = resolver({"api.example.com": [PUBLIC]})

    with pytest.raises(OutboundURLRefused, match="credential field"):
        outbound_url_check("https://user:sk-123@api.example.com", allowed_hosts=[], resolve=resolve)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://api.example.com", "api.example.com"])
def test_only_http_and_https_are_allowed(url: str) -> None:
    with pytest.raises(OutboundURLRefused, match="Only http and https"):
        outbound_url_check(url, allowed_hosts=[], resolve=resolver({}))


def test_a_url_without_host_is_refused() -> None:
    with pytest.raises(OutboundURLRefused, match="no host"):
        outbound_url_check("http:///v1", allowed_hosts=[], resolve=resolver({}))


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(OutboundURLRefused, match="cannot resolve the host nowhere.invalid"):
        outbound_url_check("https://nowhere.invalid", allowed_hosts=[], resolve=resolver({}))


def test_a_redirect_to_an_internal_address_is_refused() -> None:
    resolve = resolver({"api.example.com": [PUBLIC]})

    with pytest.raises(OutboundURLRefused, match="cloud metadata"):
        outbound_redirect_check(
            "http://169.254.169.254/latest/meta-data/",
            base_url="https://api.example.com/v1/chat",
            allowed_hosts=[],
            resolve=resolve,
        )


def test_a_relative_redirect_is_resolved_against_the_base() -> None:
    resolve = resolver({"api.example.com": [PUBLIC]})

    url = outbound_redirect_check(
        "../../v2/chat?retry=1",
        base_url="https://api.example.com/v1/chat/completions",
        allowed_hosts=[],
        resolve=resolve,
    )

    assert url == "https://api.example.com/v2/chat?retry=1"


def test_the_loopback_allowance_is_for_model_endpoints_only(settings) -> None:
    from agents.urlpolicy import model_url_check

    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.OUTBOUND_ALLOW_LOOPBACK = True

    assert model_url_check("http://127.0.0.1:11434") == "http://127.0.0.1:11434"
    # Tools (and anything else calling the plain check) never get it.
    with pytest.raises(OutboundURLRefused, match="loopback"):
        outbound_url_check("http://127.0.0.1:11434")
    with pytest.raises(OutboundURLRefused, match="private"):
        model_url_check("http://192.168.1.20:11434")

    settings.OUTBOUND_ALLOW_LOOPBACK = False
    with pytest.raises(OutboundURLRefused, match="loopback"):
        model_url_check("http://127.0.0.1:11434")


def test_the_loopback_allowance_defaults_to_the_embedded_single_machine_mode() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    def default_for(**env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("A2A_", "DJANGO_"))}
        clean.pop("DEBUG", None)
        clean.pop("REDIS_URL", None)
        clean.pop("DATABASE_URL", None)
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from a2a_site import settings; print(settings.OUTBOUND_ALLOW_LOOPBACK)",
            ],
            cwd=Path(__file__).resolve().parents[2],
            env=clean | env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()

    assert default_for() == "True"
    assert default_for(REDIS_URL="redis://127.0.0.1:6379/0") == "False"
    assert default_for(DEBUG="false") == "False"
    assert default_for(A2A_OUTBOUND_ALLOW_LOOPBACK="false") == "False"
