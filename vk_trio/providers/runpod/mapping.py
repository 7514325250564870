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

Exit codes and restarts. RunPod restarts a container whose process exits and reports no exit
code anywhere. So the program runs under a wrapper (exit_marker.py) whatever the restart policy,
with a nonce drawn for this attempt::

    sh -c '"$@"; code=$?; echo "vk-trio-exit nonce=N code=$code"; exec sleep infinity' \
        vk-trio CMD...

(``exit $code`` in place of ``exec sleep infinity`` under ``restartPolicy: Always``).

The shell runs the real command and prints one marker line with its exit code to stdout (which
the v2 log stream carries). A Job's wrapper then idles so RunPod has nothing to restart;
``list()`` reads the marker and reports EXITED with the real code, and the agent deletes the
pod. Under ``Always`` the wrapper exits with the program's code and RunPod restarts the
container on the same instance, as a kubelet would: each restart shows as a new ``startedAt``,
and the marker of the run that ended gives its exit code (the pod's restartCount and
lastState). CMD is the pod's ``command`` + ``args``; a Job that sets neither runs its image's own
CMD, which the provider reads from the image's registry config (providers/images.py) and passes
here as ``default``. Requirements: the image has a POSIX ``sh``, and either no ENTRYPOINT or one
that ends by running its arguments (``exec "$@"``, as NVIDIA's CUDA images and most entrypoint
scripts do): v2 cannot replace an ENTRYPOINT, so RunPod runs it first with the wrapper as its
arguments. An entrypoint that ignores its arguments never prints the marker, and the pod runs
(and bills) until it is deleted, as it would on plain RunPod: give such Jobs
``activeDeadlineSeconds``. An ``Always`` pod is wrapped only where that cannot change what runs
(its image has no ENTRYPOINT, or the pod sets ``command``); otherwise it runs as written, and its
restarts are still counted from ``startedAt``, with an unknown exit code.
"""

from __future__ import annotations

import math
import shlex
from datetime import UTC, datetime

from vk_trio.decoding import ascii_digits
from vk_trio.providers import exit_marker
from vk_trio.providers.base import (
    Exit,
    GpuUsage,
    Instance,
    InstanceSpec,
    InstanceState,
    Port,
    Usage,
)
from vk_trio.providers.runpod import models
from vk_trio.providers.runpod.annotations import HTTP_PORTS, RunPodOptions, container_disk_gb

NAME_PREFIX = "vk-trio."
WRAPPER_TAG = "VK_TRIO_WRAPPED"  # env: the restart policy the wrapper was made for
MAX_DISK_GB = 1000  # the default of --max-disk-gb
MAX_ATTEMPT_DIGITS = 9  # attempts are restart counts: int32, and never this many


def instance_name(node_name: str, key: str) -> str:
    return f"{NAME_PREFIX}{node_name}.{key}"


def parse_name(name: str, node_name: str) -> tuple[str, int] | None:
    """(pod uid, attempt) when ``name`` is one of this node's pods, else None.

    The attempt is ASCII digits within int32 (it becomes the pod's restartCount): ``.²`` or a
    20-digit number is no name vk-trio ever gave, so such a pod is not ours."""
    prefix = f"{NAME_PREFIX}{node_name}."
    if not name.startswith(prefix):
        return None
    uid, _, attempt = name[len(prefix) :].rpartition(".")
    if not uid or "." in uid or not ascii_digits(attempt) or len(attempt) > MAX_ATTEMPT_DIGITS:
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


def wrapper(nonce: str, restart_policy: str) -> str:
    """The wrapper script for ``restart_policy`` (see the module docstring)."""
    then = "exit $code" if restart_policy == "Always" else "exec sleep infinity"
    return f'"$@"; code=$?; {exit_marker.echo(nonce, at=None)}; {then}'


def command_line(
    spec: InstanceSpec, default: tuple[str, ...] = (), *, nonce: str | None = None
) -> str | None:
    """The v2 ``args`` string (None: the image's own command). ``default``: the image's CMD,
    wrapped in place of the pod's command when it sets none; ``nonce``: wrap it (None: as is)."""
    words = [*spec.command, *spec.args] or list(default)
    if nonce is not None and words:
        script = wrapper(nonce, spec.restart_policy)
        return shlex.join(["sh", "-c", script, "vk-trio", *words])
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
    nonce: str | None = None,
) -> models.CreatePodRequest:
    """``nonce``: run the program under the exit-code wrapper with it (None: unwrapped)."""
    env = dict(spec.env)
    env["VK_TRIO_NODE"] = spec.node_name
    env["VK_TRIO_KEY"] = spec.key
    args = command_line(spec, default_command, nonce=nonce)
    if nonce is not None and args is not None:
        env[WRAPPER_TAG] = spec.restart_policy
    disk = container_disk_gb(options, spec.need.disk_gb)
    gpu = models.GpuRequest(
        id=gpu_id,
        count=gpu_count,
        allowed_cuda_versions=list(options.allowed_cuda_versions) or None,
    )
    return models.CreatePodRequest(
        name=instance_name(spec.node_name, spec.key),
        image=spec.image or None,
        template_id=options.template_id,
        args=args,
        disk=disk,
        env=env,
        ports=ports(spec, options) or None,
        registry=registry,
        cloud=cloud,
        data_center_ids=datacenters or None,
        gpu=gpu,
    )


def wrapped(pod: models.Pod) -> tuple[str, str] | None:
    """(restart policy, nonce) of a pod whose program runs under our wrapper, else None."""
    policy = (pod.env or {}).get(WRAPPER_TAG)
    nonce = exit_marker.nonce_in(pod.args)
    if policy not in ("Always", "OnFailure", "Never") or nonce is None:
        return None
    return policy, nonce


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time of RunPod's, always timezone-aware (a time without an offset is UTC:
    a naive datetime would be read in local time, and year 1 then breaks ``timestamp()``)."""
    if not text or len(text) > 64:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _port(text: str) -> bool:
    return ascii_digits(text) and len(text) <= 5 and 0 < int(text) <= 65535


def proxy_url(pod_id: str, port: int) -> str:
    return f"https://{pod_id}-{port}.proxy.runpod.net"


def to_instance(
    pod: models.Pod,
    *,
    node_name: str,
    exit: tuple[int, datetime | None] | None = None,
    restarts: int = 0,
    last_exit: Exit | None = None,
) -> Instance | None:
    """The Instance for one of our pods (None: not ours, or already terminated). ``exit``: the
    Job's marker (code, time); ``restarts``/``last_exit``: runs of the container that ended on
    this pod, for restartCount and lastState."""
    owner = parse_name(pod.name, node_name)
    if owner is None or pod.status == "TERMINATED":
        return None
    uid, attempt = owner
    declared = [p.partition("/") for p in pod.ports or []]
    tcp = {int(n) for n, _, proto in declared if proto == "tcp" and _port(n)}
    http = [int(n) for n, _, proto in declared if proto == "http" and _port(n)]
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
        # Measured: RUNNING is reported before the container is up; it is not running yet
        # (no message: a status write per pod for this nuance cost a burst 1,000 PATCHes).
        state = InstanceState.STARTING
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
        restarts=restarts,
        last_exit=last_exit,
        usage=usage_of(pod) if state is InstanceState.RUNNING else None,
    )


def usage_of(pod: models.Pod) -> Usage | None:
    """RunPod's ``runtime`` as Usage: per-GPU utilisation. Its cpu and memory figures are
    percentages of an allocation the v2 Pod does not state (a GPU pod has no vcpuCount or memory
    field), so they cannot become cores or bytes and are left out; so is GPU memory (a
    percentage of a size the Pod does not state either)."""
    runtime = pod.runtime
    if runtime is None or not runtime.gpus:
        return None
    model = pod.gpu.id if pod.gpu else ""
    gpus = tuple(
        GpuUsage(index=index, model=model, duty_cycle=_percent(gpu.util))
        for index, gpu in enumerate(runtime.gpus)
    )
    return Usage(at=datetime.now(UTC), gpus=gpus)


def _percent(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or not 0 <= value <= 100:
        return None
    return float(value)
