"""Running a kubeconfig ``exec:`` credential plugin (aws, gke-gcloud-auth-plugin, kubelogin...).

The plugin protocol is client.authentication.k8s.io v1/v1beta1: we run the command with
``KUBERNETES_EXEC_INFO`` in its environment and read an ``ExecCredential`` from its stdout.
It runs under :func:`trio.run_process`, so a slow plugin never blocks the event loop, and
within a time limit, so a plugin waiting for a human who is not there fails instead of hanging.
vk-trio is a daemon: stdin is closed, ``spec.interactive`` is false, and a plugin that insists
on ``interactiveMode: Always`` is refused up front.

When a plugin fails we show its exit code and the tail of its stderr, with the values of the
environment we gave it and anything shaped like a token scrubbed out; its stdout (which holds
credentials when it works) is never shown.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import trio

from vk_trio.errors import AuthError
from vk_trio.kube.kubeconfig_entries import ExecConfig

__all__ = ["EXEC_TIMEOUT", "ExecCredential", "parse_rfc3339", "run_exec_plugin"]

EXEC_TIMEOUT = 120.0
"""Seconds a plugin may take; cloud CLIs are slow, but not this slow."""

_KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL for a plugin that overran its time."""
_STDERR_EXCERPT = 600
_TOKEN_LIKE = re.compile(
    r"(eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*)|((?:bearer|token)[\s:=\"']+)[^\s\"',]{8,}", re.IGNORECASE
)
_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))$"
)


@dataclass(frozen=True, repr=False)
class ExecCredential:
    """What a plugin returned: a token and/or a client certificate, and when it expires."""

    token: str | None
    client_cert_pem: bytes | None
    client_key_pem: bytes | None
    expires_at: datetime | None

    def __repr__(self) -> str:
        return (
            f"ExecCredential(token={'<redacted>' if self.token else None}, "
            f"client_cert={'yes' if self.client_cert_pem else 'no'}, expires_at={self.expires_at})"
        )


class _Status(msgspec.Struct, rename="camel", frozen=True):
    token: str | None = None
    expiration_timestamp: str | None = None
    client_certificate_data: str | None = None
    client_key_data: str | None = None


class _Document(msgspec.Struct, frozen=True):
    api_version: str = msgspec.field(name="apiVersion")
    kind: str = ""
    status: _Status | None = None


async def run_exec_plugin(
    config: ExecConfig,
    *,
    env: Mapping[str, str],
    cluster_info: Mapping[str, Any] | None,
) -> ExecCredential:
    """Run the plugin once and return its credential; AuthError on any failure."""
    name = config.command
    if config.interactive_mode == "Always":
        raise AuthError(
            f"exec plugin {name} requires an interactive terminal (interactiveMode: Always), "
            "which vk-trio, a daemon, cannot provide; use a non-interactive login for it"
        )
    child_env = {
        **env,
        **dict(config.env),
        "KUBERNETES_EXEC_INFO": _exec_info(config, cluster_info),
    }
    try:
        with trio.fail_after(EXEC_TIMEOUT):
            result = await trio.run_process(
                [config.command, *config.args],
                env=child_env,
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                deliver_cancel=_terminate,
            )
    except trio.TooSlowError:
        raise AuthError(f"exec plugin {name} did not finish within {EXEC_TIMEOUT:g} s") from None
    except OSError as exc:
        reason = "was not found" if isinstance(exc, FileNotFoundError) else f"cannot run: {exc}"
        raise AuthError(f"exec plugin {name} {reason}{_hint(config)}") from None
    if result.returncode != 0:
        excerpt = _scrub(result.stderr, config)
        raise AuthError(
            f"exec plugin {name} failed with exit code {result.returncode}"
            + (f"; stderr: {excerpt}" if excerpt else "")
            + _hint(config)
        )
    return _parse_output(result.stdout, config)


async def _terminate(process: trio.Process) -> None:
    process.terminate()
    with trio.move_on_after(_KILL_GRACE):
        await process.wait()
        return
    process.kill()


def _exec_info(config: ExecConfig, cluster_info: Mapping[str, Any] | None) -> str:
    spec: dict[str, Any] = {"interactive": False}
    if config.provide_cluster_info and cluster_info is not None:
        spec["cluster"] = dict(cluster_info)
    return json.dumps({"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec})


def _hint(config: ExecConfig) -> str:
    return f"\n\n{config.install_hint}" if config.install_hint else ""


def _scrub(stderr: bytes, config: ExecConfig) -> str:
    text = stderr.decode("utf-8", errors="replace").strip()[-_STDERR_EXCERPT:]
    for _, value in config.env:
        if len(value) >= 4:
            text = text.replace(value, "<redacted>")
    return _TOKEN_LIKE.sub(lambda m: (m.group(2) or "") + "<redacted>", text)


def _parse_output(stdout: bytes, config: ExecConfig) -> ExecCredential:
    name = config.command
    try:
        document = msgspec.json.decode(stdout, type=_Document)
    except msgspec.DecodeError as exc:  # ValidationError included; messages hold no values
        raise AuthError(f"exec plugin {name} printed no valid ExecCredential: {exc}") from None
    if document.kind != "ExecCredential":
        raise AuthError(f"exec plugin {name} returned kind {document.kind!r}, not ExecCredential")
    if document.api_version != config.api_version:
        raise AuthError(
            f"exec plugin {name} is configured to use API version {config.api_version}, "
            f"plugin returned version {document.api_version}"
        )
    status = document.status
    if status is None:
        raise AuthError(f"exec plugin {name} didn't return a status field")
    cert, key = status.client_certificate_data, status.client_key_data
    if bool(cert) != bool(key):
        raise AuthError(f"exec plugin {name} returned only one of clientCertificateData/KeyData")
    if not status.token and not cert:
        raise AuthError(f"exec plugin {name} didn't return a token or cert/key pair")
    expires_at = None
    if status.expiration_timestamp:
        try:
            expires_at = parse_rfc3339(status.expiration_timestamp)
        except ValueError:
            raise AuthError(
                f"exec plugin {name} returned an invalid expirationTimestamp "
                f"{status.expiration_timestamp!r}"
            ) from None
    return ExecCredential(
        token=status.token or None,
        client_cert_pem=cert.encode() if cert else None,
        client_key_pem=key.encode() if key else None,
        expires_at=expires_at,
    )


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp as Go writes it (nanoseconds allowed) → aware datetime."""
    match = _RFC3339.match(text)
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, oh, om = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = timedelta(0) if zulu else timedelta(hours=int(oh), minutes=int(om))
    if sign == "-":
        offset = -offset
    naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    return (naive - offset).replace(tzinfo=UTC)
