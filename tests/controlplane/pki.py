"""The test control plane's certificates and keys, made with `cryptography`.

A real cluster authenticates every component with X.509 client certificates signed by one CA,
and serves TLS with certificates from the same CA. Making them here (ECDSA P-256, a few
milliseconds each) means no openssl/cfssl binaries and a fresh PKI per state directory. The
file names below are the contract with launcher.py; tests mint extra identities with
`mint_client_cert`.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.certs import CA_KEY_USAGE

VALIDITY = datetime.timedelta(days=365)
APISERVER_SANS = (
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "10.96.0.1",
)
LOOPBACK_SANS = ("127.0.0.1", "localhost", "::1")
MASTERS = "system:masters"


@dataclass(frozen=True, kw_only=True)
class KeyPair:
    """Paths of a PEM certificate and its PEM private key."""

    cert: Path
    key: Path


@dataclass(frozen=True, kw_only=True)
class Pki:
    """Every file launcher.py hands to a component, all under one directory."""

    dir: Path

    @property
    def ca(self) -> KeyPair:
        return self._pair("ca")

    @property
    def apiserver(self) -> KeyPair:
        """kube-apiserver's serving certificate (the Service IP and names included)."""
        return self._pair("apiserver")

    @property
    def loopback_serving(self) -> KeyPair:
        """Serving certificate for 127.0.0.1 (controller manager, scheduler, fault proxy)."""
        return self._pair("loopback-serving")

    @property
    def admin(self) -> KeyPair:
        return self._pair("admin")

    @property
    def controller_manager(self) -> KeyPair:
        return self._pair("kube-controller-manager")

    @property
    def scheduler(self) -> KeyPair:
        return self._pair("kube-scheduler")

    @property
    def apiserver_kubelet_client(self) -> KeyPair:
        """What kube-apiserver presents to a kubelet (ours) for logs, exec and stats."""
        return self._pair("apiserver-kubelet-client")

    @property
    def front_proxy_ca(self) -> KeyPair:
        """CA of the aggregation layer's request-header authentication (its own trust root)."""
        return self._pair("front-proxy-ca")

    @property
    def front_proxy_client(self) -> KeyPair:
        return self._pair("front-proxy-client")

    @property
    def service_account_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        return self.dir / "sa.pub"

    def _pair(self, name: str) -> KeyPair:
        return KeyPair(cert=self.dir / f"{name}.crt", key=self.dir / f"{name}.key")


def create_pki(pki_dir: Path) -> Pki:
    """Write a complete, fresh PKI into `pki_dir` and return its file layout."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki = Pki(dir=pki_dir)
    issue = _new_ca(pki.ca, cn="vk-trio-test-ca")
    issue.serving(pki.apiserver, cn="kube-apiserver", sans=APISERVER_SANS)
    issue.serving(pki.loopback_serving, cn="loopback-serving", sans=LOOPBACK_SANS)
    issue.client(pki.admin, cn="admin", groups=(MASTERS,))
    issue.client(pki.controller_manager, cn="system:kube-controller-manager", groups=())
    issue.client(pki.scheduler, cn="system:kube-scheduler", groups=())
    issue.client(
        pki.apiserver_kubelet_client, cn="kube-apiserver-kubelet-client", groups=(MASTERS,)
    )
    front_proxy = _new_ca(pki.front_proxy_ca, cn="vk-trio-test-front-proxy-ca")
    front_proxy.client(pki.front_proxy_client, cn="front-proxy-client", groups=())
    _write_service_account_keys(pki)
    return pki


def _new_ca(pair: KeyPair, *, cn: str) -> _Issuer:
    key = _new_key()
    cert = _ca_certificate(key, cn=cn)
    _write_pair(pair, cert, key)
    return _Issuer(cert=cert, key=key)


def mint_client_cert(pki: Pki, cn: str, *, groups: tuple[str, ...] = ()) -> KeyPair:
    """Sign a client certificate for user `cn` in `groups` (O=) and write it under pki/clients."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join((cn, *groups)))
    pair = _pair_in(pki.dir / "clients", stem)
    _load_issuer(pki).client(pair, cn=cn, groups=groups)
    return pair


def mint_serving_cert(pki: Pki, name: str, *, sans: tuple[str, ...]) -> KeyPair:
    """Sign a serving certificate (e.g. for a kubelet API under test) for DNS names and IPs."""
    pair = _pair_in(pki.dir / "serving", re.sub(r"[^A-Za-z0-9_.-]+", "_", name))
    _load_issuer(pki).serving(pair, cn=name, sans=sans)
    return pair


def _pair_in(directory: Path, stem: str) -> KeyPair:
    directory.mkdir(exist_ok=True)
    return KeyPair(cert=directory / f"{stem}.crt", key=directory / f"{stem}.key")


def _load_issuer(pki: Pki) -> _Issuer:
    ca_cert = x509.load_pem_x509_certificate(pki.ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca.key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"unexpected CA key type {type(ca_key).__name__}")
    return _Issuer(cert=ca_cert, key=ca_key)


@dataclass(frozen=True, kw_only=True)
class _Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def serving(self, pair: KeyPair, *, cn: str, sans: tuple[str, ...]) -> None:
        key = _new_key()
        builder = self._leaf_builder(key, _name(cn, ())).add_extension(
            x509.SubjectAlternativeName([_general_name(san) for san in sans]), critical=False
        )
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
        cert = builder.add_extension(usage, critical=False).sign(self.key, hashes.SHA256())
        _write_pair(pair, cert, key)

    def client(self, pair: KeyPair, *, cn: str, groups: tuple[str, ...]) -> None:
        key = _new_key()
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
        builder = self._leaf_builder(key, _name(cn, groups)).add_extension(usage, False)
        _write_pair(pair, builder.sign(self.key, hashes.SHA256()), key)

    def _leaf_builder(
        self, key: ec.EllipticCurvePrivateKey, subject: x509.Name
    ) -> x509.CertificateBuilder:
        builder = x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
        builder = _validity(builder.public_key(key.public_key()))
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())
        return builder.add_extension(aki, critical=False)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, groups: tuple[str, ...]) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _general_name(san: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(san))
    except ValueError:
        return x509.DNSName(san)


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    builder = builder.serial_number(x509.random_serial_number())
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + VALIDITY
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey, *, cn: str) -> x509.Certificate:
    name = _name(cn, ())
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name)
    builder = _validity(builder.public_key(key.public_key()))
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    builder = builder.add_extension(CA_KEY_USAGE, critical=True).add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    return builder.sign(key, hashes.SHA256())


def _write_pair(pair: KeyPair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    pair.key.write_bytes(_private_pem(key))
    pair.key.chmod(0o600)
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "EC PRIVATE KEY", what kubeadm writes
        serialization.NoEncryption(),
    )


def _write_service_account_keys(pki: Pki) -> None:
    """ES256 key pair: the API server signs tokens with it, the controller manager too."""
    key = _new_key()
    pki.service_account_key.write_bytes(_private_pem(key))
    pki.service_account_key.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pki.service_account_pub.write_bytes(public)
