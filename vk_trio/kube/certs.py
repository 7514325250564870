"""X.509 for the node: its P-256 key, a certificate request for the CSR API, a self-signed
certificate, and what a PEM certificate says about itself (subject, validity).

Names are the Kubernetes conventions: the subject's CN is the user (``system:node:<name>``), each
O is a group (``system:nodes``). Subject alternative names are IP addresses or DNS names, chosen
by what they parse as. The work is `cryptography`'s (the kubelet API's TLS brings it anyway);
this module only says what a node's key, request and certificate contain, and turns what
`cryptography` refuses into ``CertError``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_EXTENDED_USAGES = {
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
}
_DIGITAL_SIGNATURE_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


class CertError(ValueError):
    """A key or certificate that does not load, or is not the kind the node uses."""


@dataclass(frozen=True)
class PrivateKey:
    """The node's P-256 key (ECDSA, as the kubelet makes for its CSRs)."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def to_pem(self) -> bytes:
        """SEC1 "EC PRIVATE KEY" PEM, what the kubelet writes and OpenSSL (so ``ssl``) loads."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, data: bytes) -> PrivateKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise CertError(f"the private key does not load: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertError(f"a {type(key).__name__} is not the node's EC key")
        return cls(key)


def _name(common_name: str, organizations: Sequence[str]) -> x509.Name:
    groups = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name([*groups, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


B = TypeVar("B", x509.CertificateBuilder, x509.CertificateSigningRequestBuilder)


def _with_extensions(builder: B, sans: Sequence[str], usages: Sequence[str]) -> B:
    not_a_ca = x509.BasicConstraints(ca=False, path_length=None)
    builder = builder.add_extension(not_a_ca, critical=True)
    builder = builder.add_extension(_DIGITAL_SIGNATURE_ONLY, critical=True)
    extended = [_EXTENDED_USAGES[u] for u in usages if u in _EXTENDED_USAGES]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    if sans:
        alternatives = x509.SubjectAlternativeName([_alt_name(name) for name in sans])
        builder = builder.add_extension(alternatives, critical=False)
    return builder


def certificate_request(
    key: PrivateKey,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    sans: Sequence[str] = (),
    usages: Sequence[str] = (),
) -> bytes:
    """A PEM PKCS#10 "CERTIFICATE REQUEST" signed by ``key``."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        _name(common_name, organizations)
    )
    request = _with_extensions(builder, sans, usages).sign(key.key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


def self_signed(
    key: PrivateKey,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    sans: Sequence[str] = (),
    usages: Sequence[str] = ("server auth",),
    lifetime: timedelta = timedelta(days=365),
    now: datetime | None = None,
) -> bytes:
    """A PEM certificate for ``key``, issued by itself."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    name = _name(common_name, organizations)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + lifetime)
    )
    cert = _with_extensions(builder, sans, usages).sign(key.key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, kw_only=True)
class CertInfo:
    common_name: str
    organizations: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    self_issued: bool

    def remaining(self, now: datetime) -> timedelta:
        return self.not_after - now

    def renew_at(self, fraction: float = 0.8) -> datetime:
        """When to ask for the next one: after ``fraction`` of the lifetime, as the kubelet does."""
        return self.not_before + (self.not_after - self.not_before) * fraction


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def cert_info(pem_data: bytes) -> CertInfo:
    """What the first certificate of a PEM bundle says; ``CertError`` if there is none."""
    try:
        cert = x509.load_pem_x509_certificates(pem_data)[0]
    except ValueError as exc:  # also when the bundle holds no certificate
        raise CertError(f"no certificate: {exc}") from exc
    subject = cert.subject
    common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    organizations = subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return CertInfo(
        common_name=_text(common_names[0].value) if common_names else "",
        organizations=tuple(_text(org.value) for org in organizations),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_issued=cert.issuer == subject,
    )
