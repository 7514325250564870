"""Which of a pod's instances is its container, and the restarts that instance made on its own.

PURE: no trio, no I/O; the reconciler acts on what these functions decide. Why they stand
apart: a pod has one container but a provider list can show it several instances (the leftover
of an earlier attempt, not yet deleted; two of one attempt, when a create whose answer was lost
was carried out twice by a marketplace), and one instance can restart the container itself
(RunPod restarts it; the Vast.ai wrapper loops under ``restartPolicy: Always``). Which one is
the container, and how its own restarts become restartCount and lastState, are rules a kubelet
keeps without thinking; here they are small enough to test alone.
"""

from __future__ import annotations

from datetime import datetime

from vk_trio.kube.models import Pod
from vk_trio.pods import lifecycle
from vk_trio.pods.record import PodRecord
from vk_trio.providers.base import Instance, InstanceState


def choose_current(instances: list[Instance], record: PodRecord) -> Instance | None:
    """The instance of the newest attempt; among duplicates, the one we already hold, else
    the most advanced (running over booting), then the first listed."""
    newest = [i for i in instances if i.attempt >= record.attempt]
    if not newest:
        return None
    top = max(i.attempt for i in newest)
    candidates = [
        i for i in newest if i.attempt == top and i.state is not InstanceState.TERMINATING
    ]
    if not candidates:
        return None
    held = record.instance.instance_id if record.instance is not None else None
    for inst in candidates:
        if inst.instance_id == held:
            return inst
    rank = {InstanceState.RUNNING: 0, InstanceState.STARTING: 1, InstanceState.PROVISIONING: 2}
    return min(candidates, key=lambda i: rank.get(i.state, 3))


def count_in_place(pod: Pod, record: PodRecord, inst: Instance, *, now: datetime) -> str | None:
    """Fold the restarts ``inst`` did itself into ``record`` (restartCount, lastState), as a
    kubelet's restart gives them; the message of the BackOff Event to record when there are
    new ones. An adopted instance's earlier restarts are already in restartCount."""
    seen_id, counted = record.in_place
    if seen_id != inst.instance_id:
        counted = inst.restarts
        record.in_place = (inst.instance_id, counted)
    last = record.last_terminated
    if inst.restarts <= counted:
        if inst.last_exit is not None and inst.last_exit.code is not None and last:
            ended = lifecycle.ended_in_place(inst.last_exit, inst.instance_id, now=now)
            same = (last.exit_code, last.message) == (ended.exit_code, ended.message)
            if last.instance_id == inst.instance_id and not same:
                record.last_terminated = ended  # its code was read after it was counted
        return None
    new = inst.restarts - counted
    record.in_place = (inst.instance_id, inst.restarts)
    record.restarts += new
    code = "an unknown code"
    if inst.last_exit is not None:
        ended = lifecycle.ended_in_place(inst.last_exit, inst.instance_id, now=now)
        record.last_terminated = ended
        code = f"code {ended.exit_code}" if inst.last_exit.code is not None else code
    return (
        f"Back-off restarting container {lifecycle.container_name(pod)} in pod "
        f"{pod.metadata.name}: it exited with {code} and was restarted on {inst.instance_id} "
        f"(restart {record.restarts})"
    )
