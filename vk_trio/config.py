"""Configuration of the node agent: one frozen Struct, from defaults < TOML file < env < flags.

Every setting has one name in each place it can be given (flag ``--reconcile-interval``, env
``RECONCILIATION_INTERVAL``, TOML key ``reconcile_interval``); the flag and env names are the
ones our users already type (the seeds' RunPod and Vast.ai kubelets). Validation happens here,
before anything starts, and a bad value raises ConfigError naming the setting, where it came
from, and what would be accepted: nothing starts half-configured.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from vk_trio.errors import ConfigError

PROVIDERS = ("fake", "runpod", "vastai")
CLOUDS = ("runpod", "vastai")  # the real marketplaces, in the default order of preference
DEFAULT_NAMESPACE = "kube-system"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
SERVING_CERTS = ("csr", "self-signed")
NODE_IDENTITIES = ("auto", "bootstrap", "kubeconfig")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kubeconfig: str | None = None
    context: str | None = None
    node_name: str = "virtual-gpu"
    namespace: str = ""  # empty: the ServiceAccount's in a cluster, else DEFAULT_NAMESPACE
    provider: str = ""  # empty: chosen from the API keys present (providers/registry.py)
    reconcile_interval: float = 30.0  # steady-state status poll, seconds
    fast_interval: float = 2.0  # poll while any pod is transitioning
    log_level: str = "info"
    log_format: str = "text"
    health_server_address: str = ":8080"
    max_pods: int = 1000
    gpus: int = 64
    cpu: str = "1000"
    memory: str = "4Ti"
    taint: str = "virtual-kubelet.io/provider={provider}:NoSchedule"
    disable_taint: bool = False
    kube_qps: float = 100.0  # one write per pod: 100 pods/s; bench/lifecycle.py
    kube_burst: int = 200
    grace_period: float = 20.0  # shutdown grace, seconds
    node_ip: str = ""  # InternalIP of the node; empty: the host's outbound address
    kubelet_address: str = "0.0.0.0"
    kubelet_port: int = 10250
    tls_cert_file: str = ""
    tls_key_file: str = ""
    client_ca_file: str = ""
    serving_cert: str = "csr"
    node_identity: str = "auto"  # bootstrap in a pod (its ServiceAccount), else kubeconfig
    node_identity_wait: float = 120.0  # seconds for the node's client certificate at start
    state_dir: str = ""
    log_retention_bytes: int = 1024 * 1024
    log_retention_total_bytes: int = 256 * 1024 * 1024
    max_gpu_price: float | None = None
    max_node_price: float | None = None
    datacenter_ids: tuple[str, ...] = ()
    runpod_api_url: str = "https://api.runpod.io"
    vast_api_url: str = "https://console.vast.ai"
    fake_state_file: str | None = None
    leader_elect: bool = False
    max_disk_gb: int = 1000  # the largest disk a pod may rent, whatever it asks for
    registry_deny_cidrs: tuple[str, ...] = ("169.254.0.0/16", "fe80::/10")
    offload: bool = False  # burst: bind pending managed Jobs' pods to this node (pods/burst.py)
    pending_job_threshold: int = 1
    max_pending_time: float = 0.0  # seconds; 0: the time rule is off
    registry_mirror: str = ""

    @property
    def providers(self) -> tuple[str, ...]:
        """The clouds of ``provider`` in order (empty until the provider is resolved)."""
        return tuple(name for name in self.provider.split(",") if name)

    def taint_parts(self) -> tuple[str, str, str] | None:
        """(key, value, effect) of the node taint, or None when disabled."""
        if self.disable_taint or not self.taint:
            return None
        text = self.taint.replace("{provider}", next(iter(self.providers), ""))
        key_value, _, effect = text.rpartition(":")
        key, _, value = key_value.partition("=")
        return key, value, effect


@dataclass(frozen=True)
class Setting:
    """How one Config field is spelled on the command line and in the environment."""

    field: str
    flag: str
    env: tuple[str, ...] = ()
    help: str = ""


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "kubeconfig",
        "--kubeconfig",
        (),
        "kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config)",
    ),
    Setting("context", "--context", (), "kubeconfig context (default: current-context)"),
    Setting(
        "node_name", "--nodename", ("KUBELET_NODE_NAME", "NODE_NAME"), "name of the virtual node"
    ),
    Setting(
        "namespace",
        "--namespace",
        ("VK_NAMESPACE",),
        "namespace of the agent's own objects (leader Lease); default: the ServiceAccount's "
        f"in a cluster, else {DEFAULT_NAMESPACE}",
    ),
    Setting(
        "provider",
        "--provider",
        ("VK_PROVIDER",),
        "cloud(s): runpod, vastai, both (runpod,vastai: cheapest offer first), or fake; "
        "default: the clouds whose API key is set, else a simulated RunPod",
    ),
    Setting(
        "reconcile_interval",
        "--reconcile-interval",
        ("RECONCILIATION_INTERVAL",),
        "steady-state status poll in seconds",
    ),
    Setting(
        "fast_interval", "--fast-interval", (), "status poll in seconds while pods are changing"
    ),
    Setting("log_level", "--log-level", ("LOG_LEVEL",), "debug, info, warn or error"),
    Setting("log_format", "--log-format", ("LOG_FORMAT",), "text or json"),
    Setting(
        "health_server_address",
        "--health-server-address",
        ("HEALTH_SERVER_ADDRESS",),
        "[host]:port of /healthz, /readyz, /metrics",
    ),
    Setting("max_pods", "--max-pods", ("MAX_PODS",), "pods capacity of the node"),
    Setting("gpus", "--gpus", ("GPUS",), "nvidia.com/gpu capacity of the node"),
    Setting("cpu", "--cpu", (), "cpu capacity of the node"),
    Setting("memory", "--memory", (), "memory capacity of the node"),
    Setting(
        "taint",
        "--taint",
        ("VKUBELET_TAINT",),
        "node taint key=value:effect ({provider}: the first cloud's name)",
    ),
    Setting("disable_taint", "--disable-taint", (), "register the node without a taint"),
    Setting("kube_qps", "--kube-api-qps", ("KUBE_API_QPS",), "Kubernetes API requests per second"),
    Setting("kube_burst", "--kube-api-burst", ("KUBE_API_BURST",), "Kubernetes API burst"),
    Setting("grace_period", "--grace-period", (), "seconds to finish work after SIGTERM"),
    Setting(
        "node_ip",
        "--node-ip",
        ("VKUBELET_POD_IP",),
        "InternalIP of the node, where the API server reaches the kubelet API (default: the "
        "host's outbound address; 127.0.0.1 when the API server is on loopback)",
    ),
    Setting(
        "kubelet_address",
        "--kubelet-address",
        ("KUBELET_ADDRESS",),
        "address the kubelet API (HTTPS) listens on",
    ),
    Setting("kubelet_port", "--kubelet-port", ("KUBELET_PORT",), "port of the kubelet API"),
    Setting(
        "tls_cert_file",
        "--tls-cert-file",
        ("APISERVER_CERT_LOCATION",),
        "serving certificate of the kubelet API (PEM; re-read when it changes)",
    ),
    Setting(
        "tls_key_file",
        "--tls-private-key-file",
        ("APISERVER_KEY_LOCATION",),
        "private key of --tls-cert-file (PEM)",
    ),
    Setting(
        "client_ca_file",
        "--client-ca-file",
        ("APISERVER_CA_CERT_LOCATION",),
        "CA of the client certificates the kubelet API accepts (default: the cluster CA)",
    ),
    Setting(
        "serving_cert",
        "--serving-cert",
        ("VK_SERVING_CERT",),
        "without --tls-cert-file: csr (ask the cluster's CSR API; self-signed until approved) "
        "or self-signed",
    ),
    Setting(
        "node_identity",
        "--node-identity",
        ("VK_NODE_IDENTITY",),
        "bootstrap (pod work as system:node:<node> with a certificate from the cluster's CSR "
        "API, the given credentials only for what a node may not do), kubeconfig (the given "
        "credentials for everything) or auto (bootstrap in a pod, else kubeconfig)",
    ),
    Setting(
        "node_identity_wait",
        "--node-identity-wait",
        ("VK_NODE_IDENTITY_WAIT",),
        "seconds to wait at start for the node's client certificate to be issued before "
        "stopping with an error",
    ),
    Setting(
        "state_dir",
        "--state-dir",
        ("STATE_DIRECTORY", "VK_STATE_DIR"),
        "directory kept across restarts: retained logs, the serving and node client certificates "
        "(default: none, in memory)",
    ),
    Setting(
        "log_retention_bytes",
        "--log-retention-bytes",
        ("LOG_RETENTION_BYTES",),
        "tail of each ended container attempt's log kept for kubectl logs",
    ),
    Setting(
        "log_retention_total_bytes",
        "--log-retention-total-bytes",
        ("LOG_RETENTION_TOTAL_BYTES",),
        "all retained logs of the node together; the oldest attempt goes first",
    ),
    Setting(
        "max_gpu_price",
        "--max-gpu-price",
        ("MAX_GPU_PRICE",),
        "highest $/hour per GPU (an instance with N GPUs: N times it)",
    ),
    Setting(
        "max_node_price",
        "--max-node-price",
        ("MAX_NODE_PRICE",),
        "node-wide budget: most $/hour all of the node's instances may cost together",
    ),
    Setting(
        "datacenter_ids",
        "--datacenter-ids",
        ("DATACENTER_IDS",),
        "comma-separated allowed RunPod datacenters (refused without runpod: use vast.ai/region)",
    ),
    Setting("runpod_api_url", "--runpod-api-url", ("RUNPOD_API_URL",), "RunPod API base URL"),
    Setting("vast_api_url", "--vast-api-url", ("VAST_API_URL",), "Vast.ai API base URL"),
    Setting("fake_state_file", "--fake-state-file", (), "state file of the fake provider (tests)"),
    Setting(
        "leader_elect",
        "--leader-elect",
        ("LEADER_ELECT",),
        "run as one of several replicas: only the Lease holder acts",
    ),
    Setting(
        "max_disk_gb",
        "--max-disk-gb",
        ("MAX_DISK_GB",),
        "largest disk in GB one pod may rent (ephemeral-storage, disk annotations)",
    ),
    Setting(
        "registry_deny_cidrs",
        "--registry-deny-cidrs",
        ("REGISTRY_DENY_CIDRS",),
        "comma-separated address ranges image registry lookups must not reach "
        "(metadata addresses are always refused)",
    ),
    Setting(
        "offload",
        "--offload",
        ("OFFLOAD",),
        "burst: offload pending Jobs annotated runpod.io/managed to this node",
    ),
    Setting(
        "pending_job_threshold",
        "--pending-job-threshold",
        ("PENDING_JOB_THRESHOLD",),
        "offload the oldest pending managed Jobs while more than this many wait",
    ),
    Setting(
        "max_pending_time",
        "--max-pending-time",
        ("MAX_PENDING_TIME",),
        "offload a managed Job pending longer than this many seconds (0: off)",
    ),
    Setting(
        "registry_mirror",
        "--registry-mirror",
        ("VK_TRIO_REGISTRY_MIRROR",),
        "pull-through mirror of image registries, for reading a Job image's default command",
    ),
)
_FIELDS = {s.field: s for s in SETTINGS}


def _coerce(field: str, raw: Any, origin: str) -> Any:
    """Turn a string from env/flags into the field's type (TOML values are already typed)."""
    if field == "provider":
        names = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{origin}: {raw!r} is not a provider name or a list of them")
        return ",".join(name.strip().lower() for name in names if name.strip())
    if field in ("datacenter_ids", "registry_deny_cidrs"):
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return tuple(raw)
    default = getattr(Config(), field)
    if not isinstance(raw, str):
        return raw
    kind = type(default)
    try:
        if field in ("max_gpu_price", "max_node_price"):
            return float(raw) if raw.strip() else None
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on", ""):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ConfigError(
            f"{origin}: {raw!r} is not a valid {kind.__name__} for {_FIELDS[field].flag}"
        ) from None
    return raw


def load_config(
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Config:
    """Merge defaults < TOML file < environment < flags, then validate."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if config_file:
        values.update(_read_toml(config_file))
    for setting in SETTINGS:
        for name in setting.env:
            if name in env:
                values[setting.field] = _coerce(setting.field, env[name], f"env {name}")
                break
    for field, raw in (flags or {}).items():
        if raw is not None:
            values[field] = _coerce(field, raw, _FIELDS[field].flag)
    try:
        config = msgspec.convert(values, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"configuration: {exc}") from None
    validate(config)
    return config


def _read_toml(path: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return {k: _coerce(k, v, f"config file {path}") for k, v in data.items()}


def validate(config: Config) -> None:
    def bad(field: str, why: str) -> ConfigError:
        return ConfigError(f"{_FIELDS[field].flag}: {why}")

    for name in config.__struct_fields__:  # "nan" and "inf" parse as floats (flags and TOML)
        value = getattr(config, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(name, f"{value!r} is not a finite number")
    if not _NAME.match(config.node_name):
        raise bad("node_name", f"{config.node_name!r} is not a valid Kubernetes node name")
    _validate_providers(config.providers)
    if config.reconcile_interval <= 0 or config.fast_interval <= 0:
        raise bad("reconcile_interval", "intervals must be positive seconds")
    if config.log_level.lower() not in ("debug", "info", "warn", "warning", "error"):
        raise bad("log_level", f"{config.log_level!r} is not debug, info, warn or error")
    if config.log_format not in ("text", "json"):
        raise bad("log_format", f"{config.log_format!r} is not text or json")
    if config.max_pods < 1 or config.gpus < 0:
        raise bad("max_pods", "capacity must be positive")
    if config.kube_qps <= 0 or config.kube_burst < 1:
        raise bad("kube_qps", "QPS must be positive and burst at least 1")
    if config.pending_job_threshold < 0:
        raise bad("pending_job_threshold", "must be 0 or more Jobs")
    if config.max_pending_time < 0:
        raise bad("max_pending_time", "must be 0 (off) or more seconds")
    for price in ("max_gpu_price", "max_node_price"):
        value = getattr(config, price)
        if value is not None and value <= 0:
            raise bad(price, "must be a positive $/hour")
    if not 1 <= config.max_disk_gb <= 1_000_000:
        raise bad("max_disk_gb", f"{config.max_disk_gb} is not a whole number of GB in 1..1000000")
    for cidr in config.registry_deny_cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise bad("registry_deny_cidrs", f"{cidr!r} is not an address range") from None
    parse_address(config.health_server_address, field="health_server_address")
    if not 0 <= config.kubelet_port < 65536:  # 0: any free port (the Node says which)
        raise bad("kubelet_port", f"{config.kubelet_port} is not a TCP port")
    if bool(config.tls_cert_file) != bool(config.tls_key_file):
        raise bad("tls_cert_file", "--tls-cert-file and --tls-private-key-file go together")
    if config.serving_cert not in SERVING_CERTS:
        raise bad(
            "serving_cert", f"{config.serving_cert!r} is not one of {', '.join(SERVING_CERTS)}"
        )
    if config.node_identity not in NODE_IDENTITIES:
        raise bad(
            "node_identity",
            f"{config.node_identity!r} is not one of {', '.join(NODE_IDENTITIES)}",
        )
    if config.node_identity_wait <= 0:
        raise bad("node_identity_wait", "must be positive seconds")
    if config.log_retention_bytes < 0 or config.log_retention_total_bytes < 0:
        raise bad("log_retention_bytes", "must be 0 (keep nothing) or more bytes")
    taint = config.taint_parts()
    if taint is not None and (not taint[0] or taint[2] not in TAINT_EFFECTS):
        raise bad(
            "taint", f"{config.taint!r} is not key=value:effect with effect in {TAINT_EFFECTS}"
        )


def _validate_providers(names: tuple[str, ...]) -> None:
    flag = _FIELDS["provider"].flag
    for name in names:
        if name not in PROVIDERS:
            raise ConfigError(f"{flag}: {name!r} is not one of {', '.join(PROVIDERS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{flag}: {','.join(names)!r} names a cloud twice")
    if "fake" in names and len(names) > 1:
        raise ConfigError(f"{flag}: fake stands alone (it rents nothing); drop it or the clouds")


def parse_address(text: str, *, field: str = "health_server_address") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{_FIELDS[field].flag}: {text!r} is not [host]:port")
    return host.strip("[]") or "0.0.0.0", int(port)
