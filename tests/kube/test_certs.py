"""The node's key, certificate requests and self-signed certificates: what they contain, checked
by reading them back and by OpenSSL through ``ssl``; anything else than a certificate or the
node's key is a CertError, never another exception."""

from __future__ import annotations

import contextlib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from vk_trio.kube.certs import CertError, PrivateKey, cert_info, certificate_request, self_signed


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
    assert key.to_pem().startswith(b"-----BEGIN EC PRIVATE KEY-----")  # as the kubelet writes
    loaded = serialization.load_pem_private_key(key.to_pem(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.key.private_numbers()
    assert public.public_numbers() == key.key.public_key().public_numbers()
    (tmp_path / "c.pem").write_bytes(pem)
    (tmp_path / "k.pem").write_bytes(key.to_pem())
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    again = PrivateKey.from_pem(key.to_pem())
    assert again.key.private_numbers() == key.key.private_numbers()


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
@given(st.binary(max_size=400))
def test_garbage_is_a_cert_error_as_a_certificate_or_as_a_key(data: bytes) -> None:
    for pem in (data, b"-----BEGIN CERTIFICATE-----\n" + data + b"\n-----END CERTIFICATE-----\n"):
        with contextlib.suppress(CertError):
            cert_info(pem)
    with contextlib.suppress(CertError):
        PrivateKey.from_pem(
            b"-----BEGIN EC PRIVATE KEY-----\n" + data + b"\n-----END EC PRIVATE KEY-----\n"
        )


def test_a_broken_certificate_or_a_key_of_another_kind_is_a_cert_error() -> None:
    with pytest.raises(CertError):
        cert_info(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertError):
        cert_info(b"no PEM at all")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CertError, match="RSA"):
        PrivateKey.from_pem(rsa_pem)
