"""Starting again after a restart or a crash: rebuild what we knew from what the API kept.

The agent keeps no state of its own. After a restart, each pod's record is rebuilt from the
pod's status (restartCount, lastState, startTime, a terminal state we had already written) and
its instance is adopted from the provider's list by the tag that carries the pod UID and the
attempt. restartCount also counts restarts in place on one instance, so once the two differ the
attempt is kept in the pod's ``vk-trio.io/attempt`` annotation (written with the status).
Instances tagged with this node whose pod no longer exists are deleted by the status loop once
the pod cache has synced; untagged instances are never listed, so never touched.
"""

from __future__ import annotations

from datetime import datetime

from vk_trio.kube.models import ContainerStateTerminated, Pod
from vk_trio.pods.record import PodRecord, Terminated

ATTEMPT_ANNOTATION = "vk-trio.io/attempt"


def _terminated(state: ContainerStateTerminated) -> Terminated:
    scheme, sep, _ = state.container_id.partition("://")
    return Terminated(
        exit_code=state.exit_code,
        reason=state.reason or ("Completed" if state.exit_code == 0 else "Error"),
        message=state.message,
        started_at=state.started_at,
        finished_at=state.finished_at,
        instance_id=state.container_id.split("://", 1)[-1],
        provider=scheme if sep else "",
    )


def record_from_pod(pod: Pod, *, now: datetime) -> PodRecord:
    record = PodRecord(uid=pod.metadata.uid, start_time=pod.status.start_time or now)
    statuses = pod.status.container_statuses
    if statuses:
        status = statuses[0]
        record.restarts = status.restart_count
        written = pod.metadata.annotations.get(ATTEMPT_ANNOTATION, "")
        valid = written.isascii() and written.isdigit() and len(written) <= 9
        record.attempt = min(int(written), status.restart_count) if valid else status.restart_count
        if status.last_state.terminated is not None:
            record.last_terminated = _terminated(status.last_state.terminated)
        if status.state.terminated is not None and pod.status.phase in ("Succeeded", "Failed"):
            record.final = _terminated(status.state.terminated)
        elif status.state.running is not None and "://" in status.container_id:
            record.lost_provider, _, record.lost_id = status.container_id.partition("://")
            # Created and Started were recorded before the restart: not again for this run
            record.announced = f"started:{record.lost_id}"
    return record
