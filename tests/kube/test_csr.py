"""The CSR keeper against a fake CSR API on virtual time: a bounded first wait then the fallback,
the certificate installed when approved later, renewal at 80 % of its life, a denied request
asked again, and the key kept 0600 under the store for a restart."""

from __future__ import annotations

import base64
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing

from vk_trio.errors import NotFound
from vk_trio.kube import csr as kube_csr
from vk_trio.kube.certs import PrivateKey, self_signed
from vk_trio.kube.csr import (
    CertificateKeeper,
    CertificateSigningRequest,
    CertificateSpec,
    CsrCondition,
    CsrStatus,
    Issued,
)
from vk_trio.kube.models import ObjectMeta

SPEC = CertificateSpec(
    signer="kubernetes.io/kubelet-serving",
    usages=("digital signature", "server auth"),
    common_name="system:node:n",
    organizations=("system:nodes",),
    sans=("10.0.0.1",),
)


class FakeCsrApi:
    def __init__(self) -> None:
        self.requests: dict[str, dict[str, Any]] = {}
        self.status: dict[str, CsrStatus] = {}

    async def create(self, _resource: Any, body: dict[str, Any], **_kw: Any) -> Any:
        name = f"{body['metadata']['generateName']}{len(self.requests)}"
        self.requests[name] = body
        self.status[name] = CsrStatus()
        return CertificateSigningRequest(metadata=ObjectMeta(name=name))

    async def get(self, _resource: Any, name: str, **_kw: Any) -> Any:
        if name not in self.status:
            raise NotFound(f"{name} not found")
        return CertificateSigningRequest(metadata=ObjectMeta(name=name), status=self.status[name])

    def issue(self, name: str, *, days: float = 10.0) -> None:
        """Sign as the cluster would (any key: the keeper does not check the issuer)."""
        pem = self_signed(
            PrivateKey.generate(),
            common_name="system:node:n",
            lifetime=timedelta(days=days),
        )
        self.status[name] = CsrStatus(certificate=base64.b64encode(pem).decode())

    def deny(self, name: str) -> None:
        self.status[name] = CsrStatus(
            conditions=[CsrCondition(type="Denied", status="True", message="no")]
        )


async def test_the_fallback_runs_after_the_bounded_wait_and_approval_replaces_it(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(kube_csr, "SLOW_POLL_SECONDS", 5.0)
    api = FakeCsrApi()
    installed: list[Issued] = []
    fallbacks: list[str] = []

    async def install(issued: Issued) -> None:
        installed.append(issued)

    async def fallback(pending: str) -> None:
        fallbacks.append(pending)

    keeper = CertificateKeeper(
        api,  # type: ignore[arg-type]
        SPEC,
        install=install,
        fallback=fallback,
        first_wait=30.0,
        store=tmp_path / "pki",
    )
    async with trio.open_nursery() as nursery:
        started = trio.current_time()
        await nursery.start(keeper.run)
        assert 30.0 <= trio.current_time() - started < 33.0  # bounded, then the fallback
        (name,) = api.requests
        assert fallbacks == [name] and installed == []
        assert api.requests[name]["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
        await trio.sleep(600)
        api.issue(name)  # an operator approves it ten minutes later
        await trio.sleep(6)
        assert len(installed) == 1 and installed[0].csr_name == name
        key_file = tmp_path / "pki" / "key.pem"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        nursery.cancel_scope.cancel()


async def test_a_denied_request_is_asked_again_with_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeCsrApi()
    fallbacks: list[str] = []

    async def install(_issued: Issued) -> None:
        pass

    async def fallback(pending: str) -> None:
        fallbacks.append(pending)

    keeper = CertificateKeeper(
        api,  # type: ignore[arg-type]
        SPEC,
        install=install,
        fallback=fallback,
        first_wait=10.0,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keeper.run)
        await trio.sleep(1)
        (first,) = api.requests
        api.deny(first)
        await trio.sleep(5)
        assert fallbacks == [first]  # refused before the wait was over: fall back at once
        await trio.sleep(31)
        assert len(api.requests) == 2  # asked again after 30 s
        nursery.cancel_scope.cancel()


async def test_an_issued_certificate_is_renewed_at_80_percent_of_its_life(
    autojump_clock: trio.testing.MockClock, monkeypatch: Any
) -> None:
    origin = datetime.now(UTC)
    monkeypatch.setattr(
        kube_csr, "wall_clock", lambda: origin + timedelta(seconds=trio.current_time())
    )
    api = FakeCsrApi()
    installed: list[Issued] = []

    async def install(issued: Issued) -> None:
        installed.append(issued)
        for name, status in api.status.items():
            if not status.certificate:
                api.issue(name)

    keeper = CertificateKeeper(api, SPEC, install=install)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keeper.run)
        await trio.sleep(3)
        (first,) = api.requests
        api.issue(first, days=10)
        await trio.sleep(3)
        assert len(installed) == 1
        life = installed[0].info.not_after - installed[0].info.not_before
        await trio.sleep((life * 0.8).total_seconds() - 3600)
        assert len(api.requests) == 1  # not yet
        await trio.sleep(3600 + 10)
        assert len(api.requests) == 2  # renewed at 80 %, before expiry
        nursery.cancel_scope.cancel()


async def test_a_self_issued_certificate_in_the_store_is_not_taken_for_the_clusters(
    tmp_path: Path,
) -> None:
    store = tmp_path / "pki"
    store.mkdir()
    key = PrivateKey.generate()
    (store / "key.pem").write_bytes(key.to_pem())
    (store / "cert.pem").write_bytes(self_signed(key, common_name="system:node:n"))

    async def install(_issued: Issued) -> None:
        raise AssertionError("not installed")

    keeper = CertificateKeeper(FakeCsrApi(), SPEC, install=install, store=store)  # type: ignore[arg-type]
    assert keeper._load() is None
