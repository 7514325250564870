"""The kubelet API's certificate files are re-read when they change (cert-manager rotates a
Secret volume); a broken pair keeps the one being served; self-signed is the node's identity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
import trio.testing

from vk_trio.api.tls import RELOAD_SECONDS, ServingTls, TlsError, server_context
from vk_trio.kube.certs import PrivateKey, self_signed


def write_pair(directory: Path, name: str) -> tuple[Path, Path]:
    key = PrivateKey.generate()
    cert, key_file = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(self_signed(key, common_name=name))
    key_file.write_bytes(key.to_pem())
    return cert, key_file


async def test_changed_files_are_served_to_new_connections_and_broken_ones_are_not(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cert, key = write_pair(tmp_path, "first")
    tls = ServingTls(client_ca_pem=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(tls.watch_files, cert, key)
        first = tls.context()
        assert tls.source == "files" and tls.info is not None and tls.info.common_name == "first"
        write_pair(tmp_path, "second")
        await trio.sleep(RELOAD_SECONDS + 1)
        assert tls.info.common_name == "second" and tls.context() is not first
        cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        os.utime(cert, (1, 1))
        await trio.sleep(RELOAD_SECONDS + 1)
        assert tls.info.common_name == "second"  # still served
        nursery.cancel_scope.cancel()


def test_a_key_that_does_not_match_is_refused(tmp_path: Path) -> None:
    cert = self_signed(PrivateKey.generate(), common_name="a")
    with pytest.raises(TlsError):
        server_context(cert, PrivateKey.generate().to_pem(), None)


def test_the_self_signed_certificate_names_the_node() -> None:
    tls = ServingTls(client_ca_pem=None)
    tls.install_self_signed(node_name="gpu-1", sans=("10.1.2.3",))
    assert tls.source == "self-signed"
    assert tls.info is not None
    assert (tls.info.common_name, tls.info.organizations) == (
        "system:node:gpu-1",
        ("system:nodes",),
    )
