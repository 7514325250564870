"""InstanceSpec → v2 create body, and v2 Pod → Instance. Pure; no I/O.

Ownership. A RunPod pod is ours when its name is ``vk-trio.<node>.<pod uid>.<attempt>``: the
name is deterministic (so a create that timed out can be found again instead of repeated) and
carries node and key (so ``list()`` returns only this node's pods, even after a restart). Env
tags (``VK_TRIO_NODE``, ``VK_TRIO_KEY``) say the same for a human looking at the console.

Command. v2 has a single ``args`` string, "arguments passed to the container entrypoint", and no
way to replace an image's ENTRYPOINT (v1's ``dockerEntrypoint`` is gone). We send the pod's
``command`` + ``args`` as one shell-quoted string: for an image without ENTRYPOINT this replaces
its CMD, exactly like Kubernetes' ``command``; for an image WITH an ENTRYPOINT the words become
that entrypoint's arguments, and a Kubernetes ``command`` cannot override it on RunPod.

Exit codes. RunPod restarts a container whose process exits and reports no exit code anywhere.
For pods that must end (Jobs: restartPolicy Never/OnFailure), the command is wrapped::

    sh -c '"$@"; code=$?; echo "vk-trio:exit-code=$code"; exec sleep infinity' vk-trio CMD...

The shell runs the real command, prints one marker line with its exit code to stdout (which the
v2 log stream carries), then idles so RunPod has nothing to restart; ``list()`` reads the marker
and reports EXITED with the real code, and the agent deletes the pod. CMD is the pod's
``command`` + ``args``; a Job that sets neither runs its image's own CMD, which the provider
reads from the image's registry config (providers/images.py) and passes here as ``default``.
Requirements: the image has a POSIX ``sh``, and either no ENTRYPOINT or one that ends by
running its arguments (``exec "$@"``, as NVIDIA's CUDA images and most entrypoint scripts do):
v2 cannot replace an ENTRYPOINT, so RunPod runs it first with the wrapper as its arguments. An
entrypoint that ignores its arguments never prints the marker, and the pod runs (and bills)
until it is deleted, as it would on plain RunPod: give such Jobs ``activeDeadlineSeconds``.
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime

from vk_trio.providers.base import Instance, InstanceSpec, InstanceState, Port
from vk_trio.providers.runpod import models
from vk_trio.providers.runpod.annotations import HTTP_PORTS, RunPodOptions, container_disk_gb

NAME_PREFIX = "vk-trio."
EXIT_MARKER = "vk-trio:exit-code="
WRAPPER = f'"$@"; code=$?; echo "{EXIT_MARKER}$code"; exec sleep infinity'
EXIT_TAG = "VK_TRIO_EXIT_MARKER"
_MARKER_LINE = re.compile(rf"^{re.escape(EXIT_MARKER)}(\d+)\s*$")


def instance_name(node_name: str, key: str) -> str:
    return f"{NAME_PREFIX}{node_name}.{key}"


def parse_name(name: str, node_name: str) -> tuple[str, int] | None:
    """(pod uid, attempt) when ``name`` is one of this node's pods, else None."""
    prefix = f"{NAME_PREFIX}{node_name}."
    if not name.startswith(prefix):
        return None
    uid, _, attempt = name[len(prefix) :].rpartition(".")
    if not uid or "." in uid or not attempt.isdigit():
        return None
    return uid, int(attempt)


def ports(spec: InstanceSpec, options: RunPodOptions) -> list[str]:
    """``["8888/http", "22/tcp"]``: the annotation when given, else auto-detected (seed 001)."""
    chosen: tuple[Port, ...] = options.ports if options.ports is not None else spec.ports
    out: dict[int, str] = {}
    for port in chosen:
        http = port.protocol == "http" or (options.ports is None and port.number in HTTP_PORTS)
        out.setdefault(port.number, f"{port.number}/{'http' if http else 'tcp'}")
    return list(out.values())


def command_line(spec: InstanceSpec, default: tuple[str, ...] = ()) -> str | None:
    """The v2 ``args`` string (None: the image's own command). ``default``: the image's CMD,
    wrapped in place of the pod's command when a Job sets none."""
    words = [*spec.command, *spec.args] or list(default)
    if spec.wants_exit_code:
        return shlex.join(["sh", "-c", WRAPPER, "vk-trio", *words])
    return shlex.join(words) if words else None


def create_request(
    spec: InstanceSpec,
    options: RunPodOptions,
    *,
    gpu_id: str,
    gpu_count: int,
    cloud: str,
    datacenters: list[str],
    registry: str | None,
    default_command: tuple[str, ...] = (),
) -> models.CreatePodRequest:
    env = dict(spec.env)
    env["VK_TRIO_NODE"] = spec.node_name
    env["VK_TRIO_KEY"] = spec.key
    if spec.wants_exit_code:
        env[EXIT_TAG] = EXIT_MARKER
    gpu = models.GpuRequest(
        id=gpu_id,
        count=gpu_count,
        allowed_cuda_versions=list(options.allowed_cuda_versions) or None,
    )
    return models.CreatePodRequest(
        name=instance_name(spec.node_name, spec.key),
        image=spec.image or None,
        template_id=options.template_id,
        args=command_line(spec, default_command),
        disk=container_disk_gb(options, spec.need.disk_gb),
        env=env,
        ports=ports(spec, options) or None,
        registry=registry,
        cloud=cloud,
        data_center_ids=datacenters or None,
        gpu=gpu,
    )


def exit_code_in(line: str) -> int | None:
    match = _MARKER_LINE.match(line)
    return int(match.group(1)) if match else None


def wants_marker(pod: models.Pod) -> bool:
    return (pod.env or {}).get(EXIT_TAG) == EXIT_MARKER


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def proxy_url(pod_id: str, port: int) -> str:
    return f"https://{pod_id}-{port}.proxy.runpod.net"


def to_instance(
    pod: models.Pod,
    *,
    node_name: str,
    exit: tuple[int, datetime | None] | None = None,
) -> Instance | None:
    """The Instance for one of our pods (None: not ours, or already terminated)."""
    owner = parse_name(pod.name, node_name)
    if owner is None or pod.status == "TERMINATED":
        return None
    uid, attempt = owner
    declared = [p.partition("/") for p in pod.ports or []]
    tcp = {int(n) for n, _, proto in declared if proto == "tcp" and n.isdigit()}
    http = [int(n) for n, _, proto in declared if proto == "http" and n.isdigit()]
    mapped = {
        p.private
        for p in (pod.runtime.ports or [] if pod.runtime else [])
        if p.type == "tcp" and p.public is not None
    }
    public_ip = next(
        (
            p.ip
            for p in (pod.runtime.ports or [] if pod.runtime else [])
            if p.type == "tcp" and p.public is not None and p.ip
        ),
        "",
    )
    state, ready, message = InstanceState.PROVISIONING, False, ""
    exit_code, finished = None, None
    if exit is not None:
        state, (exit_code, finished) = InstanceState.EXITED, exit
        message = f"the container's command exited with code {exit_code}"
    elif pod.status == "STARTING":
        state = InstanceState.STARTING
    elif pod.status == "RUNNING" and pod.runtime is None:
        # Measured: RUNNING is reported before the container is up; it is not running yet.
        state, message = InstanceState.STARTING, "RunPod reports RUNNING, container not up yet"
    elif pod.status == "RUNNING":
        state, ready = InstanceState.RUNNING, tcp <= mapped
        if not ready:
            message = "waiting for TCP port mappings"
    elif pod.status == "EXITED":
        state, message = InstanceState.EXITED, "the pod was stopped on RunPod"
    elif pod.status == "ERROR":
        state, message = InstanceState.FAILED, "RunPod reports the pod in ERROR"
    annotations = {
        "runpod.io/pod-id": pod.id,
        "runpod.io/gpu-type": pod.gpu.id if pod.gpu else "",
        "runpod.io/datacenter": pod.data_center_id or "",
        "runpod.io/cost-per-hr": f"{pod.cost:.4f}",
    }
    for number in http:
        annotations[f"runpod.io/proxy-url-{number}"] = proxy_url(pod.id, number)
    return Instance(
        instance_id=pod.id,
        node_name=node_name,
        pod_uid=uid,
        attempt=attempt,
        state=state,
        ready=ready,
        exit_code=exit_code,
        message=message,
        public_ip=public_ip,
        created_at=parse_time(pod.created_at),
        started_at=parse_time(pod.started_at),
        finished_at=finished,
        gpu_type=pod.gpu.id if pod.gpu else "",
        gpu_count=pod.gpu.count if pod.gpu else 0,
        price_per_hour=pod.cost,
        location=pod.data_center_id or "",
        image=pod.image,
        annotations=annotations,
    )
