"""The kubelet API's TLS: its serving certificate, whichever way it comes, and the client CA.

Three sources, in this order of preference:

1. files (``--tls-cert-file``/``--tls-private-key-file``, the virtual-kubelet library's
   ``APISERVER_CERT_LOCATION``/``APISERVER_KEY_LOCATION``): re-read when they change (checked
   every ``RELOAD_SECONDS``; cert-manager rotates a Secret volume by swapping a symlink), a
   broken pair keeps the previous one and says so;
2. the cluster's CSR API (signer ``kubernetes.io/kubelet-serving``, CN ``system:node:<node>``,
   O ``system:nodes``, the node's addresses as SANs), renewed at 80 % of its life
   (kube/csr.py), kept under ``--state-dir`` across restarts;
3. self-signed, when nobody approves that request within ``APPROVAL_WAIT`` seconds (or with
   ``--serving-cert self-signed``), with a loud warning saying what to run. It is replaced as soon
   as the request is approved.

Every new connection gets the context current at that moment (httpserver's per-connection
context), so a rotation needs no restart and cuts no stream. Clients present a certificate
optionally; one that OpenSSL cannot verify against the client CA gives the request no identity,
so it goes on to the bearer token and, without one, gets 401, as from the kubelet.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from OpenSSL import SSL, crypto

from vk_trio.errors import ConfigError
from vk_trio.httpserver.tls_stream import ask_for_client_certificates
from vk_trio.kube.certs import CertError, CertInfo, PrivateKey, cert_info, self_signed
from vk_trio.kube.client import KubeClient
from vk_trio.kube.csr import CertificateKeeper, CertificateSpec, CsrRefused, Issued
from vk_trio.logs import get_logger

_log = get_logger("vk_trio.api.tls")

RELOAD_SECONDS = 10.0
APPROVAL_WAIT = 30.0
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
SERVING_USAGES = ("digital signature", "server auth")


class TlsError(Exception):
    """A certificate or key that OpenSSL refuses."""


# TLS 1.2 suites as Go's crypto/tls prefers them (forward secrecy, AEAD only); 1.3 has its own
CIPHERS_TLS12 = b"ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
SERVING_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)


def _certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (at least one: cryptography refuses an empty one)."""
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise TlsError(f"{what} does not load: {exc}") from exc


def server_context(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes | None) -> SSL.Context:
    """A TLS 1.2+ server context for a PEM pair (leaf first, then any intermediates), asking for
    (not requiring) a client certificate verified against ``client_ca_pem`` the kubelet's way:
    the CA names are sent in the CertificateRequest, and a certificate that does not verify
    leaves the request without an identity instead of failing the handshake
    (httpserver/tls_stream.py)."""
    chain = _certificates(cert_pem, "the serving certificate")
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
    context.set_cipher_list(CIPHERS_TLS12)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, SERVING_KEY_TYPES):
            raise TypeError(f"a {type(key).__name__} cannot serve TLS here (RSA, ECDSA, Ed25519)")
        context.use_certificate(chain[0])
        for intermediate in chain[1:]:
            context.add_extra_chain_cert(intermediate)
        context.use_privatekey(key)
        context.check_privatekey()
    except (ValueError, TypeError, SSL.Error, crypto.Error) as exc:
        raise TlsError(f"the serving certificate and key do not load: {exc}") from exc
    if client_ca_pem:
        authorities = _certificates(client_ca_pem, "the client CA")
        store = context.get_cert_store()
        assert store is not None  # a fresh context always has one
        try:
            for authority in authorities:
                store.add_cert(crypto.X509.from_cryptography(authority))
                context.add_client_ca(authority)
        except (SSL.Error, crypto.Error) as exc:
            raise TlsError(f"the client CA does not load: {exc}") from exc
        ask_for_client_certificates(context)
    return context


@dataclass(frozen=True)
class _FileStamp:
    cert: tuple[int, int, int]
    key: tuple[int, int, int]
    ca: tuple[int, int, int] | None


def _stat(path: Path) -> tuple[int, int, int]:
    info = path.stat()  # follows symlinks: a swapped ..data link changes the inode
    return info.st_ino, info.st_mtime_ns, info.st_size


class ServingTls:
    """Holds the current server context; ``context()`` is what httpserver calls per connection."""

    def __init__(self, *, client_ca_pem: bytes | None, client_ca_file: Path | None = None) -> None:
        self.client_ca_pem = client_ca_pem
        self.client_ca_file = client_ca_file
        self.source = ""
        self.info: CertInfo | None = None
        self.ready = trio.Event()
        self._context: SSL.Context | None = None

    def context(self) -> SSL.Context:
        if self._context is None:
            raise TlsError("no serving certificate yet")
        return self._context

    def install(self, cert_pem: bytes, key_pem: bytes, *, source: str) -> None:
        self._context = server_context(cert_pem, key_pem, self.client_ca_pem)
        self.source = source
        try:
            self.info = cert_info(cert_pem)
        except CertError:
            self.info = None
        self.ready.set()

    # --- source 1: files --------------------------------------------------------------------

    async def watch_files(
        self,
        cert_file: Path,
        key_file: Path,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Load the pair (a failure at start is a configuration error: the operator named these
        files), then reload it whenever a file changes."""
        try:
            stamp = self._load_files(cert_file, key_file)
        except (OSError, TlsError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise ConfigError(f"--tls-cert-file {cert_file}: {why}") from None
        task_status.started()
        while True:
            await trio.sleep(RELOAD_SECONDS)
            try:
                current = self._stamp(cert_file, key_file)
                if current == stamp:
                    continue
                stamp = self._load_files(cert_file, key_file)
                _log.info("kubelet API: reloaded %s (valid until %s)", cert_file, self._until())
            except (OSError, TlsError) as exc:
                _log.warning("kubelet API: keeping the previous certificate: %s", exc)

    def _stamp(self, cert_file: Path, key_file: Path) -> _FileStamp:
        ca = _stat(self.client_ca_file) if self.client_ca_file else None
        return _FileStamp(_stat(cert_file), _stat(key_file), ca)

    def _load_files(self, cert_file: Path, key_file: Path) -> _FileStamp:
        stamp = self._stamp(cert_file, key_file)
        if self.client_ca_file is not None:
            self.client_ca_pem = self.client_ca_file.read_bytes()
        self.install(cert_file.read_bytes(), key_file.read_bytes(), source="files")
        return stamp

    def _until(self) -> str:
        return self.info.not_after.isoformat() if self.info else "unknown"

    # --- sources 2 and 3: the CSR API, else self-signed ----------------------------------

    def install_self_signed(self, *, node_name: str, sans: tuple[str, ...]) -> None:
        key = PrivateKey.generate()
        cert = self_signed(
            key,
            common_name=f"system:node:{node_name}",
            organizations=("system:nodes",),
            sans=sans,
        )
        self.install(cert, key.to_pem(), source="self-signed")

    def keeper(
        self,
        client: KubeClient,
        *,
        node_name: str,
        sans: tuple[str, ...],
        store: Path | None,
        first_wait: float | None = None,
    ) -> CertificateKeeper:
        first_wait = APPROVAL_WAIT if first_wait is None else first_wait
        spec = CertificateSpec(
            signer=SERVING_SIGNER,
            usages=SERVING_USAGES,
            common_name=f"system:node:{node_name}",
            organizations=("system:nodes",),
            sans=sans,
            name_prefix=f"{node_name}-serving-"[:200],
        )

        async def install(issued: Issued) -> None:
            try:
                self.install(issued.cert_pem, issued.key_pem, source="csr")
            except TlsError as exc:  # the signer's answer does not load: ask again
                raise CsrRefused(f"{issued.csr_name}: {exc}") from exc

        async def fallback(pending: str) -> None:
            self.install_self_signed(node_name=node_name, sans=sans)
            _log.warning(
                "kubelet API: no serving certificate was issued within %.0fs, so it serves a "
                "SELF-SIGNED certificate now. kubectl logs works (the API server does not verify "
                "kubelet certificates unless started with --kubelet-certificate-authority), but "
                "metrics-server refuses it unless run with --kubelet-insecure-tls. Approve the "
                "request to use a certificate from the cluster CA at once: "
                "kubectl certificate approve %s  (or give --tls-cert-file and "
                "--tls-private-key-file, or --serving-cert self-signed to silence this)",
                first_wait,
                pending,
            )

        return CertificateKeeper(
            client,
            spec,
            install=install,
            fallback=fallback,
            first_wait=first_wait,
            store=store,
        )


def load_client_ca(path: Path | None, fallback: bytes | None) -> bytes | None:
    """The client CA: ``--client-ca-file`` if given (it must load), else the cluster CA."""
    if path is None:
        return fallback
    with contextlib.suppress(OSError):
        return path.read_bytes()
    raise ConfigError(f"--client-ca-file {path} cannot be read")
