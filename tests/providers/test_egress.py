"""Where registry lookups may connect: never link-local or metadata addresses, whatever the
operator configured, and the operator's own ranges on top."""

from __future__ import annotations

import ipaddress

import httpcore2
import httpx2
import pytest

from vk_trio.providers.egress import AddressGuard, EgressRefused, Resolver


def resolver(answers: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"],
)
def test_metadata_and_link_local_addresses_are_always_denied(address: str) -> None:
    guard = AddressGuard(deny=())  # even with every operator range removed
    assert guard.denied_by(ipaddress.ip_address(address)) is not None


def test_private_and_loopback_addresses_are_allowed_unless_the_operator_denies_them() -> None:
    guard = AddressGuard()
    for address in ("10.0.0.5", "192.168.1.1", "127.0.0.1", "::1", "fd00:ec2::253"):
        assert guard.denied_by(ipaddress.ip_address(address)) is None
    strict = AddressGuard(deny=("10.0.0.0/8", "127.0.0.0/8"))
    assert strict.denied_by(ipaddress.ip_address("10.1.2.3")) is not None
    assert strict.denied_by(ipaddress.ip_address("::ffff:127.0.0.1")) is not None


async def test_a_name_is_refused_when_any_of_its_addresses_is_denied() -> None:
    guard = AddressGuard(
        resolve=resolver(
            {"ok.test": ["10.0.0.1", "10.0.0.2"], "mixed.test": ["10.0.0.1", "169.254.169.254"]}
        )
    )
    assert await guard.addresses("ok.test", 443) == ["10.0.0.1", "10.0.0.2"]
    with pytest.raises(EgressRefused, match=r"169\.254\.169\.254"):
        await guard.addresses("mixed.test", 443)
    with pytest.raises(httpcore2.ConnectError):  # a name that does not resolve: retryable
        await guard.addresses("gone.test", 443)


def test_urls_may_not_downgrade_nor_name_a_denied_address() -> None:
    guard = AddressGuard()
    registry = httpx2.URL("https://reg.example/v2/")
    guard.check_url(httpx2.URL("https://cdn.example/blob"), came_from=registry)
    guard.check_url(httpx2.URL("http://mirror.local/v2/"))  # a plain-http mirror is the operator's
    for url, why in [
        ("http://cdn.example/blob", "plain http"),
        ("https://[fe80::1]/x", r"fe80::/10"),
        ("gopher://x/", "not a registry URL"),
    ]:
        with pytest.raises(EgressRefused, match=why):
            guard.check_url(httpx2.URL(url), came_from=registry)
