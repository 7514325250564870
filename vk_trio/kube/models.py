"""msgspec Structs for the Kubernetes objects vk-trio reads.

Only the fields we use are modelled; unknown fields (managedFields, most of the spec) are skipped
by the decoder, which is what makes decoding fast and small. Because of that, NEVER write an
object back with PUT: a decoded object is partial, and a PUT would erase everything we did not
model. Writes are patches (see kube/client.py).

``rename="camel"`` gets Kubernetes acronyms wrong (``pod_ip`` would become ``podIp``), so those
fields carry explicit names: podIP, podIPs, hostIP, hostIPs, imageID, containerID, providerID,
clusterIP, machineID, systemUUID, bootID, and the capitalised ``Port`` of a DaemonEndpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec


class K(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True, gc=False):
    """Base of every Kubernetes model: camelCase on the wire, defaults omitted when encoding.

    ``gc=False``: these objects never form reference cycles, so the cyclic garbage collector
    need not track them; on a 1,000-pod list that is the difference between 2x and 3x+ faster
    than ``json.loads`` (bench/kube_decode.py).
    """


def _list() -> Any:
    """A list field's default: the one shared empty tuple. A decoded list is a list, but the
    many list fields a pod leaves out cost no allocation each (12 per running pod). Build models
    with lists, and leave an empty one out rather than passing ``[]`` (which would be encoded)."""
    return msgspec.field(default=())


def _dict() -> Any:
    return msgspec.field(default_factory=dict)


# --- metadata -------------------------------------------------------------------------------


class OwnerReference(K):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(K):
    name: str = ""
    generate_name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] = _dict()
    annotations: dict[str, str] = _dict()
    owner_references: Sequence[OwnerReference] = _list()
    finalizers: Sequence[str] = _list()


class ListMeta(K):
    resource_version: str = ""
    continue_: str = msgspec.field(default="", name="continue")
    remaining_item_count: int | None = None


# --- pods -----------------------------------------------------------------------------------


class ObjectFieldSelector(K):
    field_path: str
    api_version: str = ""


class ResourceFieldSelector(K):
    resource: str
    container_name: str = ""
    divisor: str | int | float = ""


class KeySelector(K):
    """configMapKeyRef and secretKeyRef share this shape."""

    key: str
    name: str = ""
    optional: bool | None = None


class EnvVarSource(K):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None


class EnvVar(K):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class NamedSource(K):
    """configMapRef and secretRef of envFrom share this shape."""

    name: str = ""
    optional: bool | None = None


class EnvFromSource(K):
    prefix: str = ""
    config_map_ref: NamedSource | None = None
    secret_ref: NamedSource | None = None


class ContainerPort(K):
    container_port: int
    name: str = ""
    protocol: str = "TCP"
    host_port: int | None = None


class ResourceRequirements(K):
    limits: dict[str, str] = _dict()  # the API server always answers quantities as strings
    requests: dict[str, str] = _dict()


class Container(K):
    name: str
    image: str = ""
    command: Sequence[str] = _list()
    args: Sequence[str] = _list()
    working_dir: str = ""
    env: Sequence[EnvVar] = _list()
    env_from: Sequence[EnvFromSource] = _list()
    ports: Sequence[ContainerPort] = _list()
    resources: ResourceRequirements = msgspec.field(default_factory=ResourceRequirements)
    restart_policy: str | None = None  # sidecar init containers ("Always")


class Toleration(K):
    key: str = ""
    operator: str = ""
    value: str = ""
    effect: str = ""
    toleration_seconds: int | None = None


class LocalObjectReference(K):
    name: str = ""


class PodReadinessGate(K):
    condition_type: str


class PodSpec(K):
    """The parts of a pod's spec vk-trio acts on (scheduling fields are the scheduler's)."""

    containers: Sequence[Container] = _list()
    init_containers: Sequence[Container] = _list()
    ephemeral_containers: Sequence[Container] = _list()
    restart_policy: str = "Always"
    node_name: str = ""
    active_deadline_seconds: int | None = None
    termination_grace_period_seconds: int | None = None
    image_pull_secrets: Sequence[LocalObjectReference] = _list()
    service_account_name: str = ""
    enable_service_links: bool | None = None
    readiness_gates: Sequence[PodReadinessGate] = _list()
    # A Raw keeps the whole buffer it was decoded from alive (a watch line, a patch answer):
    # long-lived holders copy it out (kube/sharing.py, for the pod cache).
    volumes: Sequence[msgspec.Raw] = _list()


class ContainerStateWaiting(K):
    reason: str = ""
    message: str = ""


class ContainerStateRunning(K):
    started_at: datetime | None = None


class ContainerStateTerminated(K):
    exit_code: int
    signal: int | None = None
    reason: str = ""
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    container_id: str = msgspec.field(default="", name="containerID")


class ContainerState(K):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(K):
    name: str
    ready: bool = False
    restart_count: int = 0
    image: str = ""
    image_id: str = msgspec.field(default="", name="imageID")
    container_id: str = msgspec.field(default="", name="containerID")
    started: bool | None = None
    state: ContainerState = msgspec.field(default_factory=ContainerState)
    last_state: ContainerState = msgspec.field(default_factory=ContainerState)


class PodCondition(K):
    type: str
    status: str
    observed_generation: int | None = None
    reason: str = ""
    message: str = ""
    last_probe_time: datetime | None = None
    last_transition_time: datetime | None = None


class PodIP(K):
    ip: str


class PodStatus(K):
    phase: str = ""
    conditions: Sequence[PodCondition] = _list()
    message: str = ""
    reason: str = ""
    host_ip: str = msgspec.field(default="", name="hostIP")
    host_ips: Sequence[PodIP] = msgspec.field(default=(), name="hostIPs")
    pod_ip: str = msgspec.field(default="", name="podIP")
    pod_ips: Sequence[PodIP] = msgspec.field(default=(), name="podIPs")
    start_time: datetime | None = None
    qos_class: str = ""
    container_statuses: Sequence[ContainerStatus] = _list()
    init_container_statuses: Sequence[ContainerStatus] = _list()


class Pod(K):
    api_version: str = "v1"
    kind: str = "Pod"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)


# --- nodes and leases -----------------------------------------------------------------------


class Taint(K):
    key: str
    effect: str
    value: str = ""


class NodeSpec(K):
    provider_id: str = msgspec.field(default="", name="providerID")
    taints: Sequence[Taint] = _list()
    unschedulable: bool = False
    pod_cidr: str = msgspec.field(default="", name="podCIDR")


class NodeCondition(K):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_heartbeat_time: datetime | None = None
    last_transition_time: datetime | None = None


class NodeAddress(K):
    type: str
    address: str


class DaemonEndpoint(K):
    port: int = msgspec.field(default=0, name="Port")


class NodeDaemonEndpoints(K):
    kubelet_endpoint: DaemonEndpoint = msgspec.field(default_factory=DaemonEndpoint)


class NodeSystemInfo(K):
    machine_id: str = msgspec.field(default="", name="machineID")
    system_uuid: str = msgspec.field(default="", name="systemUUID")
    boot_id: str = msgspec.field(default="", name="bootID")
    kernel_version: str = ""
    os_image: str = ""
    container_runtime_version: str = ""
    kubelet_version: str = ""
    kube_proxy_version: str = ""
    operating_system: str = ""
    architecture: str = ""


class NodeStatus(K):
    capacity: dict[str, str] = _dict()
    allocatable: dict[str, str] = _dict()
    conditions: Sequence[NodeCondition] = _list()
    addresses: Sequence[NodeAddress] = _list()
    daemon_endpoints: NodeDaemonEndpoints = msgspec.field(default_factory=NodeDaemonEndpoints)
    node_info: NodeSystemInfo = msgspec.field(default_factory=NodeSystemInfo)
    phase: str = ""


class Node(K):
    api_version: str = "v1"
    kind: str = "Node"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: NodeSpec = msgspec.field(default_factory=NodeSpec)
    status: NodeStatus = msgspec.field(default_factory=NodeStatus)


class LeaseSpec(K):
    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    lease_transitions: int | None = None


class Lease(K):
    api_version: str = "coordination.k8s.io/v1"
    kind: str = "Lease"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: LeaseSpec = msgspec.field(default_factory=LeaseSpec)


# --- events, jobs, config -------------------------------------------------------------------


class ObjectReference(K):
    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    field_path: str = ""


class EventSource(K):
    component: str = ""
    host: str = ""


class Event(K):
    api_version: str = "v1"
    kind: str = "Event"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    involved_object: ObjectReference = msgspec.field(default_factory=ObjectReference)
    reason: str = ""
    message: str = ""
    type: str = ""
    count: int = 0
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    source: EventSource = msgspec.field(default_factory=EventSource)
    reporting_component: str = ""
    reporting_instance: str = ""
    action: str = ""


class JobCondition(K):
    type: str
    status: str
    reason: str = ""
    message: str = ""


class JobSpec(K):
    parallelism: int | None = None
    completions: int | None = None
    backoff_limit: int | None = None
    active_deadline_seconds: int | None = None
    suspend: bool | None = None


class JobStatus(K):
    conditions: Sequence[JobCondition] = _list()
    active: int = 0
    succeeded: int = 0
    failed: int = 0


class Job(K):
    api_version: str = "batch/v1"
    kind: str = "Job"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: JobSpec = msgspec.field(default_factory=JobSpec)
    status: JobStatus = msgspec.field(default_factory=JobStatus)


class Secret(K):
    api_version: str = "v1"
    kind: str = "Secret"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    data: dict[str, str] = _dict()  # base64, as on the wire
    type: str = ""


class ConfigMap(K):
    api_version: str = "v1"
    kind: str = "ConfigMap"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    data: dict[str, str] = _dict()
    binary_data: dict[str, str] = _dict()


class ServicePort(K):
    port: int
    name: str = ""
    protocol: str = "TCP"
    target_port: int | str | None = None


class ServiceSpec(K):
    cluster_ip: str = msgspec.field(default="", name="clusterIP")
    ports: Sequence[ServicePort] = _list()
    type: str = ""


class Service(K):
    api_version: str = "v1"
    kind: str = "Service"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)


# --- API plumbing ---------------------------------------------------------------------------


class StatusDetails(K):
    name: str = ""
    kind: str = ""
    retry_after_seconds: int | None = None


class Status(K):
    """The body of an API error (and of some successful deletes)."""

    kind: str = "Status"
    api_version: str = "v1"
    status: str = ""
    message: str = ""
    reason: str = ""
    code: int = 0
    details: StatusDetails | None = None


T = TypeVar("T")


class ObjectList(K, Generic[T]):
    """Any ``*List`` answer: PodList, NodeList, ..."""

    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: list[T] = _list()


class WatchEvent(msgspec.Struct, Generic[T]):
    """One line of a watch stream. ERROR events carry a Status as ``object`` (see watch.py)."""

    type: str
    object: T


PodList = ObjectList[Pod]
NodeList = ObjectList[Node]
