"""Throwaway X.509 certificates for tests (P-256, SHA-256): CAs, intermediates and leaves with the
subject, usage and validity a test needs: CAs, chains, expired and wrong-usage leaves, none of
which the node itself makes (kube/certs.py makes only the node's own request and certificate)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)
# what a CA's key may do: sign certificates and CRLs (and, as kubeadm's CAs, signatures)
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def issue(
    subject: str,
    *,
    issuer: Issued | None = None,
    orgs: tuple[str, ...] = (),
    ca: bool = False,
    dns: tuple[str, ...] = (),
    usage: x509.ObjectIdentifier | None = None,
    expired: bool = False,
) -> Issued:
    """A certificate for CN=``subject`` (O=each of ``orgs``), signed by ``issuer`` or by itself;
    valid from a day ago for two days, or ``expired`` since yesterday."""
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    name = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - 3 * DAY, now - DAY) if expired else (now - DAY, now + 2 * DAY)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ca:
        builder = builder.add_extension(CA_KEY_USAGE, critical=True)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)
