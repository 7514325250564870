"""What a user sees the agent do, one ``Capability`` per thing an RBAC permission serves.

Each ``check`` runs against an agent started by ``rbac_support.agent_as`` and raises
``CapabilityMissing`` when the agent does not do it in time (a failed precondition raises
AssertionError instead). ``prepare``, when set, runs before the agent starts. Timeouts are a few
times what the capability takes with the full RBAC (0.3 s to 2.5 s, the node Lease's renewal
10 s), so a removal case waits no longer than it must.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio

from tests.packaging.rbac_support import (
    FAST,
    NODE_LEASE_NAMESPACE,
    Scene,
    create_config_map,
    create_job,
    create_pod,
    create_secret,
    events_of,
    expect,
    is_ready,
    job_pod,
    lease,
    node,
    pod,
    renewed,
    setup,
)
from vk_trio.errors import NotFound
from vk_trio.kube.resources import NODES, PODS, SERVICES


@dataclass(frozen=True)
class Capability:
    name: str
    check: Callable[[Scene], Awaitable[None]]
    prepare: Callable[[Scene], Awaitable[None]] | None = None

    def __str__(self) -> str:
        return self.name


async def node_is_registered(scene: Scene) -> None:
    await expect(scene, functools.partial(node, scene), what="the Node is registered", within=8)


async def ready_node(scene: Scene) -> bool:
    return is_ready(await node(scene))


async def node_turns_ready(scene: Scene) -> None:
    await expect(scene, functools.partial(ready_node, scene), what="the Node turns Ready", within=8)


async def deleted_node_comes_back(scene: Scene) -> None:
    first = await setup(scene, functools.partial(node, scene), what="the Node is registered")
    await setup(scene, functools.partial(ready_node, scene), what="the Node is Ready")
    await scene.admin.delete(NODES, scene.node)

    async def back() -> bool:
        return (await node(scene)).metadata.uid != first.metadata.uid

    await expect(scene, back, what="a deleted Node is registered again", within=6)


async def node_carries_its_role_label(scene: Scene) -> None:
    """``kubernetes.io/role`` is a label NodeRestriction forbids a node to set on itself."""

    async def labelled() -> bool:
        labels = (await node(scene)).metadata.labels
        return labels.get("kubernetes.io/role") == "agent" and labels.get("type") == (
            "virtual-kubelet"
        )

    await expect(scene, labelled, what="the Node carries kubernetes.io/role=agent", within=8)


async def node_lease_is_created(scene: Scene) -> None:
    await expect(
        scene,
        functools.partial(lease, scene, scene.node, NODE_LEASE_NAMESPACE),
        what="the node Lease is created",
        within=8,
    )


async def node_lease_is_renewed(scene: Scene) -> None:
    # renewed at once when the Node turns Ready, then every 10 s
    await renewed(
        scene,
        scene.node,
        NODE_LEASE_NAMESPACE,
        what="the node Lease is renewed",
        appears_within=8,
        within=16,
    )


async def leader_lease_is_taken(scene: Scene) -> None:
    async def held() -> bool:
        found = await lease(scene, f"vk-trio-{scene.node}", scene.namespace)
        return bool(found.spec.holder_identity)

    await expect(scene, held, what="a replica takes the leader Lease", within=8)


async def leader_lease_is_renewed(scene: Scene) -> None:
    # every 2 s (kube/leader.py RETRY_PERIOD)
    await renewed(
        scene,
        f"vk-trio-{scene.node}",
        scene.namespace,
        what="the leader renews its Lease",
        appears_within=8,
        within=8,
    )


async def phase_of(scene: Scene, name: str, phases: Sequence[str]) -> bool:
    return (await pod(scene, name)).status.phase in phases


async def bind_pod_early(scene: Scene) -> None:
    await create_pod(scene, "early", annotations=FAST)


async def pod_bound_before_start_runs(scene: Scene) -> None:
    await expect(
        scene,
        functools.partial(phase_of, scene, "early", ("Running",)),
        what="a pod bound to the node before the agent started runs",
        within=10,
    )


async def pod_bound_later_runs(scene: Scene) -> None:
    await setup(scene, functools.partial(ready_node, scene), what="the Node is Ready")
    await create_pod(scene, "later", annotations=FAST)
    await expect(
        scene,
        functools.partial(phase_of, scene, "later", ("Running",)),
        what="a pod bound to the node after the agent started runs",
        within=8,
    )


async def pod_status_follows_the_instance(scene: Scene) -> None:
    annotations = {**FAST, "fake.vk-trio.io/run-seconds": "1"}
    await create_pod(scene, "short", annotations=annotations)

    async def rented() -> bool:
        return scene.fake.spec_of("short") is not None

    await setup(scene, rented, what="the pod's instance is rented")
    await expect(
        scene,
        functools.partial(phase_of, scene, "short", ("Running", "Succeeded")),
        what="the pod reports Running",
        within=8,
    )
    await expect(
        scene,
        functools.partial(phase_of, scene, "short", ("Succeeded",)),
        what="the pod completes: Succeeded",
        within=8,
    )


async def deleted_pod_disappears(scene: Scene) -> None:
    await create_pod(scene, "doomed", annotations=FAST)
    await setup(
        scene,
        functools.partial(phase_of, scene, "doomed", ("Running",)),
        what="the pod runs",
    )
    spec = scene.fake.spec_of("doomed")
    assert spec is not None
    await scene.admin.delete(PODS, "doomed", namespace=scene.namespace)

    async def instance_gone() -> bool:
        await trio.lowlevel.checkpoint()
        return not [i for i in scene.fake.live_instances() if i.pod_uid == spec.pod_uid]

    await setup(scene, instance_gone, what="the deleted pod's instance is deleted")

    async def gone() -> bool:
        try:
            await pod(scene, "doomed")
        except NotFound:
            return True
        return False

    await expect(scene, gone, what="a deleted pod is removed once its instance is gone", within=8)


async def events_are_written(scene: Scene) -> None:
    await create_pod(scene, "observed", annotations=FAST)

    async def rented() -> bool:
        return scene.fake.spec_of("observed") is not None

    await setup(scene, rented, what="the pod's instance is rented")

    async def scheduled() -> bool:
        return any(e.reason == "Scheduled" for e in await events_of(scene, "observed"))

    await expect(scene, scheduled, what="Events are written for a pod", within=6)


async def repeated_event_is_counted(scene: Scene) -> None:
    env = [
        {
            "name": "TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "absent", "key": "token"}},
        }
    ]
    await create_pod(scene, "waits-for-secret", annotations=FAST, env=env)

    async def max_count() -> int:
        return max((e.count for e in await events_of(scene, "waits-for-secret")), default=0)

    await setup(scene, max_count, what="an Event says the Secret is missing")

    async def counted() -> bool:
        return await max_count() >= 2

    await expect(scene, counted, what="a repeated Event is counted, not duplicated", within=10)


async def secret_reaches_the_instance(scene: Scene) -> None:
    value = secrets.token_hex(8)
    await create_secret(scene, "creds", {"token": value})
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    await create_pod(scene, "uses-secret", annotations=FAST, env=env)

    async def delivered() -> bool:
        spec = scene.fake.spec_of("uses-secret")
        return spec is not None and spec.env.get("TOKEN") == value

    await expect(scene, delivered, what="env from a Secret reaches the instance", within=8)


async def config_map_reaches_the_instance(scene: Scene) -> None:
    await create_config_map(scene, "settings", {"EPOCHS": "3"})
    env_from = [{"configMapRef": {"name": "settings"}}]
    await create_pod(scene, "uses-config", annotations=FAST, env_from=env_from)

    async def delivered() -> bool:
        spec = scene.fake.spec_of("uses-config")
        return spec is not None and spec.env.get("EPOCHS") == "3"

    await expect(scene, delivered, what="env from a ConfigMap reaches the instance", within=8)


async def service_links_reach_the_instance(scene: Scene) -> None:
    service = {
        "metadata": {"name": "db"},
        "spec": {"ports": [{"port": 5432}], "selector": {"app": "db"}},
    }
    await scene.admin.create(SERVICES, service, namespace=scene.namespace)
    await create_pod(scene, "linked", annotations=FAST)

    async def delivered() -> bool:
        spec = scene.fake.spec_of("linked")
        return spec is not None and spec.env.get("DB_SERVICE_PORT") == "5432"

    await expect(scene, delivered, what="service-link variables reach the instance", within=8)


async def job_annotations_apply(scene: Scene) -> None:
    await create_job(
        scene,
        "annotated",
        annotations={"vk-trio.test/from-job": "yes"},
        pod_annotations={**FAST, "fake.vk-trio.io/run-seconds": "1"},
    )
    made = await setup(
        scene, functools.partial(job_pod, scene, "annotated"), what="the Job made its pod"
    )

    async def applied() -> bool:
        spec = scene.fake.spec_of(made.metadata.name)
        return spec is not None and spec.need.annotations.get("vk-trio.test/from-job") == "yes"

    await expect(scene, applied, what="a Job's annotations apply to its pod", within=8)


NODE_REGISTERED = Capability("the Node is registered", node_is_registered)
NODE_READY = Capability("the Node turns Ready", node_turns_ready)
NODE_ROLE_LABEL = Capability("the Node carries its role label", node_carries_its_role_label)
NODE_COMES_BACK = Capability("a deleted Node is registered again", deleted_node_comes_back)
NODE_LEASE_CREATED = Capability("the node Lease is created", node_lease_is_created)
NODE_LEASE_RENEWED = Capability("the node Lease is renewed", node_lease_is_renewed)
LEADER_TAKEN = Capability("a replica takes the leader Lease", leader_lease_is_taken)
LEADER_RENEWED = Capability("the leader renews its Lease", leader_lease_is_renewed)
EARLY_POD_RUNS = Capability(
    "a pod bound before the agent started runs", pod_bound_before_start_runs, bind_pod_early
)
LATER_POD_RUNS = Capability("a pod bound after the agent started runs", pod_bound_later_runs)
POD_STATUS = Capability("a pod reports Running, then Succeeded", pod_status_follows_the_instance)
POD_DELETION = Capability("a deleted pod is removed", deleted_pod_disappears)
EVENTS = Capability("Events are written for a pod", events_are_written)
EVENT_COUNT = Capability("a repeated Event is counted", repeated_event_is_counted)
SECRET_ENV = Capability("env from a Secret reaches the instance", secret_reaches_the_instance)
CONFIG_MAP_ENV = Capability(
    "env from a ConfigMap reaches the instance", config_map_reaches_the_instance
)
SERVICE_LINKS = Capability(
    "service-link variables reach the instance", service_links_reach_the_instance
)
JOB_ANNOTATIONS = Capability("a Job's annotations apply to its pod", job_annotations_apply)
