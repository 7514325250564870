"""The Node object vk-trio registers, as data: its labels (and which of them a node identity may
set on itself under NodeRestriction), capacity, status (conditions, addresses, the kubelet
endpoint, node info) and the object created at registration. Pure: registration.py sends it.
"""

from __future__ import annotations

import platform
from typing import Any

from vk_trio import __version__
from vk_trio.config import Config
from vk_trio.kube.timefmt import kube_time, utcnow

PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("NetworkUnavailable", "RouteCreated", "vk-trio needs no pod network routes"),
)


def providers_label(config: Config) -> str:
    """The node's clouds as one label value: ``runpod.vastai`` (commas are not allowed)."""
    return ".".join(config.providers)


def node_labels(config: Config, *, simulated: tuple[str, ...] = ()) -> dict[str, str]:
    """The seeds' labels, and what the node fronts: ``vk-trio.io/provider`` (the first cloud,
    as before several clouds), ``vk-trio.io/providers`` (all of them), one
    ``cloud.vk-trio.io/<name>`` per cloud for node selectors, and ``vk-trio.io/simulated`` naming
    the clouds that are not real (the fake, embedded simulators), so none passes for a cloud."""
    labels = {
        "type": "virtual-kubelet",
        "kubernetes.io/role": "agent",
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/exclude-from-external-load-balancers": "true",
        "vk-trio.io/provider": next(iter(config.providers), ""),
        "vk-trio.io/providers": providers_label(config),
    }
    labels |= {f"cloud.vk-trio.io/{name}": "true" for name in config.providers}
    if simulated:
        labels["vk-trio.io/simulated"] = ".".join(simulated)
    return labels


# NodeRestriction lets a node set on itself, in the kubernetes.io and k8s.io domains, only these
# labels and those of the kubelet.kubernetes.io and node.kubernetes.io domains (its own rule).
NODE_SETTABLE_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)
NODE_SETTABLE_DOMAINS = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _within(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith(f".{parent}")


def node_may_set(key: str) -> bool:
    """May a node identity set this label on its own Node (NodeRestriction)? ``kubernetes.io/
    role`` and ``node-role.kubernetes.io/*`` it may not: those say what a node is for."""
    domain, slash, _ = key.rpartition("/")
    if not slash or not (_within(domain, "kubernetes.io") or _within(domain, "k8s.io")):
        return True
    return key in NODE_SETTABLE_LABELS or any(_within(domain, d) for d in NODE_SETTABLE_DOMAINS)


def node_capacity(config: Config) -> dict[str, str]:
    return {
        "cpu": config.cpu,
        "memory": config.memory,
        "pods": str(config.max_pods),
        "nvidia.com/gpu": str(config.gpus),
        "ephemeral-storage": "100Ti",
    }


def node_status(
    config: Config,
    *,
    ready: bool,
    node_ip: str,
    hostname: bool = False,
    kubelet_port: int | None = None,
    extra: dict[str, tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    now = kube_time(utcnow())
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
        }
        for kind, reason, message in PRESSURE_CONDITIONS
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "vk-trio is ready" if ready else "vk-trio is starting",
            "lastHeartbeatTime": now,
        }
    )
    for kind, (status, reason, message) in sorted((extra or {}).items()):
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
            }
        )
    capacity = node_capacity(config)
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": node_ip},
            *([{"type": "Hostname", "address": config.node_name}] if hostname else []),
        ],
        "daemonEndpoints": {
            "kubeletEndpoint": {
                "Port": config.kubelet_port if kubelet_port is None else kubelet_port
            }
        },
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": f"vk-trio {config.provider}",
            "containerRuntimeVersion": f"{providers_label(config)}://cloud",
            "kubeletVersion": f"v1.37.1-vk-trio-{__version__}",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_object(
    config: Config,
    *,
    node_ip: str,
    hostname: bool = False,
    simulated: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"providerID": f"vk-trio://{providers_label(config)}/{config.node_name}"}
    taint = config.taint_parts()
    if taint is not None:
        key, value, effect = taint
        spec["taints"] = [{"key": key, "value": value, "effect": effect}]
    return {
        "metadata": {
            "name": config.node_name,
            "labels": node_labels(config, simulated=simulated) if labels is None else labels,
        },
        "spec": spec,
        "status": node_status(config, ready=False, node_ip=node_ip, hostname=hostname),
    }
