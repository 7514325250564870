"""Where requests made on a tenant's behalf may go: never to link-local or metadata addresses.

The image registry lookup (images.py) fetches URLs a tenant controls: the registry host in the
pod's image reference, the token realm and the redirects that registry names. Left alone, a pod
could point the agent at the cloud metadata service (``169.254.169.254``, ``fd00:ec2::254``) and
have it fetch instance credentials, or at anything else the agent's host can reach. So:

* ``ALWAYS_DENIED``: link-local ranges and the metadata addresses are refused, whatever the
  operator configured, and so is a host name that resolves to any of them;
* ``--registry-deny-cidrs`` (default: the link-local ranges) adds the operator's own ranges; a
  private in-cluster registry (10.x, a Service IP) stays reachable unless listed there, as it is
  for a container runtime;
* the check happens where the connection is made (``GuardedBackend``), on the address actually
  connected to, so a name that resolves differently a second time (DNS rebinding) gains
  nothing; URLs with a literal address are refused before any request;
* a redirect or token realm may not go from https to http (``check_url``).

Environment proxies are not used for these requests: a proxy would connect on our behalf, to an
address we never see.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import httpcore2
import httpx2
import trio

from vk_trio.providers.base import InvalidSpec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Link-local (where clouds put their metadata services) and AWS's IPv6 metadata address.
ALWAYS_DENIED = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128")
DEFAULT_DENY = ("169.254.0.0/16", "fe80::/10")


class EgressRefused(InvalidSpec):
    """A lookup would have reached an address it may not (or downgraded to plain HTTP)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system's resolver, off the event loop)."""
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressGuard:
    """The ranges requests may not reach, and the check of a host against them."""

    def __init__(self, deny: Iterable[str] = DEFAULT_DENY, *, resolve: Resolver | None = None):
        networks = [ipaddress.ip_network(c, strict=False) for c in (*ALWAYS_DENIED, *deny)]
        self.networks: tuple[IPNetwork, ...] = tuple(dict.fromkeys(networks))
        self.resolve = resolve or system_resolver

    def denied_by(self, address: IPAddress) -> IPNetwork | None:
        """The denied range ``address`` falls in (an IPv4-mapped IPv6 address as its IPv4)."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        for network in self.networks:
            for candidate in candidates:
                if candidate.version == network.version and candidate in network:
                    return network
        return None

    def check_literal(self, host: str) -> None:
        """Refuse ``host`` when it is an address in a denied range (names pass here)."""
        address = _literal(host)
        if address is not None and (network := self.denied_by(address)) is not None:
            raise EgressRefused(f"{host} is in {network}, which registry lookups may not reach")

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``; refused if any of them is denied."""
        self.check_literal(host)
        if _literal(host) is not None:
            return [host.strip("[]")]
        try:
            found = await self.resolve(host, port)
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc
        for text in found:
            address = _literal(text)
            network = self.denied_by(address) if address is not None else None
            if address is None or network is not None:
                raise EgressRefused(
                    f"{host} resolves to {text}, in {network or 'an unusable address'}, which "
                    "registry lookups may not reach"
                )
        if not found:
            raise httpcore2.ConnectError(f"{host} resolves to no address")
        return found

    def check_url(self, url: httpx2.URL, *, came_from: httpx2.URL | None = None) -> None:
        """A URL a registry sent us to (a redirect, a token realm): scheme and address."""
        if url.scheme not in ("https", "http"):
            raise EgressRefused(f"{url.scheme}:// is not a registry URL")
        if came_from is not None and came_from.scheme == "https" and url.scheme == "http":
            raise EgressRefused(
                f"{came_from.host} sent the lookup from https to plain http ({url.host}); refused"
            )
        self.check_literal(url.host)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's trio backend, connecting only to addresses the guard allows."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self._inner = httpcore2.TrioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self.guard.addresses(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore2.ConnectError as exc:  # the next address may answer
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise EgressRefused("registry lookups do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


def guarded_transport(guard: AddressGuard) -> httpx2.AsyncBaseTransport:
    """An httpx2 transport whose every connection goes through ``guard``."""
    context = httpx2.create_ssl_context(trust_env=False)  # loading CAs is the costly part: once
    transport = httpx2.AsyncHTTPTransport(verify=context, trust_env=False)
    # The transport builds its pool with the default backend; swap in one with the guard
    # (httpcore2's public ConnectionPool, the same settings as httpx2's defaults).
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=context,
        max_connections=20,
        max_keepalive_connections=10,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(guard),
    )
    return transport
