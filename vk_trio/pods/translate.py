"""Pod → InstanceSpec: what a cloud instance must run for this pod, or why it never can.

A provider runs ONE container on one rented machine. A pod asking for more than that must fail
with a reason that names the field (``spec.containers[1]``), never run with parts silently
dropped: a trimmed pod looks healthy while doing something else than what its author wrote,
and the user pays for it. So ``check_pod`` rejects, and ``to_instance_spec`` maps only what the
check let through.

Decisions (each is a choice between failing loudly and quietly doing something different):

* Init containers are rejected, sidecars (``restartPolicy: Always``) included: either is a
  second process a provider cannot run beside the app container on the same instance.
* Ephemeral containers (``kubectl debug``) would be rejected too, but kube/models.py does not
  decode ``spec.ephemeralContainers`` yet, so the check reads it only once the field exists.
* Volumes: the ``kube-api-access-*`` projected volume the API server injects into every pod is
  ignored (a service-account token, the cluster CA and the namespace: the instance is outside
  the cluster network and could not use them). ``emptyDir`` is accepted: scratch space that
  starts empty and dies with the pod is what an instance's own disk already is; the container
  runs without a mount there, so the image or the program must create the directory (the usual
  ``/dev/shm`` exists on every GPU cloud). Every other volume carries data we cannot deliver,
  so the pod fails naming ``spec.volumes[i]``.
* Fields no instance has are rejected rather than dropped: ``workingDir``, a per-container
  ``restartPolicy``, a UDP or SCTP port, a resource other than cpu, memory, ephemeral-storage
  and nvidia.com/gpu.
* Ignored because they change nothing for a remote instance: hostNetwork, securityContext,
  probes (not decoded), imagePullPolicy (clouds always pull), nodeSelector and tolerations
  (the scheduler already used them).

The pod's QoS class (Guaranteed, Burstable, BestEffort) is computed here too, from the same
requests and limits, as Kubernetes' ComputePodQOS does; pods/status.py reports it.

PURE: no trio, no I/O. Env values, the registry credential and the merged annotations are
resolved by the caller (pods/env.py, pods/pull_secrets.py, the owning Job).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import msgspec

from vk_trio.decoding import excerpt
from vk_trio.kube.models import Container, Pod, ResourceRequirements
from vk_trio.pods.quantity import Quantity, cpu_millis, gb, mb, parse_quantity
from vk_trio.providers.base import InstanceSpec, InvalidSpec, Port, RegistryAuth, Requirements

GPU = "nvidia.com/gpu"
CPU, MEMORY, EPHEMERAL_STORAGE = "cpu", "memory", "ephemeral-storage"
SUPPORTED_RESOURCES = frozenset({CPU, MEMORY, EPHEMERAL_STORAGE, GPU})
# The largest amounts a pod may ask for: what Kubernetes' int64 resource arithmetic can hold
# (millicores, bytes) and an int32 of GPUs. "1e400" is refused here, with the field named, before
# any conversion to float could overflow.
MAX_AMOUNTS: dict[str, Fraction] = {
    CPU: Fraction(2**63 - 1, 1000),
    MEMORY: Fraction(2**63 - 1),
    EPHEMERAL_STORAGE: Fraction(2**63 - 1),
    GPU: Fraction(2**31 - 1),
}
UNITS = {CPU: "cores", MEMORY: "bytes", EPHEMERAL_STORAGE: "bytes", GPU: "GPUs"}
SERVICE_ACCOUNT_VOLUME_PREFIX = "kube-api-access-"
# What the API server's ServiceAccount admission projects into kube-api-access-*.
_SERVICE_ACCOUNT_SOURCES = frozenset({"serviceAccountToken", "configMap", "downwardAPI"})
_ROOT_CA_CONFIGMAP = "kube-root-ca.crt"


def check_pod(pod: Pod) -> None:
    """Raise ``InvalidSpec`` if no provider could run ``pod`` as written.

    The message names the offending field first (``spec.initContainers[0] (setup): ...``) so
    that the pod's Failed reason tells the user what to change.
    """
    spec = pod.spec
    daemonset = next((o for o in pod.metadata.owner_references if o.kind == "DaemonSet"), None)
    if daemonset is not None:  # a DaemonSet that tolerates every taint (admiralty#114)
        raise InvalidSpec(
            f"metadata.ownerReferences (DaemonSet {daemonset.name}): DaemonSet pods are node "
            "agents for real machines; a virtual GPU node does not rent instances for them"
        )
    if not spec.containers:
        raise InvalidSpec("spec.containers: the pod has no container to run")
    if len(spec.containers) > 1:
        extra = spec.containers[1]
        raise InvalidSpec(
            f"spec.containers[1] ({extra.name}): vk-trio runs one container per pod on a cloud "
            f"instance; this pod has {len(spec.containers)}"
        )
    if spec.init_containers:
        first = spec.init_containers[0]
        kind = "sidecar containers" if first.restart_policy == "Always" else "init containers"
        raise InvalidSpec(
            f"spec.initContainers[0] ({first.name}): {kind} are not supported; a cloud instance "
            "runs only the pod's one container"
        )
    if spec.ephemeral_containers:
        raise InvalidSpec(
            "spec.ephemeralContainers: ephemeral (debug) containers are not supported on a "
            "cloud instance"
        )
    for index, raw in enumerate(spec.volumes):
        _check_volume(index, raw)
    _check_container(spec.containers[0])


def to_instance_spec(
    pod: Pod,
    *,
    node_name: str,
    env: Mapping[str, str],
    secret_env_names: frozenset[str],
    registry_auth: RegistryAuth | None,
    annotations: Mapping[str, str],
    attempt: int,
) -> InstanceSpec:
    """The instance that runs ``pod``'s container (``check_pod`` first: same errors).

    Args:
        env: the container's environment, already resolved (values of secretKeyRef included).
        secret_env_names: which of ``env`` came from Secrets, never to be shown.
        registry_auth: the credential from imagePullSecrets for this image, if any.
        annotations: the pod's annotations merged over the owning Job's; providers read their
            own selection knobs (runpod.io/*, vast.ai/*, a price cap) from here.
        attempt: the restart number; a new attempt is a new instance (``InstanceSpec.key``).
    """
    check_pod(pod)
    container = pod.spec.containers[0]
    return InstanceSpec(
        node_name=node_name,
        namespace=pod.metadata.namespace,
        pod_name=pod.metadata.name,
        pod_uid=pod.metadata.uid,
        attempt=attempt,
        image=container.image,
        command=tuple(container.command),
        args=tuple(container.args),
        env=dict(env),
        secret_env_names=secret_env_names,
        ports=tuple(
            Port(number=port.container_port, protocol="tcp", name=port.name)
            for port in container.ports
        ),
        restart_policy=pod.spec.restart_policy or "Always",
        registry_auth=registry_auth,
        need=_requirements(container.resources, annotations=annotations),
    )


def _requirements(
    resources: ResourceRequirements, *, annotations: Mapping[str, str]
) -> Requirements:
    """What an instance must offer for a container with ``resources``.

    cpu and memory come from the requests (the API server defaults a missing request to the
    limit); ephemeral-storage prefers the limit, the most the container may write, so the disk
    is never smaller than what the pod is allowed to use; GPUs come from the nvidia.com/gpu
    limit (or request: for extended resources Kubernetes requires both to be equal). No GPU
    asked for means ``gpu_count`` 0: a provider decides whether it can run that.
    """
    gpus = _pick(resources, GPU, limit_first=True)
    cpu = _pick(resources, CPU, limit_first=False)
    memory = _pick(resources, MEMORY, limit_first=False)
    disk = _pick(resources, EPHEMERAL_STORAGE, limit_first=True)
    return Requirements(
        gpu_count=0 if gpus is None else _whole(gpus),
        cpu_millis=0 if cpu is None else cpu_millis(cpu),
        memory_mb=0 if memory is None else mb(memory),
        disk_gb=None if disk is None else gb(disk),
        annotations=dict(annotations),
    )


# --- checks -----------------------------------------------------------------------------------


def _check_container(container: Container) -> None:
    where = f"spec.containers[0] ({container.name})"
    if not container.image:
        raise InvalidSpec(f"{where}.image: the container has no image")
    if container.working_dir:
        raise InvalidSpec(
            f"{where}.workingDir: not supported by cloud instances; start the program with a "
            "`cd` in command/args, or set WORKDIR in the image"
        )
    if container.restart_policy is not None:
        raise InvalidSpec(
            f"{where}.restartPolicy: per-container restart policies are not supported; "
            "use spec.restartPolicy"
        )
    for index, port in enumerate(container.ports):
        if (port.protocol or "TCP").upper() != "TCP":
            raise InvalidSpec(
                f"{where}.ports[{index}].protocol: {port.protocol} is not supported; "
                "cloud instances expose TCP ports only"
            )
    resources = container.resources
    for kind, amounts in (("limits", resources.limits), ("requests", resources.requests)):
        for name, value in amounts.items():
            field = f"{where}.resources.{kind}[{name}]"
            if name not in SUPPORTED_RESOURCES:
                raise InvalidSpec(
                    f"{field}: no cloud instance provides {name!r}; supported resources are "
                    + ", ".join(sorted(SUPPORTED_RESOURCES))
                )
            try:
                amount = parse_quantity(value)
            except ValueError as exc:
                raise InvalidSpec(f"{field}: {exc}") from exc
            if amount < 0:
                raise InvalidSpec(f"{field}: {value!r} is negative")
            if name == GPU and amount.denominator != 1:
                raise InvalidSpec(f"{field}: {value!r} is not a whole number of GPUs")
            if amount > MAX_AMOUNTS[name]:
                raise InvalidSpec(
                    f"{field}: {excerpt(value)} is more than any node has (at most "
                    f"{int(MAX_AMOUNTS[name])} {UNITS[name]})"
                )


def _check_volume(index: int, raw: msgspec.Raw) -> None:
    try:
        volume = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidSpec(f"spec.volumes[{index}]: not a volume object ({exc})") from exc
    if not isinstance(volume, dict):
        raise InvalidSpec(f"spec.volumes[{index}]: not a volume object")
    name = str(volume.get("name", ""))
    kinds = sorted(key for key in volume if key != "name")
    kind = kinds[0] if len(kinds) == 1 else "+".join(kinds) or "no source"
    if kind == "emptyDir" or _is_service_account_volume(name, volume):
        return
    raise InvalidSpec(
        f"spec.volumes[{index}] ({name}): {kind} volumes are not supported on cloud instances; "
        "only emptyDir and the injected kube-api-access-* token volume can be run"
    )


def _is_service_account_volume(name: str, volume: dict[str, Any]) -> bool:
    """The token volume the API server injects, and nothing a user added under its name."""
    projected = volume.get("projected")
    if not name.startswith(SERVICE_ACCOUNT_VOLUME_PREFIX) or not isinstance(projected, dict):
        return False
    for source in projected.get("sources") or []:
        if not isinstance(source, dict) or not set(source) <= _SERVICE_ACCOUNT_SOURCES:
            return False
        config_map = source.get("configMap")
        if config_map is not None and (
            not isinstance(config_map, dict) or config_map.get("name") != _ROOT_CA_CONFIGMAP
        ):
            return False
    return True


# --- amounts ----------------------------------------------------------------------------------


def _pick(resources: ResourceRequirements, name: str, *, limit_first: bool) -> Quantity | None:
    first, second = (
        (resources.limits, resources.requests)
        if limit_first
        else (resources.requests, resources.limits)
    )
    if name in first:
        return first[name]
    return second.get(name)


def _whole(value: Quantity) -> int:
    return int(parse_quantity(value))  # check_pod proved it whole and non-negative


# --- QoS class --------------------------------------------------------------------------------


def qos_class(pod: Pod) -> str:
    """Guaranteed, Burstable or BestEffort from cpu/memory requests and limits (ComputePodQOS)."""
    qos = ""
    for container in [*pod.spec.init_containers, *pod.spec.containers]:
        own = _requirements_qos(container.resources)
        if own == "Burstable" or (qos and qos != own):
            return "Burstable"
        qos = own
    return qos or "BestEffort"


def _requirements_qos(resources: ResourceRequirements) -> str:
    if not resources.requests and not resources.limits:
        return "BestEffort"
    qos = ""
    for name in ("cpu", "memory"):
        request = _amount(resources.requests.get(name))
        limit = _amount(resources.limits.get(name))
        own = "Burstable" if request != limit else "BestEffort" if request == 0 else "Guaranteed"
        if own == "Burstable" or (qos and qos != own):
            return "Burstable"
        qos = own
    return qos


def _amount(value: str | None) -> Fraction | str:
    try:
        return parse_quantity(value) if value is not None else Fraction(0)
    except ValueError:
        return value or ""  # the API server validated it; compare the text as a last resort
