"""What the node agent knows about one pod beyond the pod object and the provider's instance.

The reconciler keeps one ``PodRecord`` per pod UID. It is small, plain data, rebuilt after a
restart from the pod's own status (restartCount, lastState, terminal state) and the provider's
``list()``, so nothing here needs to survive a crash. pods/status.py computes the pod's status
from (pod, record) alone, which keeps that mapping pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vk_trio.providers.base import Instance


@dataclass(frozen=True, kw_only=True, slots=True)
class Terminated:
    """How one run of the container ended (kubelet's ContainerStateTerminated)."""

    exit_code: int
    reason: str  # Completed | Error | DeadlineExceeded | ContainerCannotRun | InstanceLost ...
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    instance_id: str = ""
    provider: str = ""  # the instance's cloud (empty: the node's provider), containerID scheme


@dataclass(frozen=True, kw_only=True, slots=True)
class Waiting:
    """Why the container is not running yet: ContainerCreating, CreateContainerConfigError,
    CrashLoopBackOff, ProviderUnavailable, NoCapacity, InvalidAnnotation ..."""

    reason: str
    message: str = ""


@dataclass(kw_only=True, slots=True)  # one per pod: no __dict__
class PodRecord:
    uid: str
    attempt: int = 0  # instances rented for the pod before the current one (its key's attempt)
    restarts: int = 0  # restartCount: new attempts, plus restarts in place on an instance
    # (instance id, its in-place restarts already counted in ``restarts``)
    in_place: tuple[str, int] = ("", 0)
    instance: Instance | None = None  # the current attempt's instance, as last listed
    waiting: Waiting | None = None  # set while there is no running instance
    last_terminated: Terminated | None = None  # the previous attempt's end (lastState)
    final: Terminated | None = None  # the container ended for good: the pod is terminal
    failure: Waiting | None = None  # pod-level failure: reason/message of a Failed pod
    start_time: datetime | None = None  # when the agent first acted on the pod
    backoff_until: float | None = None  # trio time before which no restart is attempted
    # A user-fixable problem (e.g. an invalid annotation) shown as a pod condition.
    problem: Waiting | None = None
    # The last reconcile of this pod failed unexpectedly (a fault, vk_trio/faults.py): shown as
    # the condition vk-trio.io/Reconciled=False until a reconcile succeeds again.
    fault: Waiting | None = None
    failures: int = 0  # consecutive failed provisioning attempts (drives the retry backoff)
    crash_streak: int = 0  # consecutive short-lived runs (drives CrashLoopBackOff)
    seen_listed: bool = False  # the current instance appeared in a provider list at least once
    announced: str = ""  # the last lifecycle Event recorded (Created/Started of an instance)
    killing: bool = False  # the Killing Event was recorded for this deletion
    # The pod's status named an instance (containerID) when this record was rebuilt after a
    # restart: if no provider list shows it, it vanished while the agent was not watching.
    lost_id: str = ""
    lost_provider: str = ""  # the scheme of that containerID (the cloud it ran on)
    seen_at: float | None = None  # trio time this agent first saw the pod (provisioning latency)
    retry_pending: bool = False  # no instance, a provisioning retry is due: not "transitioning"
