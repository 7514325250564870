"""kubeconfig files → the settings of one context, exactly as kubectl reads them (pure, no I/O
beyond reading the files it names, no trio).

Why our own: the official client costs 105 MB and 290 ms to import and blocks on exec plugins.
This module follows client-go's ``clientcmd`` rules, which are what users expect:

* several files (``KUBECONFIG``) merge entry by entry: the first file to define a cluster,
  user or context name wins, and ``current-context`` comes from the first file that sets it;
* relative paths (certificate-authority, client-certificate, client-key, tokenFile, and an
  exec command containing a ``/``) are relative to the directory of the file that defined them;
* ``*-data`` fields are base64; setting both the data and the file form is an error, as are a
  CA together with insecure-skip-tls-verify, a token together with basic auth, and a client
  certificate without its key;
* a static token, token file, basic auth or client certificate takes precedence over an exec
  plugin; ``auth-provider`` (gcp, azure, oidc) was removed from kubectl and is refused with
  the exec plugin that replaces it.

Everything that can fail raises ConfigError (AuthError for credentials) naming the file.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vk_trio.errors import AuthError, ConfigError
from vk_trio.kube.kubeconfig_entries import Body, ExecConfig, read_exec_config
from vk_trio.kube.kubeconfig_yaml import parse_kubeconfig_text

__all__ = [
    "ExecConfig",
    "Kubeconfig",
    "KubeconfigEntry",
    "ResolvedKubeconfig",
    "load_kubeconfig",
    "resolve_kubeconfig",
]

MAX_KUBECONFIG_BYTES = 16 * 2**20  # real ones, certificates inlined, are a few KiB
_SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
_AUTH_PROVIDER_ALTERNATIVES = {
    "gcp": "the gke-gcloud-auth-plugin exec plugin (gcloud components install "
    "gke-gcloud-auth-plugin; then `gcloud container clusters get-credentials` rewrites the "
    "kubeconfig)",
    "azure": "the kubelogin exec plugin (`kubelogin convert-kubeconfig -l azurecli`)",
    "oidc": "an exec plugin such as kubelogin (int128/kubelogin, `kubectl oidc-login get-token`)",
}
_IMPERSONATION = ("as", "as-uid", "as-groups", "as-user-extra")


@dataclass(frozen=True)
class KubeconfigEntry:
    """One named cluster, user or context, and the file that defined it."""

    name: str
    body: Mapping[str, Any]
    file: Path

    @property
    def base_dir(self) -> Path:
        return self.file.parent


@dataclass(frozen=True)
class Kubeconfig:
    """One or more kubeconfig files merged the way kubectl merges them."""

    files: tuple[Path, ...]
    clusters: Mapping[str, KubeconfigEntry]
    users: Mapping[str, KubeconfigEntry]
    contexts: Mapping[str, KubeconfigEntry]
    current_context: str | None


@dataclass(frozen=True, repr=False)
class ResolvedKubeconfig:
    """What one context says: where the server is and how to authenticate (secrets inside)."""

    context: str
    files: tuple[Path, ...]
    server: str
    namespace: str
    ca_pem: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    token_file: Path | None = None
    username: str | None = None
    password: str | None = None
    exec: ExecConfig | None = None
    exec_cluster_info: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        secrets = {
            "client_key_pem": self.client_key_pem,
            "token": self.token,
            "password": self.password,
        }
        shown = ", ".join(f"{k}={'<redacted>' if v else None}" for k, v in secrets.items())
        return (
            f"ResolvedKubeconfig(context={self.context!r}, server={self.server!r}, "
            f"namespace={self.namespace!r}, token_file={self.token_file}, "
            f"username={self.username!r}, exec={self.exec!r}, {shown})"
        )


def load_kubeconfig(paths: Path | str | Sequence[Path | str]) -> Kubeconfig:
    """Read and merge kubeconfig files (first definition of a name wins, as in kubectl)."""
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    sections: dict[str, dict[str, KubeconfigEntry]] = {name: {} for name in _SECTIONS}
    current: str | None = None
    absolute: list[Path] = []
    for given in files:
        file = given.absolute()
        absolute.append(file)
        document = _read_document(file)
        for section, body_key in _SECTIONS.items():
            for entry in _entries(document, section, body_key, file):
                sections[section].setdefault(entry.name, entry)
        current = current or Body(document, where=str(file)).text("current-context")
    return Kubeconfig(
        files=tuple(absolute),
        clusters=sections["clusters"],
        users=sections["users"],
        contexts=sections["contexts"],
        current_context=current,
    )


def _read_document(file: Path) -> Mapping[str, Any]:
    try:
        if file.stat().st_size > MAX_KUBECONFIG_BYTES:
            raise ConfigError(f"kubeconfig {file}: larger than {MAX_KUBECONFIG_BYTES} bytes")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read kubeconfig {file}: {exc}") from exc
    document = parse_kubeconfig_text(text, source=f"kubeconfig {file}")
    if document is None:
        return {}  # kubectl accepts an empty file as an empty config
    if not isinstance(document, dict):
        raise ConfigError(f"kubeconfig {file}: the top level must be a mapping")
    return document


def _entries(
    document: Mapping[str, Any], section: str, body_key: str, file: Path
) -> list[KubeconfigEntry]:
    where = f"kubeconfig {file}: {section}"
    entries: list[KubeconfigEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(Body(document, where=f"kubeconfig {file}").sequence(section)):
        item_body = Body(item, where=f"{where}[{index}]")
        name = item_body.text("name")
        if not name:
            raise ConfigError(f"{where}[{index}] has no name")
        if name in seen:
            raise ConfigError(f"{where}: duplicate name {name!r}")
        seen.add(name)
        body = item_body.mapping(body_key)
        entries.append(KubeconfigEntry(name=name, body=body, file=file))
    return entries


def resolve_kubeconfig(config: Kubeconfig, *, context: str | None = None) -> ResolvedKubeconfig:
    """The server, TLS material and credentials of ``context`` (default: current-context)."""
    files = ", ".join(str(f) for f in config.files)
    name = context or config.current_context
    if not name:
        raise ConfigError(f"kubeconfig {files} sets no current-context; choose a context")
    if name not in config.contexts:
        raise ConfigError(f'context "{name}" does not exist in kubeconfig {files}')
    entry = config.contexts[name]
    ctx = Body(entry.body, where=f"kubeconfig {entry.file}: context {name!r}")
    cluster_name = ctx.text("cluster")
    if not cluster_name or cluster_name not in config.clusters:
        raise ConfigError(f'cluster "{cluster_name}" of context "{name}" does not exist')
    user_name = ctx.text("user")
    if user_name and user_name not in config.users:
        raise ConfigError(f'user "{user_name}" was not found for context "{name}"')
    user = config.users.get(user_name) if user_name else None
    resolved = ResolvedKubeconfig(
        context=name,
        files=config.files,
        server="",
        namespace=ctx.text("namespace") or "default",
        **_cluster_settings(config.clusters[cluster_name]),
    )
    if user is not None:
        resolved = _with_user(resolved, user)
    return _with_server(resolved, config.clusters[cluster_name])


def _cluster_settings(entry: KubeconfigEntry) -> dict[str, Any]:
    cluster = Body(entry.body, where=f"kubeconfig {entry.file}: cluster {entry.name!r}")
    ca_pem = cluster.data_or_file("certificate-authority", base=entry.base_dir)
    insecure = cluster.flag("insecure-skip-tls-verify")
    if insecure and ca_pem is not None:
        raise ConfigError(
            f"{cluster.where}: specifying a root certificates file with the insecure flag "
            "is not allowed"
        )
    settings = {
        "ca_pem": ca_pem,
        "insecure_skip_tls_verify": insecure,
        "tls_server_name": cluster.text("tls-server-name"),
        "proxy_url": cluster.text("proxy-url"),
    }
    return settings


def _with_server(resolved: ResolvedKubeconfig, entry: KubeconfigEntry) -> ResolvedKubeconfig:
    cluster = Body(entry.body, where=f"kubeconfig {entry.file}: cluster {entry.name!r}")
    server = cluster.text("server")
    if not server:
        raise ConfigError(f'no server found for cluster "{entry.name}" ({entry.file})')
    if "://" not in server:
        tls = resolved.ca_pem or resolved.client_cert_pem or resolved.insecure_skip_tls_verify
        server = ("https://" if tls or resolved.tls_server_name else "http://") + server
    info = _exec_cluster_info(resolved, server, cluster)
    return _replace(resolved, server=server.rstrip("/"), exec_cluster_info=info)


def _exec_cluster_info(resolved: ResolvedKubeconfig, server: str, cluster: Body) -> dict[str, Any]:
    """``spec.cluster`` of KUBERNETES_EXEC_INFO, as client-go builds it."""
    info: dict[str, Any] = {"server": server}
    if resolved.tls_server_name:
        info["tls-server-name"] = resolved.tls_server_name
    if resolved.insecure_skip_tls_verify:
        info["insecure-skip-tls-verify"] = True
    if resolved.ca_pem:
        info["certificate-authority-data"] = base64.b64encode(resolved.ca_pem).decode("ascii")
    if resolved.proxy_url:
        info["proxy-url"] = resolved.proxy_url
    if cluster.flag("disable-compression"):
        info["disable-compression"] = True
    for index, extension in enumerate(cluster.sequence("extensions")):
        named = Body(extension, where=f"{cluster.where}: extensions[{index}]")
        if named.text("name") == "client.authentication.k8s.io/exec":
            info["config"] = named.raw("extension")
    return info


def _with_user(resolved: ResolvedKubeconfig, entry: KubeconfigEntry) -> ResolvedKubeconfig:
    user = Body(entry.body, where=f"kubeconfig {entry.file}: user {entry.name!r}")
    _refuse_unsupported(user, entry.name)
    cert = user.data_or_file("client-certificate", base=entry.base_dir)
    key = user.data_or_file("client-key", base=entry.base_dir)
    if (cert is None) != (key is None):
        missing = "client-key" if key is None else "client-certificate"
        raise AuthError(
            f"{missing}-data or {missing} must be specified for user {entry.name!r} "
            f"to use the clientCert authentication method ({entry.file})"
        )
    token, username, password = user.text("token"), user.text("username"), user.text("password")
    if token and (username or password):
        raise AuthError(
            f"more than one authentication method found for user {entry.name!r}; found "
            f"[token basicAuth], only one is allowed ({entry.file})"
        )
    token_file = user.path("tokenFile", base=entry.base_dir)
    static = bool(token or token_file or username or password or cert)
    exec_config = None if static else read_exec_config(user, base=entry.base_dir)
    return _replace(
        resolved,
        client_cert_pem=cert,
        client_key_pem=key,
        token=token,
        token_file=token_file,
        username=username,
        password=password,
        exec=exec_config,
    )


def _refuse_unsupported(user: Body, name: str) -> None:
    provider = user.raw("auth-provider")
    if provider is not None:
        kind = Body(provider, where=user.where).text("name") or "unnamed"
        alternative = _AUTH_PROVIDER_ALTERNATIVES.get(kind, "an exec plugin")
        raise AuthError(
            f"{user.where}: the {kind!r} auth-provider is not supported (kubectl removed "
            f"auth-providers); use {alternative} in an `exec:` section instead"
        )
    for key in _IMPERSONATION:
        if user.raw(key) is not None:
            raise AuthError(f"{user.where}: impersonation ({key}) is not supported by vk-trio")


def _replace(resolved: ResolvedKubeconfig, **changes: Any) -> ResolvedKubeconfig:
    return dataclasses.replace(resolved, **changes)


def expand_user(path: str, *, env: Mapping[str, str]) -> Path:
    """``~`` at the start of a path, expanded with the HOME of ``env`` (tests inject it)."""
    if path == "~" or path.startswith("~" + os.sep):
        home = env.get("HOME") or str(Path.home())
        return Path(home + path[1:])
    return Path(path)
