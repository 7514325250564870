"""Keys, certificate requests and self-signed certificates made without a crypto library, checked
by one (cryptography) and by OpenSSL through ``ssl``; DER parsing bounded."""

from __future__ import annotations

import contextlib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from vk_trio.kube import der
from vk_trio.kube.certs import cert_info, certificate_request, self_signed
from vk_trio.kube.p256 import PrivateKey, verify


def test_a_certificate_request_is_valid_pkcs10_with_the_node_identity_and_sans() -> None:
    key = PrivateKey.generate()
    pem = certificate_request(
        key,
        common_name="system:node:gpu-1",
        organizations=("system:nodes",),
        sans=("10.0.0.5", "gpu-1.example", "::1"),
        usages=("digital signature", "server auth"),
    )
    request = x509.load_pem_x509_csr(pem)
    assert request.is_signature_valid
    assert request.subject.rfc4514_string() == "CN=system:node:gpu-1,O=system:nodes"
    sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "::1"]
    assert sans.get_values_for_type(x509.DNSName) == ["gpu-1.example"]
    usage = request.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]


def test_a_self_signed_certificate_verifies_and_loads_into_openssl(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    pem = self_signed(key, common_name="system:node:n", sans=("127.0.0.1",), now=now)
    cert = x509.load_pem_x509_certificate(pem)
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    info = cert_info(pem)
    assert info.common_name == "system:node:n" and info.self_issued
    assert info.not_after == now + timedelta(days=365)
    assert info.renew_at(0.8) == info.not_before + (info.not_after - info.not_before) * 0.8
    loaded = serialization.load_pem_private_key(key.to_pem(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers().private_value == key.secret
    (tmp_path / "c.pem").write_bytes(pem)
    (tmp_path / "k.pem").write_bytes(key.to_pem())
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    assert PrivateKey.from_pem(key.to_pem()) == key


def test_signatures_verify_and_a_changed_message_does_not() -> None:
    key = PrivateKey.generate()
    signature = key.sign(b"approved")
    assert verify(key.public, b"approved", signature)
    assert not verify(key.public, b"denied", signature)
    assert key.sign(b"approved") != signature  # hedged nonces: fresh randomness each time


def test_cert_info_reads_a_certificate_made_by_another_library() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(x509.oid.NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "system:node:x"),
        ]
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "ca")]))
        .public_key(other.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .sign(other, hashes.SHA256())
    )
    info = cert_info(cert.public_bytes(serialization.Encoding.PEM))
    assert (info.common_name, info.organizations) == ("system:node:x", ("system:nodes",))
    assert (info.not_before, info.not_after) == (start, start + timedelta(days=30))
    assert not info.self_issued


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_der_parsing_of_garbage_raises_only_der_errors(data: bytes) -> None:
    with contextlib.suppress(der.DerError):
        der.parse(data)


def test_der_refuses_deep_nesting_and_lengths_beyond_the_input() -> None:
    deep = b""
    for _ in range(der.MAX_DEPTH + 2):
        deep = der.sequence(deep)
    with pytest.raises(der.DerError, match="deeply"):
        der.parse(deep)
    with pytest.raises(der.DerError):
        der.parse(b"\x04\x84\xff\xff\xff\xff")
    with pytest.raises(der.DerError):
        cert_info(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
