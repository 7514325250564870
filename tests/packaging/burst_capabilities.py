"""What burst (``offload: true`` in the chart) does for a user, one ``Capability`` per permission.

A Job annotated ``runpod.io/managed`` and ``runpod.io/offload`` goes to the node at once; its
pod asks for a GPU that no node of the test cluster offers to it, so only burst can place it.
The removal cases run side by side, each agent with burst on: the pod's nodeSelector
(``kubernetes.io/hostname``) keeps every other case's agent from taking it.
"""

from __future__ import annotations

import functools

from tests.packaging.capabilities import Capability, ready_node
from tests.packaging.rbac_support import FAST, Scene, expect, job_pod, setup
from vk_trio.kube.models import Job
from vk_trio.kube.resources import JOBS
from vk_trio.pods.burst_policy import OFFLOADED_TO


async def create_offloadable_job(scene: Scene, name: str) -> None:
    body = {
        "metadata": {
            "name": name,
            "annotations": {"runpod.io/managed": "true", "runpod.io/offload": "true"},
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {**FAST, "fake.vk-trio.io/run-seconds": "1"}},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"kubernetes.io/hostname": scene.node},
                    "containers": [
                        {
                            "name": "work",
                            "image": "nvidia/cuda:12.4.1-base-ubuntu22.04",
                            "command": ["nvidia-smi", "-L"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                },
            },
        },
    }
    await scene.admin.create(JOBS, body, namespace=scene.namespace)


async def bound_here(scene: Scene, job: str) -> bool:
    pod = await job_pod(scene, job)
    return pod is not None and pod.spec.node_name == scene.node


async def create_job_early(scene: Scene) -> None:
    await create_offloadable_job(scene, "burst-early")


async def early_job_is_offloaded(scene: Scene) -> None:
    await expect(
        scene,
        functools.partial(bound_here, scene, "burst-early"),
        what="a managed Job pending before the agent started is bound to the node",
        within=15,
    )


async def create_first_job(scene: Scene) -> None:
    await create_offloadable_job(scene, "burst-first")


async def later_job_is_offloaded(scene: Scene) -> None:
    """Seen through the watch: burst had listed the Jobs already (the first Job, made before
    the agent started, went)."""
    await setup(scene, functools.partial(bound_here, scene, "burst-first"), what="a first Job went")
    await create_offloadable_job(scene, "burst-later")
    await expect(
        scene,
        functools.partial(bound_here, scene, "burst-later"),
        what="a managed Job created after the agent started is bound to the node",
        within=10,
    )


async def offloaded_job_says_where(scene: Scene) -> None:
    await setup(scene, functools.partial(ready_node, scene), what="the Node is Ready")
    await create_offloadable_job(scene, "burst-traced")
    await setup(
        scene, functools.partial(bound_here, scene, "burst-traced"), what="the pod is offloaded"
    )

    async def annotated() -> bool:
        job: Job = await scene.admin.get(JOBS, "burst-traced", namespace=scene.namespace)
        return job.metadata.annotations.get(OFFLOADED_TO) == scene.node

    await expect(scene, annotated, what="the offloaded Job names the node", within=8)


EARLY_JOB_OFFLOADED = Capability(
    "a pending managed Job is offloaded", early_job_is_offloaded, create_job_early
)
LATER_JOB_OFFLOADED = Capability(
    "a managed Job created later is offloaded", later_job_is_offloaded, create_first_job
)
JOB_NAMES_ITS_NODE = Capability("an offloaded Job names the node", offloaded_job_says_where)
