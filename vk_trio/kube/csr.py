"""Certificates from the cluster's CSR API: ask, wait (bounded) for approval, fetch, renew.

A kubelet gets its certificates this way: it makes a key, creates a CertificateSigningRequest for
a signer (``kubernetes.io/kubelet-serving`` for its HTTPS port, ``kubernetes.io/kube-apiserver-
client-kubelet`` for its own identity), waits until someone (a human, an approver controller)
approves it and the signer issues the certificate, and asks again before the certificate expires.
:class:`CertificateKeeper` does exactly that for any signer and usages, so the serving certificate
of the kubelet API and a future client identity share one piece of code.

What a caller decides: the request (:class:`CertificateSpec`), how long to wait for a first
certificate before its ``fallback`` runs (the kubelet API serves a self-signed certificate
meanwhile), and where to keep the key and certificate across restarts (``store``, files 0600).
Approval is never done here: a node agent that approves its own serving certificate would make
the approval meaningless.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import trio

from vk_trio.errors import KubeError, NotFound
from vk_trio.kube.certs import CertError, CertInfo, PrivateKey, cert_info, certificate_request
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import K, ObjectMeta
from vk_trio.kube.resources import Resource
from vk_trio.logs import get_logger

_log = get_logger("vk_trio.kube.csr")

POLL_SECONDS = 2.0  # while waiting for the first certificate
SLOW_POLL_SECONDS = 30.0  # after the fallback: someone may still approve it
RETRY_SECONDS = (30.0, 3600.0)  # a denied or vanished request: ask again, backing off to 1 h
CLOCK_CHECK_SECONDS = 60.0  # how often a sleep until a renewal looks at the wall clock
PENDING_LIFETIME = timedelta(hours=24)  # the API's csrcleaner removes pending requests then


class CsrCondition(K):
    type: str
    status: str = ""
    reason: str = ""
    message: str = ""


class CsrSpec(K):
    request: str = ""
    signer_name: str = ""
    usages: list[str] = msgspec.field(default_factory=list)
    expiration_seconds: int | None = None


class CsrStatus(K):
    conditions: list[CsrCondition] = msgspec.field(default_factory=list)
    certificate: str = ""


class CertificateSigningRequest(K):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: CsrSpec = msgspec.field(default_factory=CsrSpec)
    status: CsrStatus = msgspec.field(default_factory=CsrStatus)


CSRS = Resource(
    "apis/certificates.k8s.io/v1",
    "certificatesigningrequests",
    False,
    CertificateSigningRequest,
    "CertificateSigningRequest",
)


class CsrRefused(KubeError):
    """The request was denied or failed, or disappeared before it was answered."""


@dataclass(frozen=True, kw_only=True)
class CertificateSpec:
    """What to ask a signer for."""

    signer: str
    usages: tuple[str, ...]
    common_name: str
    organizations: tuple[str, ...] = ()
    sans: tuple[str, ...] = ()
    expiration_seconds: int | None = None  # a wish: the signer may issue shorter ones
    name_prefix: str = "csr-"


@dataclass(frozen=True, kw_only=True)
class Issued:
    key_pem: bytes
    cert_pem: bytes
    info: CertInfo
    csr_name: str = ""


async def submit(client: KubeClient, spec: CertificateSpec, key: PrivateKey) -> str:
    """Create the CertificateSigningRequest; return its generated name."""
    request = certificate_request(
        key,
        common_name=spec.common_name,
        organizations=spec.organizations,
        sans=spec.sans,
        usages=spec.usages,
    )
    body: dict[str, Any] = {
        "metadata": {"generateName": spec.name_prefix},
        "spec": {
            "request": base64.b64encode(request).decode(),
            "signerName": spec.signer,
            "usages": list(spec.usages),
        },
    }
    if spec.expiration_seconds is not None:
        body["spec"]["expirationSeconds"] = spec.expiration_seconds
    created = await client.create(CSRS, body)
    return created.metadata.name


async def wait_issued(
    client: KubeClient, name: str, *, within: float, poll: float = POLL_SECONDS
) -> bytes | None:
    """The PEM certificate once issued; None when ``within`` seconds pass first.

    Raises :class:`CsrRefused` when the request is denied or failed, or is gone.
    """
    with trio.move_on_after(within):
        while True:
            try:
                csr = await client.get(CSRS, name)
            except NotFound:
                raise CsrRefused(f"certificate signing request {name} disappeared") from None
            for condition in csr.status.conditions:
                if condition.type in ("Denied", "Failed") and condition.status != "False":
                    why = condition.message or condition.reason or condition.type
                    raise CsrRefused(f"certificate signing request {name}: {condition.type}: {why}")
            if csr.status.certificate:
                try:
                    return base64.b64decode(csr.status.certificate)
                except ValueError as exc:
                    raise CsrRefused(f"{name}: the issued certificate is not base64") from exc
            await trio.sleep(poll)
    return None


class CertificateKeeper:
    """Keeps a valid certificate from a signer: loads, requests, waits, renews, forever.

    ``install(issued)`` is called with every certificate (loaded from ``store`` or newly issued).
    ``fallback(name)`` runs once when no valid certificate arrived within ``first_wait`` seconds;
    ``name`` is the pending request (what ``kubectl certificate approve`` needs). The keeper then
    keeps waiting for that request and installs the certificate if it is approved later.
    """

    def __init__(
        self,
        client: KubeClient,
        spec: CertificateSpec,
        *,
        install: Callable[[Issued], Awaitable[None]],
        fallback: Callable[[str], Awaitable[None]] | None = None,
        first_wait: float = 30.0,
        store: Path | None = None,
        renew_fraction: float = 0.8,
    ) -> None:
        self.client = client
        self.spec = spec
        self.install = install
        self.fallback = fallback
        self.first_wait = first_wait
        self.store = store
        self.renew_fraction = renew_fraction
        self.current: Issued | None = None
        self.pending: str = ""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """``started`` once a certificate (or the fallback) is in place; then renews forever."""
        started = False

        async def ready(fallback_for: str | None) -> None:
            nonlocal started
            if started:
                return
            if fallback_for is not None and self.fallback is not None:
                await self.fallback(fallback_for)
            if fallback_for is None or self.fallback is not None:
                started = True
                task_status.started()

        loaded = self._load()
        if loaded is not None:
            await self._take(loaded)
        failures = 0
        while True:
            if self.current is not None:
                await ready(None)
                await _sleep_until(self.current.info.renew_at(self.renew_fraction))
            try:
                issued = await self._request(slow=ready)
            except (CsrRefused, KubeError) as exc:
                delay = min(RETRY_SECONDS[0] * 2**failures, RETRY_SECONDS[1])
                failures += 1
                _log.warning(
                    "no certificate from %s (%s); asking again in %.0fs",
                    self.spec.signer,
                    exc,
                    delay,
                )
                if self.current is None:
                    await ready(self.pending or "(none: the request could not be created)")
                await trio.sleep(delay)
                continue
            failures = 0
            await self._take(issued)

    async def _request(self, *, slow: Callable[[str], Awaitable[None]]) -> Issued:
        key = PrivateKey.generate()
        self.pending = ""
        name = self.pending = await submit(self.client, self.spec, key)
        _log.info(
            "asked %s for a certificate: certificatesigningrequest %s", self.spec.signer, name
        )
        cert = await wait_issued(self.client, name, within=self.first_wait)
        if cert is None:
            if self.current is None:
                await slow(name)
            remaining = PENDING_LIFETIME.total_seconds() - self.first_wait
            cert = await wait_issued(self.client, name, within=remaining, poll=SLOW_POLL_SECONDS)
            if cert is None:
                raise CsrRefused(f"certificate signing request {name} was never approved")
        self.pending = ""
        try:
            info = cert_info(cert)
        except CertError as exc:
            raise CsrRefused(f"{name}: the issued certificate cannot be read: {exc}") from exc
        return Issued(key_pem=key.to_pem(), cert_pem=cert, info=info, csr_name=name)

    async def _take(self, issued: Issued) -> None:
        self.current = issued
        self._save(issued)
        await self.install(issued)
        _log.info(
            "certificate for %s valid until %s (renewal from %s)",
            issued.info.common_name,
            issued.info.not_after.isoformat(),
            issued.info.renew_at(self.renew_fraction).isoformat(),
        )

    def _load(self) -> Issued | None:
        if self.store is None:
            return None
        try:
            key_pem = (self.store / "key.pem").read_bytes()
            cert_pem = (self.store / "cert.pem").read_bytes()
            info = cert_info(cert_pem)
            PrivateKey.from_pem(key_pem)
        except (OSError, CertError):
            return None
        if info.not_after <= datetime.now(UTC) or info.self_issued:
            return None
        if info.common_name != self.spec.common_name:  # another node's (a renamed node)
            return None
        return Issued(key_pem=key_pem, cert_pem=cert_pem, info=info)

    def _save(self, issued: Issued) -> None:
        if self.store is None or not issued.csr_name:
            return
        self.store.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, data in (("key.pem", issued.key_pem), ("cert.pem", issued.cert_pem)):
            write_private(self.store / name, data)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def wall_clock() -> datetime:
    return datetime.now(UTC)


async def _sleep_until(when: datetime) -> None:
    """Sleep until a wall-clock time, looking at the clock every ``CLOCK_CHECK_SECONDS`` (trio's
    clock is monotonic and stands still while a machine is suspended: a laptop that slept for a
    week renews within a minute of waking)."""
    while True:
        left = (when - wall_clock()).total_seconds()
        if left <= 0:
            return
        await trio.sleep(min(max(left, 1.0), CLOCK_CHECK_SECONDS))
