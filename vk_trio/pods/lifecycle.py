"""The kubelet's rules for a container that ends, for a pod whose container is a cloud instance.

PURE: no trio, no I/O; times are parameters. The reconciler asks these functions what an
instance's end means (restart or finish), how long CrashLoopBackOff waits, and whether
activeDeadlineSeconds has passed.
"""

from __future__ import annotations

from datetime import datetime

from vk_trio.kube.models import Pod
from vk_trio.pods.record import Terminated
from vk_trio.providers.base import Exit, Instance, InstanceState

CRASHLOOP_INITIAL = 10.0
CRASHLOOP_MAX = 300.0
CRASHLOOP_RESET_AFTER = 600.0  # a run this long resets the backoff, as the kubelet does
LOST_EXIT_CODE = 137


def crashloop_delay(streak: int) -> float:
    """10 s, 20 s, 40 s ... capped at 5 minutes (``streak`` counts from 1)."""
    return min(CRASHLOOP_MAX, CRASHLOOP_INITIAL * 2.0 ** max(0, streak - 1))


def should_restart(restart_policy: str, exit_code: int) -> bool:
    if restart_policy == "Always":
        return True
    if restart_policy == "OnFailure":
        return exit_code != 0
    return False


def terminated_from(instance: Instance, *, now: datetime) -> Terminated:
    """How an EXITED or FAILED instance ended, as a container state."""
    exit_code = instance.exit_code
    if exit_code is not None and not -(2**31) <= exit_code < 2**31:
        exit_code = None  # a status field is int32: a code beyond it is no code we can show
    if instance.state is InstanceState.FAILED:
        code = exit_code if exit_code is not None else 128
        reason = "ContainerCannotRun" if instance.started_at is None else "Error"
        message = instance.message or "the provider reported the instance failed"
    elif exit_code is None:
        code, reason = 1, "Error"
        message = instance.message or "the container exited; its exit code is unknown"
    else:
        code = exit_code
        reason = "Completed" if code == 0 else "Error"
        message = instance.message
    return Terminated(
        exit_code=code,
        reason=reason,
        message=message,
        started_at=instance.started_at,
        finished_at=instance.finished_at or now,
        instance_id=instance.instance_id,
        provider=instance.provider,
    )


def ended_in_place(end: Exit, instance_id: str, *, now: datetime) -> Terminated:
    """A run that ended on an instance that restarted the container itself (lastState)."""
    if end.code is None:
        code, reason = 1, "Error"
        message = "the container exited and was restarted; its exit code is unknown"
    else:
        code, reason, message = end.code, "Completed" if end.code == 0 else "Error", ""
    return Terminated(
        exit_code=code,
        reason=reason,
        message=message,
        started_at=end.started_at,
        finished_at=end.finished_at or now,
        instance_id=instance_id,
    )


def lost(instance: Instance, *, now: datetime) -> Terminated:
    """An instance that vanished from the provider: the container was killed (137)."""
    return Terminated(
        exit_code=LOST_EXIT_CODE,
        reason="InstanceLost",
        message=f"instance {instance.instance_id} disappeared from the provider",
        started_at=instance.started_at,
        finished_at=now,
        instance_id=instance.instance_id,
        provider=instance.provider,
    )


def lost_unseen(instance_id: str, *, now: datetime, provider: str = "") -> Terminated:
    """An instance the pod's status named before a restart of the agent, that no provider list
    shows any more: it ended while nobody watched, so its exit code is unknown (137)."""
    return Terminated(
        exit_code=LOST_EXIT_CODE,
        reason="InstanceLost",
        message=f"instance {instance_id} disappeared from the provider while vk-trio was down",
        finished_at=now,
        instance_id=instance_id,
        provider=provider,
    )


def ran_long(terminated: Terminated) -> bool:
    if terminated.started_at is None or terminated.finished_at is None:
        return False
    return (terminated.finished_at - terminated.started_at).total_seconds() >= CRASHLOOP_RESET_AFTER


def deadline_remaining(pod: Pod, *, start: datetime | None, now: datetime) -> float | None:
    """Seconds until activeDeadlineSeconds passes (<= 0: passed); None without a deadline."""
    limit = pod.spec.active_deadline_seconds
    if limit is None or start is None:
        return None
    return limit - (now - start).total_seconds()


def is_terminal_phase(phase: str) -> bool:
    return phase in ("Succeeded", "Failed")


def container_name(pod: Pod) -> str:
    """The name of the pod's container: the one its instance runs (``main`` if it names none)."""
    return pod.spec.containers[0].name if pod.spec.containers else "main"
