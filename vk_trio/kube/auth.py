"""Credentials for the Kubernetes API, found the way kubectl finds them, with no network call.

:func:`resolve_credentials` looks, in order, at:

1. an explicit kubeconfig path (``--kubeconfig``; then ``KUBECONFIG`` is ignored);
2. ``KUBECONFIG``: one or more files (``os.pathsep``-separated, missing ones skipped), merged
   as kubectl merges them (see :mod:`vk_trio.kube.kubeconfig`);
3. the in-cluster service account, when ``KUBERNETES_SERVICE_HOST`` is set and the token file
   exists (before ``~/.kube/config``, unlike client-go, so a stray file baked into an image
   never overrides the pod's own identity);
4. ``~/.kube/config``, only when ``KUBECONFIG`` is unset.

The result, :class:`Credentials`, is what the HTTP client needs: the server URL, TLS material
(:meth:`Credentials.ssl_context`) and a :class:`~vk_trio.kube.auth_tokens.TokenSource` that
keeps the ``Authorization`` header fresh (token files re-read, exec plugins re-run). The
client must call ``token_source.invalidate()`` after a 401 and retry once. It may pass
``tls_server_name`` as the httpx ``sni_hostname`` extension, but need not: the SSLContext
already verifies that name (see :mod:`vk_trio.kube.auth_tls`).

An exec plugin runs once inside :func:`resolve_credentials`, so a broken plugin fails at
start-up and a plugin that returns a client certificate has it in ``client_cert_pem`` before
the first connection. When such a plugin later returns a new certificate, contexts made by
:meth:`Credentials.ssl_context` load it for new connections.

Secrets never appear in reprs, exception messages or logs (they are registered with
:func:`vk_trio.logs.redact`).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import trio

from vk_trio.errors import AuthError
from vk_trio.kube.auth_tls import build_ssl_context
from vk_trio.kube.auth_tokens import (
    BasicAuthSource,
    ExecCredentialSource,
    FileTokenSource,
    StaticTokenSource,
    TokenSource,
)
from vk_trio.kube.kubeconfig import (
    Kubeconfig,
    ResolvedKubeconfig,
    expand_user,
    load_kubeconfig,
    resolve_kubeconfig,
)
from vk_trio.logs import redact

__all__ = [
    "IN_CLUSTER",
    "IN_CLUSTER_ROOT",
    "Credentials",
    "Kubeconfig",
    "ResolvedKubeconfig",
    "TokenSource",
    "credentials_from_kubeconfig",
    "find_kubeconfig_files",
    "in_cluster_available",
    "load_kubeconfig",
    "resolve_credentials",
    "resolve_in_cluster",
    "resolve_kubeconfig",
]

IN_CLUSTER_ROOT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER = "in-cluster"  # Credentials.source of a pod's service account


@dataclass(frozen=True, repr=False)
class Credentials:
    """Everything needed to talk to one API server as one identity."""

    server: str
    """Base URL without a trailing slash, e.g. ``https://10.96.0.1:443``."""
    namespace: str
    ca_pem: bytes | None
    """PEM (or DER) of the CA to trust; None means the system trust store."""
    insecure_skip_tls_verify: bool
    tls_server_name: str | None
    client_cert_pem: bytes | None
    client_key_pem: bytes | None
    token_source: TokenSource | None
    """token, tokenFile, exec plugin or basic auth; None when only a client cert (or nothing)."""
    proxy_url: str | None = None
    """The cluster's ``proxy-url``, recorded; honouring it is the client's choice."""
    source: str = ""
    """Where these came from, for logs: a kubeconfig path and context, or "in-cluster"."""

    def ssl_context(self) -> ssl.SSLContext:
        """A fresh client SSLContext: our CA (or system store), client cert, pinned server name.

        Pass it as ``verify=`` to httpx2. If ``tls_server_name`` is set, the context verifies
        and sends SNI for that name whatever host the client connects to.
        """
        context = build_ssl_context(
            ca_pem=self.ca_pem,
            insecure_skip_tls_verify=self.insecure_skip_tls_verify,
            tls_server_name=self.tls_server_name,
            client_cert_pem=self.client_cert_pem,
            client_key_pem=self.client_key_pem,
        )
        if isinstance(self.token_source, ExecCredentialSource):
            self.token_source.bind_ssl_context(context)
        return context

    def __repr__(self) -> str:
        ca = f"<{len(self.ca_pem)} bytes>" if self.ca_pem else None
        cert = f"<{len(self.client_cert_pem)} bytes>" if self.client_cert_pem else None
        return (
            f"Credentials(server={self.server!r}, namespace={self.namespace!r}, ca_pem={ca}, "
            f"insecure_skip_tls_verify={self.insecure_skip_tls_verify}, "
            f"tls_server_name={self.tls_server_name!r}, client_cert_pem={cert}, "
            f"client_key_pem={'<redacted>' if self.client_key_pem else None}, "
            f"token_source={self.token_source!r}, source={self.source!r})"
        )

    __str__ = __repr__


async def resolve_credentials(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
    in_cluster_root: Path = IN_CLUSTER_ROOT,
) -> Credentials:
    """Find credentials as kubectl would (order in the module docstring); AuthError if none.

    ``context`` selects a kubeconfig context (default: current-context); it is ignored for
    in-cluster credentials. ``env`` replaces ``os.environ`` (KUBECONFIG, HOME,
    KUBERNETES_SERVICE_*, and the environment of exec plugins).
    """
    environ: Mapping[str, str] = dict(os.environ) if env is None else env
    found = await trio.to_thread.run_sync(
        functools.partial(
            _find_and_resolve,
            kubeconfig=kubeconfig,
            context=context,
            env=environ,
            in_cluster_root=in_cluster_root,
        )
    )
    if isinstance(found, ResolvedKubeconfig):
        return await credentials_from_kubeconfig(found, env=environ)
    await _check_token(found.token_source)
    return found


def find_kubeconfig_files(
    *, kubeconfig: str | None, env: Mapping[str, str]
) -> tuple[list[Path], str]:
    """The kubeconfig files to merge (maybe none) and a sentence saying what was looked for.

    The home default is returned only when KUBECONFIG is unset; it then comes after
    in-cluster credentials, so callers check :func:`in_cluster_available` first.
    """
    if kubeconfig:
        path = expand_user(kubeconfig, env=env)
        if not path.is_file():
            raise AuthError(f"kubeconfig {path} (given explicitly) does not exist")
        return [path], f"kubeconfig {path}"
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        paths = [expand_user(p, env=env) for p in dict.fromkeys(listed)]
        return [p for p in paths if p.is_file()], f"KUBECONFIG={env['KUBECONFIG']}"
    default = expand_user(os.path.join("~", ".kube", "config"), env=env)
    return ([default] if default.is_file() else []), f"{default}"


def _find_and_resolve(
    *, kubeconfig: str | None, context: str | None, env: Mapping[str, str], in_cluster_root: Path
) -> ResolvedKubeconfig | Credentials:
    files, looked_at = find_kubeconfig_files(kubeconfig=kubeconfig, env=env)
    explicit = bool(kubeconfig) or any(env.get("KUBECONFIG", "").split(os.pathsep))
    if files and explicit:
        return resolve_kubeconfig(load_kubeconfig(files), context=context)
    if in_cluster_available(env=env, root=in_cluster_root):
        return resolve_in_cluster(env=env, root=in_cluster_root)
    if files:
        return resolve_kubeconfig(load_kubeconfig(files), context=context)
    raise AuthError(
        f"no Kubernetes credentials found: {looked_at} names no existing file, and this is not "
        f"a pod (KUBERNETES_SERVICE_HOST unset or no token at {in_cluster_root / 'token'}); "
        "pass --kubeconfig or set KUBECONFIG"
    )


def in_cluster_available(*, env: Mapping[str, str], root: Path = IN_CLUSTER_ROOT) -> bool:
    """True inside a pod with a service-account token (what client-go checks)."""
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (root / "token").is_file()


def resolve_in_cluster(*, env: Mapping[str, str], root: Path = IN_CLUSTER_ROOT) -> Credentials:
    """The pod's service account: API server from the environment, token/CA/namespace files."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise AuthError(
            "in-cluster credentials need KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"
        )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    ca_path = root / "ca.crt"
    try:
        ca_pem: bytes | None = ca_path.read_bytes()
    except OSError:
        ca_pem = None  # client-go logs this and falls back to the system trust store
    try:
        namespace = (root / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        namespace = ""
    return Credentials(
        server=f"https://{host}:{port}",
        namespace=namespace or "default",
        ca_pem=ca_pem,
        insecure_skip_tls_verify=False,
        tls_server_name=None,
        client_cert_pem=None,
        client_key_pem=None,
        token_source=FileTokenSource(root / "token"),
        source=IN_CLUSTER,
    )


async def credentials_from_kubeconfig(
    resolved: ResolvedKubeconfig, *, env: Mapping[str, str]
) -> Credentials:
    """Turn a resolved context into Credentials, running its exec plugin once if it has one."""
    cert, key = resolved.client_cert_pem, resolved.client_key_pem
    source = _token_source(resolved, env=env)
    if isinstance(source, ExecCredentialSource):
        credential = await source.credential()
        if credential.client_cert_pem and credential.client_key_pem:
            cert, key = credential.client_cert_pem, credential.client_key_pem
    else:
        await _check_token(source)
    if key is not None:
        redact(key.decode("utf-8", errors="replace"))
    files = ":".join(str(f) for f in resolved.files)
    return Credentials(
        server=resolved.server,
        namespace=resolved.namespace,
        ca_pem=resolved.ca_pem,
        insecure_skip_tls_verify=resolved.insecure_skip_tls_verify,
        tls_server_name=resolved.tls_server_name,
        client_cert_pem=cert,
        client_key_pem=key,
        token_source=source,
        proxy_url=resolved.proxy_url,
        source=f"kubeconfig {files}, context {resolved.context}",
    )


def _token_source(resolved: ResolvedKubeconfig, *, env: Mapping[str, str]) -> TokenSource | None:
    """kubectl's precedence: token file (inline token as fallback), token, basic, exec."""
    if resolved.token_file is not None:
        return FileTokenSource(resolved.token_file, fallback=resolved.token)
    if resolved.token:
        return StaticTokenSource(resolved.token)
    if resolved.username or resolved.password:
        return BasicAuthSource(resolved.username or "", resolved.password or "")
    if resolved.exec is not None:
        return ExecCredentialSource(resolved.exec, env=env, cluster_info=resolved.exec_cluster_info)
    return None


async def _check_token(source: TokenSource | None) -> None:
    """Read a token file now, so a missing or empty one fails at start-up."""
    if isinstance(source, FileTokenSource):
        await source.authorization()
