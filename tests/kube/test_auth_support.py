"""Shared pieces for the auth tests: a throwaway PKI, kubeconfig writing, exec plugin scripts.

(Named test_* so it can live beside the tests it serves; it holds no tests itself.)
"""

from __future__ import annotations

import datetime
import functools
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "kubernetes.internal"


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes
    other_client_cert_pem: bytes
    other_client_key_pem: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    *,
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    issuer_name: x509.Name | None,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert, key


@functools.cache
def pki() -> Pki:
    """A CA, a server certificate for SERVER_NAME only, and two client certificates."""
    ca, ca_key = _issue(subject="test-ca", issuer_key=None, issuer_name=None, ca=True)
    pem = serialization.Encoding.PEM

    def leaf(subject: str, **kw: Any) -> tuple[bytes, bytes]:
        cert, key = _issue(subject=subject, issuer_key=ca_key, issuer_name=ca.subject, **kw)
        return cert.public_bytes(pem), _key_pem(key)

    server = leaf("apiserver", dns=(SERVER_NAME,), usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client = leaf("vk-trio", usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    other = leaf("vk-trio-rotated", usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(ca.public_bytes(pem), *server, *client, *other)


def write_kubeconfig(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def single_context_config(
    *, cluster: dict[str, Any], user: dict[str, Any] | None = None, namespace: str | None = None
) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": "c"}
    if user is not None:
        context["user"] = "u"
    if namespace is not None:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}] if user is not None else [],
        "contexts": [{"name": "ctx", "context": context}],
        "current-context": "ctx",
    }


def write_plugin(directory: Path, body: str, *, name: str = "plugin.py") -> Path:
    """A Python script usable as an exec plugin command (absolute path, executable)."""
    script = directory / name
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


def exec_credential(api_version: str, **status: Any) -> str:
    return json.dumps({"apiVersion": api_version, "kind": "ExecCredential", "status": status})
