"""What the node says about its clouds: a Node condition, Node Events, and strays at start.

A node that fronts several clouds keeps serving when one of them fails or refuses payment
(providers/router.py, providers/health.py), which is exactly why an operator might not notice.
So every change of a cloud's state becomes an Event on the Node (Warning when it fails or
refuses payment, naming the cloud; Normal when it answers again) and the Node condition
``vk-trio.io/CloudsReady`` says, at every heartbeat, which cloud is in which state.
``kubectl describe node`` shows both; /metrics has the same states (observability.py).

At start, a cloud the node no longer fronts but whose API key is still configured is listed
once: an instance there tagged with this node is not touched (it is not ours to manage any
more) but reported, with a Warning Event and a log line, instead of silently billing.
"""

from __future__ import annotations

import trio

from vk_trio.kube.events import NORMAL, WARNING, EventRecorder
from vk_trio.kube.models import ObjectReference
from vk_trio.logs import get_logger
from vk_trio.node.registration import NodeState
from vk_trio.providers.base import CloudError, Provider
from vk_trio.providers.health import CloudState, Health

CONDITION = "vk-trio.io/CloudsReady"
REFRESH = 30.0  # a cool-down ends without a notice: the condition is refreshed this often
_log = get_logger("vk_trio.clouds")


def node_reference(node: NodeState) -> ObjectReference:
    """The Node as an Event's object (Events of cluster-scoped objects live in default)."""
    return ObjectReference(api_version="v1", kind="Node", name=node.name, uid=node.uid)


def condition(health: Health) -> tuple[str, str, str]:
    """(status, reason, message) of ``CONDITION``: True when every cloud is usable."""
    states = health.states()
    bad = {name: state for name, state in states.items() if state is not CloudState.OK}
    message = ", ".join(f"{name}: {state.value}" for name, state in states.items())
    if not bad:
        return "True", "CloudsAvailable", message
    if CloudState.PAYMENT_REFUSED in bad.values():
        return "False", "PaymentRequired", message
    return "False", "CloudUnavailable", message


async def report_clouds(
    health: Health,
    node: NodeState,
    events: EventRecorder,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep the Node's condition and Events in step with ``health``, until cancelled."""
    seen = health.notice_total
    task_status.started()
    while True:
        wanted = condition(health)
        if node.conditions.get(CONDITION) != wanted:
            node.conditions[CONDITION] = wanted
            node.touch()
        fresh = health.notice_total - seen
        for notice in health.notices[-fresh:] if fresh else []:
            ok = notice.state is CloudState.OK
            (_log.info if ok else _log.warning)("%s", notice.message)
            await events.record(
                node_reference(node),
                type=NORMAL if ok else WARNING,
                reason=notice.reason,
                message=notice.message,
            )
        seen = health.notice_total
        with trio.move_on_after(REFRESH):
            await health.changed.wait()


async def report_strays(
    strays: list[Provider], node: NodeState, events: EventRecorder, *, fronted: str
) -> None:
    """List each cloud the node no longer fronts once; report what it still runs for us."""
    for cloud in strays:
        try:
            found = await cloud.list()
        except CloudError as exc:
            _log.warning("could not list %s for instances of this node: %s", cloud.name, exc)
            continue
        finally:
            with trio.CancelScope(shield=True):
                await cloud.aclose()
        if not found:
            continue
        ids = ", ".join(f"{inst.instance_id} (${inst.price_per_hour:.3f}/h)" for inst in found)
        message = (
            f"{len(found)} instance(s) on {cloud.name} are tagged with this node, which now "
            f"fronts only {fronted}: {ids}. vk-trio no longer manages them and they keep "
            f"billing: delete them on {cloud.name}, or add {cloud.name} to --provider to "
            "adopt them"
        )
        _log.warning("%s", message)
        await events.record(
            node_reference(node),
            type=WARNING,
            reason="InstancesOnUnconfiguredCloud",
            message=message[:1000],
        )
