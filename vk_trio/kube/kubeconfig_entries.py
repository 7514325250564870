"""Typed reading of one kubeconfig entry, with errors that say which file and field.

kubectl decodes kubeconfigs into Go structs, so a wrong type is an error there, and numbers or
booleans written where a string belongs become their text (``namespace: 123`` is "123"). This
module gives :mod:`vk_trio.kube.kubeconfig` the same behaviour without a schema library, and
holds the exec plugin settings, whose validation follows client-go's.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vk_trio.errors import AuthError, ConfigError

__all__ = ["EXEC_API_VERSIONS", "Body", "ExecConfig", "read_exec_config"]

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")


class Body:
    """A mapping from a kubeconfig, read field by field with kubectl's typing rules."""

    def __init__(self, value: Any, *, where: str) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping")
        self.value: Mapping[str, Any] = value
        self.where = where

    def raw(self, key: str) -> Any:
        return self.value.get(key)

    def text(self, key: str) -> str | None:
        """A string field; YAML numbers and booleans become their text, as in kubectl."""
        value = self.value.get(key)
        if value is None or isinstance(value, str):
            return value or None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        raise ConfigError(f"{self.where}: {key} must be a string")

    def flag(self, key: str) -> bool:
        value = self.value.get(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        raise ConfigError(f"{self.where}: {key} must be true or false")

    def mapping(self, key: str) -> Mapping[str, Any]:
        return Body(self.value.get(key), where=f"{self.where}: {key}").value

    def sequence(self, key: str) -> list[Any]:
        value = self.value.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(f"{self.where}: {key} must be a list")
        return value

    def path(self, key: str, *, base: Path) -> Path | None:
        """A file path, relative to the directory of the kubeconfig that holds it."""
        value = self.text(key)
        return None if value is None else base / value

    def data_or_file(self, key: str, *, base: Path) -> bytes | None:
        """The bytes of ``<key>-data`` (base64) or of the file named by ``<key>``."""
        data, file = self.text(f"{key}-data"), self.path(key, base=base)
        if data is not None and file is not None:
            raise ConfigError(
                f"{self.where}: {key}-data and {key} are both specified; use one of them"
            )
        if data is not None:
            try:
                return base64.b64decode("".join(data.split()), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(f"{self.where}: {key}-data is not valid base64") from None
        if file is not None:
            try:
                return file.read_bytes()
            except OSError as exc:
                raise ConfigError(f"{self.where}: cannot read {key} {file}: {exc}") from exc
        return None


@dataclass(frozen=True, repr=False)
class ExecConfig:
    """An ``exec:`` credential plugin, validated (client.authentication.k8s.io v1/v1beta1)."""

    command: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    api_version: str
    install_hint: str | None
    provide_cluster_info: bool
    interactive_mode: str

    def __repr__(self) -> str:
        names = [name for name, _ in self.env]
        return (
            f"ExecConfig(command={self.command!r}, args={list(self.args)!r}, "
            f"env_names={names!r}, api_version={self.api_version!r})"
        )


def read_exec_config(user: Body, *, base: Path) -> ExecConfig | None:
    """The user's exec plugin, or None; AuthError when it is incomplete."""
    if user.raw("exec") is None:
        return None
    plugin = Body(user.raw("exec"), where=f"{user.where}: exec")
    command, api_version = plugin.text("command"), plugin.text("apiVersion")
    if not command:
        raise AuthError(f"{plugin.where}: command must be specified to use an exec plugin")
    if api_version not in EXEC_API_VERSIONS:
        raise AuthError(
            f"{plugin.where}: apiVersion {api_version!r} is not supported; "
            f"use one of {', '.join(EXEC_API_VERSIONS)}"
        )
    mode = plugin.text("interactiveMode")
    if mode is None and api_version.endswith("/v1"):
        raise AuthError(f"{plugin.where}: interactiveMode must be specified for apiVersion v1")
    if mode not in (None, *_INTERACTIVE_MODES):
        raise AuthError(f"{plugin.where}: invalid interactiveMode {mode!r}")
    if os.sep in command and not Path(command).is_absolute():
        command = str(base / command)  # client-go: only commands with a path are relative
    return ExecConfig(
        command=command,
        args=tuple(_strings(plugin, "args")),
        env=tuple(_env(plugin)),
        api_version=api_version,
        install_hint=plugin.text("installHint"),
        provide_cluster_info=plugin.flag("provideClusterInfo"),
        interactive_mode=mode or "IfAvailable",
    )


def _strings(body: Body, key: str) -> list[str]:
    holder = [Body({key: item}, where=body.where).text(key) for item in body.sequence(key)]
    return [item or "" for item in holder]


def _env(plugin: Body) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for index, item in enumerate(plugin.sequence("env")):
        var = Body(item, where=f"{plugin.where}: env[{index}]")
        name = var.text("name")
        if not name:
            raise AuthError(f"{var.where}: name must be specified")
        value = var.raw("value")
        if value is None:
            raise AuthError(f"{var.where}: value of {name} must be specified")
        pairs.append((name, var.text("value") or ""))
    return pairs
