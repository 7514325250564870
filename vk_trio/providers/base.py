"""The provider contract: the only thing the node agent knows about a cloud.

A provider turns an ``InstanceSpec`` (a pod, already translated and with its env resolved) into a
paid instance on a GPU marketplace, and reports what its instances are doing. The pod side of
vk-trio imports nothing else from ``providers``; every cloud is reached through this protocol.

The contract, which tests/providers/ checks against every implementation:

* ``check(spec)`` is pure and fast: it raises ``InvalidSpec`` (the pod can never run here) or
  ``InvalidAnnotation`` (a user-fixable annotation; the pod waits) before anything is paid.
* ``offers(need)`` returns feasible offers, priced, cheapest first; never one above
  ``need.max_price_per_hour``. An empty list means "no capacity now", not an error.
* ``create(spec, offer)`` is idempotent by ``spec.key``: calling it again for the same key (after a
  timeout, a 5xx, a crash of vk-trio) returns the instance that already exists instead of renting
  a second one. Every instance is tagged with ``spec.node_name`` and ``spec.key`` so that
  ``list()`` can find it after a restart. Raises ``NoCapacity`` when the offer is gone (try the
  next offer), ``RateLimited``/``ProviderUnavailable`` when a retry later should work,
  ``PaymentRequired`` when the account cannot pay, ``InvalidSpec`` when the cloud refuses the spec,
  ``OutcomeUnknown`` when it may have rented and cannot tell yet (then no other offer may be
  tried for this key: it could rent a second instance).
* ``list()`` returns every instance tagged with this node, and only those: an untagged or
  foreign instance is never listed, so it is never touched. One call serves all pods of a node.
  One row the provider cannot read never fails the list: an instance whose id and owner are
  known comes back ``unreadable`` (providers/rows.py), one whose owner is not known is skipped,
  and both are logged once; the other instances are listed as usual.
* ``delete(instance_id)`` terminates (stops billing, including storage) and is idempotent: an
  instance that is already gone is success.
* ``logs(instance_id, opts)`` yields log lines (providers without logs raise ``LogsUnavailable``).
* Optional: ``async explain_no_offers(need) -> str`` says which constraints ruled out every
  offer when ``offers(need)`` is empty (placement puts it in the pod's NoCapacity message).
* Optional: ``async housekeep()`` is work the provider does between two ``list()`` calls (reading
  exit markers from logs); the node agent calls it while it waits for the next list and cancels
  it when that list is due. A provider whose ``housekeep`` did not run since the last list does
  that work in ``list()`` itself, so callers without the agent's loop lose nothing.

Instance state is a small lifecycle the pod status is computed from (pods/status.py):
PROVISIONING → STARTING → RUNNING → EXITED (with ``exit_code``) or FAILED (the cloud gave up:
bad image, machine lost; ``message`` says why). TERMINATING while a delete is under way. A
container that the cloud (or the wrapper) restarted on the same instance counts in
``restarts``, the latest of those runs' end in ``last_exit``.

Every wait inside ``create`` (a rate-limit turn, a Retry-After, a retry) ends by asking
``spec.still_wanted()``: when it says no (the pod was deleted meanwhile), ``create`` raises
``CreateAborted`` instead of renting.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from vk_trio.errors import ProviderError

# --- what a pod needs, what a cloud offers ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Requirements:
    """What an instance must provide, independent of any pod (``vk-trio offers`` uses it too)."""

    gpu_count: int = 1
    gpu_memory_gb: float | None = None  # per GPU, at least
    cpu_millis: int = 0
    memory_mb: int = 0
    disk_gb: float | None = None
    max_price_per_hour: float | None = None  # for the whole instance, in USD
    # Provider-specific selection knobs, as the user wrote them (pod annotations first, then the
    # owning Job's): runpod.io/*, vast.ai/*. Each provider parses its own and ignores the rest.
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Port:
    number: int
    protocol: str = "tcp"  # "http" (served through a provider proxy) or "tcp" (public mapping)
    name: str = ""


@dataclass(frozen=True, kw_only=True)
class RegistryAuth:
    """Credentials to pull a private image (from imagePullSecrets). Never logged."""

    server: str
    username: str
    password: str = field(repr=False)


def _always() -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class InstanceSpec:
    """One pod container as a cloud instance. Built by pods/translate.py; frozen."""

    node_name: str
    namespace: str
    pod_name: str
    pod_uid: str
    attempt: int = 0  # restarts of the pod (restartPolicy) make a new attempt, a new instance
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_env_names: frozenset[str] = frozenset()  # values that must never be shown anywhere
    ports: tuple[Port, ...] = ()
    restart_policy: str = "Always"  # Always | OnFailure | Never
    registry_auth: RegistryAuth | None = field(default=None, repr=False)
    need: Requirements = field(default_factory=Requirements)
    # Is the pod still waiting for this instance? Asked before every create request that
    # follows a wait; the node agent answers from its pod cache (no: deleted meanwhile).
    still_wanted: Callable[[], bool] = field(default=_always, compare=False, repr=False)

    def ensure_wanted(self) -> None:
        """Raise ``CreateAborted`` when the pod no longer wants this instance."""
        if not self.still_wanted():
            raise CreateAborted(f"pod {self.namespace}/{self.pod_name} no longer wants an instance")

    @property
    def key(self) -> str:
        """The idempotency key of this instance: pod UID plus attempt."""
        return f"{self.pod_uid}.{self.attempt}"

    @property
    def wants_exit_code(self) -> bool:
        """Pods that must end (Jobs) need the container's real exit code from the provider."""
        return self.restart_policy in ("Never", "OnFailure")


@dataclass(frozen=True, kw_only=True)
class Offer:
    """A priced way to run a Requirements; ``offer_id`` is what ``create`` needs to rent it."""

    provider: str
    offer_id: str
    gpu_type: str
    gpu_count: int
    gpu_memory_gb: float
    price_per_hour: float
    location: str = ""  # datacenter id or "City, CC"
    cloud_type: str = ""
    details: Mapping[str, str] = field(default_factory=dict)


class InstanceState(enum.StrEnum):
    PROVISIONING = "Provisioning"  # rented, machine being prepared / image pulling
    STARTING = "Starting"  # container starting
    RUNNING = "Running"
    EXITED = "Exited"  # the container's process ended; exit_code set when known
    FAILED = "Failed"  # the cloud gave up on this instance; message says why
    TERMINATING = "Terminating"


@dataclass(frozen=True, kw_only=True, slots=True)
class Exit:
    """How one run of the container ended (``code`` None: the cloud does not say)."""

    code: int | None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuUsage:
    """One GPU of an instance as the cloud reports it; None where it reports nothing."""

    index: int
    model: str = ""
    duty_cycle: float | None = None  # percent of time busy, 0-100
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """What an instance uses right now, as its cloud reports it. A number the cloud does not
    give is None (never estimated): the kubelet API leaves it out."""

    at: datetime  # when the provider read it
    cpu_cores: float | None = None  # cores busy now (not a cumulative counter)
    memory_bytes: int | None = None  # working set
    gpus: tuple[GpuUsage, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)  # one per instance, listed every interval
class Instance:
    """What a provider reports about one of our instances."""

    instance_id: str
    node_name: str
    pod_uid: str
    attempt: int = 0
    state: InstanceState
    ready: bool = False  # running and reachable as the pod declared (ports mapped)
    exit_code: int | None = None
    message: str = ""
    public_ip: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    gpu_type: str = ""
    gpu_count: int = 0
    price_per_hour: float = 0.0
    location: str = ""
    image: str = ""
    # Annotations the node agent writes onto the pod (instance id, GPU, $/h, proxy URLs).
    annotations: Mapping[str, str] = field(default_factory=dict)
    restarts: int = 0  # runs of the container on this instance that ended and were restarted
    last_exit: Exit | None = None  # how the latest of those runs ended
    # The provider listed this instance (we know its id and owner) but could not read the rest
    # of what it said: the node keeps the last good view of it (or shows it as provisioning),
    # never rents a second one for its pod, and can still delete it.
    unreadable: bool = False
    # Utilisation changes at every list; it is not a change of the pod's state (compare=False
    # keeps the instance view from waking the pod's worker for it).
    usage: Usage | None = field(default=None, compare=False)
    # The cloud that holds it, when one node fronts several (set by providers/router.py);
    # empty: the provider's own name. It is the scheme of the pod's containerID.
    provider: str = ""

    @property
    def key(self) -> str:
        return f"{self.pod_uid}.{self.attempt}"


@dataclass(frozen=True, kw_only=True)
class LogOptions:
    tail_lines: int | None = None
    since_seconds: float | None = None
    follow: bool = False
    timestamps: bool = False
    limit_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class LogLine:
    text: str
    timestamp: datetime | None = None


# --- errors -----------------------------------------------------------------------------------


class CloudError(ProviderError):
    """A provider failure. ``reason`` is a CamelCase word for Kubernetes Events and conditions."""

    reason = "ProviderError"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class NoCapacity(CloudError):
    """No offer can be rented now (or the chosen one vanished): try the next, then wait."""

    reason = "NoCapacity"


class RateLimited(CloudError):
    reason = "RateLimited"


class ProviderUnavailable(CloudError):
    """5xx, timeouts, connection errors: the same request may work later."""

    reason = "ProviderUnavailable"


class OutcomeUnknown(ProviderUnavailable):
    """A create failed and nobody can tell yet whether it rented (the cloud cannot be asked):
    no other offer may be tried before that cloud has answered for the spec's key."""


class PaymentRequired(CloudError):
    """The account cannot pay (credits, quota): nothing works until a human acts."""

    reason = "PaymentRequired"


class ProviderAuthFailed(CloudError):
    reason = "ProviderAuthFailed"


class InvalidAnnotation(CloudError):
    """A user-fixable annotation value; the pod waits (Event + condition) until it is fixed."""

    reason = "InvalidAnnotation"
    retryable = False


class InvalidSpec(CloudError):
    """The pod can never run on this provider (e.g. two app containers); the pod fails."""

    reason = "Unsupported"
    retryable = False


class CreateAborted(CloudError):
    """The pod stopped wanting the instance (deleted) while ``create`` waited: nothing rented."""

    reason = "CreateAborted"
    retryable = False


class LogsUnavailable(CloudError):
    reason = "LogsUnavailable"
    retryable = False


# --- the protocol -----------------------------------------------------------------------------


@runtime_checkable
class Provider(Protocol):
    """A cloud GPU marketplace. See the module docstring for the contract."""

    name: str

    def check(self, spec: InstanceSpec) -> None: ...

    async def offers(self, need: Requirements) -> list[Offer]: ...

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance: ...

    async def list(self) -> list[Instance]: ...

    async def delete(self, instance_id: str) -> None: ...

    def logs(self, instance_id: str, opts: LogOptions) -> AsyncIterator[LogLine]: ...

    async def aclose(self) -> None: ...
