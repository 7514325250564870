"""The story ``vk-trio demo`` tells: simulated clouds, the node agent, seed 000's Job, the bill.

demo.py owns the cluster and the signals; this module runs one Job through the real agent and
shows, as a user would see it with kubectl, what happens: scheduling, the rented GPU (from the
pod's annotations: which cloud, instance, GPU, where, $/h), phase changes, the container's log
lines (through the same provider call ``kubectl logs`` uses) and the end. The price comes from
the simulator's billing ledger, which is what the cloud's invoice would say for the same
seconds (demo_clouds.py).

The Job is seed 000's example as written (no ``command``: the image's CMD runs, read from its
registry config; ``runpod.io/required-gpu-memory`` on the Job, not the pod) plus what seed 001
says a pod needs to land on the virtual node: the taint's toleration and a nodeSelector. On a
node that fronts Vast.ai too, the Job also says ``vk-trio.io/gpu-memory: "16"``: RunPod's own
annotation narrows only RunPod's offers (README, "Both clouds").
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import trio

from vk_trio.config import Config, load_config
from vk_trio.daemon import run_agent
from vk_trio.demo_clouds import TITLES, DemoClouds, Rented, start_clouds
from vk_trio.errors import KubeError
from vk_trio.kube.auth import resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Event, Job, ObjectList, Pod
from vk_trio.kube.resources import EVENTS, JOBS, NODES, PODS
from vk_trio.providers import registry
from vk_trio.providers.base import CloudError, LogOptions, LogsUnavailable, Provider

JOB_NAME = "gpu-workload"
IMAGE = "my-gpu-image:latest"
POLL = 0.5


class Console:
    """Lines stamped with the seconds since the demo started."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=self.stream, flush=True)

    def plain(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)


def seed_job(name: str, node: str, *, clouds: tuple[str, ...] = ("runpod",)) -> dict[str, Any]:
    """Seed 000's example Job, placed on ``node`` as seed 001 documents (any taint value)."""
    annotations = {"runpod.io/required-gpu-memory": "16"}
    if clouds != ("runpod",):
        annotations["vk-trio.io/gpu-memory"] = "16"  # for every cloud, not only RunPod
    return {
        "metadata": {
            "name": name,
            "labels": {"runpod.io/managed": "true"},
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "gpu-task",
                            "image": IMAGE,
                            "resources": {
                                "requests": {"nvidia.com/gpu": 1},
                                "limits": {"nvidia.com/gpu": 1},
                            },
                        }
                    ],
                    "restartPolicy": "Never",
                    "nodeSelector": {"type": "virtual-kubelet", "kubernetes.io/hostname": node},
                    "tolerations": [
                        {
                            "key": "virtual-kubelet.io/provider",
                            "operator": "Equal",
                            "value": clouds[0],  # the node's taint names its first cloud
                            "effect": "NoSchedule",
                        }
                    ],
                }
            },
        },
    }


async def run_demo_job(
    kubeconfig: Path,
    *,
    console: Console,
    namespace: str,
    give_up_after: float,
    clouds: tuple[str, ...] = ("runpod",),
) -> int:
    """Run the Job on ``kubeconfig``'s cluster, the node fronting the simulated ``clouds``;
    0 when it completed, 1 otherwise."""
    node = f"vk-trio-demo-{secrets.token_hex(3)}"
    credentials = await resolve_credentials(kubeconfig=str(kubeconfig), env={})
    async with KubeClient(credentials) as client:
        try:
            async with trio.open_nursery() as nursery:
                sims = await start_clouds(nursery, clouds)
                for name, sim in (("runpod", sims.runpod), ("vastai", sims.vast)):
                    if sim is not None:
                        console.say(
                            f"simulated {TITLES[name]} API on {sim.url}: no real GPU is rented"
                        )
                config = _agent_config(kubeconfig, node, sims)
                provider = await registry.build(config, nursery, sims.keys())
                await nursery.start(functools.partial(run_agent, config, provider=provider))
                console.say(f"node {node} is Ready (vk-trio node agent in this process)")
                code = await _follow(
                    client,
                    provider=provider,
                    sims=sims,
                    console=console,
                    namespace=namespace,
                    node=node,
                    give_up_after=give_up_after,
                )
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(20):
                await _tidy(client, namespace, node)
    return code


def _agent_config(kubeconfig: Path, node: str, sims: DemoClouds) -> Config:
    return load_config(
        flags={
            "kubeconfig": str(kubeconfig),
            "node_name": node,
            **sims.agent_flags(),
            "fast_interval": 1.0,
            "reconcile_interval": 2.0,
            "health_server_address": "127.0.0.1:0",
            "node_ip": "127.0.0.1",
            # kubectl logs works in the demo: any free port, a certificate without approval
            "kubelet_address": "127.0.0.1",
            "kubelet_port": 0,
            "serving_cert": "self-signed",
        },
        env={},
    )


async def _tidy(client: KubeClient, namespace: str, node: str) -> None:
    """Remove what the demo created in the cluster (it matters with --kubeconfig)."""
    for resource, name, ns, policy in (
        (JOBS, JOB_NAME, namespace, "Background"),
        (NODES, node, None, None),
    ):
        with contextlib.suppress(KubeError):  # already gone (or the cluster is): that is fine
            await client.delete(resource, name, namespace=ns, propagation_policy=policy)


async def _follow(
    client: KubeClient,
    *,
    provider: Provider,
    sims: DemoClouds,
    console: Console,
    namespace: str,
    node: str,
    give_up_after: float,
) -> int:
    await client.create(JOBS, seed_job(JOB_NAME, node, clouds=sims.names), namespace=namespace)
    submitted = trio.current_time()
    also = ", and vk-trio.io/gpu-memory for every cloud" if sims.names != ("runpod",) else ""
    console.say(
        f"submitted Job {namespace}/{JOB_NAME} (the RunPod kubelet README's example): "
        f'image {IMAGE} with no command, nvidia.com/gpu: 1, runpod.io/required-gpu-memory: "16" '
        f"on the Job{also}"
    )
    watcher = _Watcher(client, provider, console, namespace, sims)
    outcome = ""
    with trio.move_on_after(give_up_after):
        async with trio.open_nursery() as logs:
            while not outcome:
                outcome = await watcher.step(logs)
                if not outcome:
                    await trio.sleep(POLL)
            logs.cancel_scope.cancel()
    if not outcome:
        console.say(f"the Job did not finish within {give_up_after:g}s; giving up")
        return 1
    elapsed = trio.current_time() - submitted
    console.say(f"Job {JOB_NAME} {outcome}")
    for _ in range(int(30 / POLL)):  # the agent deletes the finished pod's instance
        if not sims.billing():
            break
        await trio.sleep(POLL)
    rented = watcher.rented
    if not sims.billing() and rented is not None:
        where = f"{TITLES[rented.cloud]} {_kind(rented)}"
        console.say(f"the {where} is terminated: nothing is billed any more")
    if rented is not None:
        _summary(console, rented, sims, outcome=outcome, elapsed=elapsed)
    return 0 if outcome == "Complete" else 1


def _kind(rented: Rented) -> str:
    return "pod" if rented.cloud == "runpod" else "instance"


def _summary(
    console: Console, rented: Rented, sims: DemoClouds, *, outcome: str, elapsed: float
) -> None:
    memory = sims.memory_gb(rented)
    shown = f" ({memory:g} GB)" if memory else ""
    cost, billed = sims.bill(rented)
    title = TITLES[rented.cloud]
    console.plain()
    console.plain(f"Result: Job {JOB_NAME} {outcome}")
    console.plain(f"  GPU    {rented.gpu}{shown} in {rented.where}")
    console.plain(f"         {title} {_kind(rented)} {rented.instance_id}, ${rented.price:.3f}/h")
    console.plain(f"  time   {elapsed:.1f}s from submitting the Job to its completion")
    console.plain(
        f"  cost   ${cost:.4f} for {billed:.1f}s billed "
        f"(what {title} would charge; simulated, so nothing was paid)"
    )
    console.plain()


class _Watcher:
    """What kubectl would show about the Job, printed when it changes."""

    def __init__(
        self, client: KubeClient, provider: Provider, console: Console, ns: str, sims: DemoClouds
    ) -> None:
        self.client, self.provider, self.console, self.ns = client, provider, console, ns
        self.sims = sims
        self.shown: dict[str, str] = {}
        self.events: set[tuple[str, int]] = set()
        self.rented: Rented | None = None
        self.streaming: set[str] = set()

    async def step(self, logs: trio.Nursery) -> str:
        """Print what changed; return "Complete" or "Failed" when the Job is over."""
        job: Job = await self.client.get(JOBS, JOB_NAME, namespace=self.ns)
        pods: ObjectList[Pod] = await self.client.list(
            PODS, namespace=self.ns, label_selector=f"job-name={JOB_NAME}"
        )
        for pod in pods.items:
            self._pod(pod, logs)
            await self._events(pod.metadata.name)
        for condition in job.status.conditions:
            if condition.type in ("Complete", "Failed") and condition.status == "True":
                return condition.type
        return ""

    def _pod(self, pod: Pod, logs: trio.Nursery) -> None:
        name = pod.metadata.name
        state = pod.status.phase or "Pending"
        for status in pod.status.container_statuses:
            if status.state.waiting is not None:
                state += f" ({status.state.waiting.reason})"
            elif status.state.terminated is not None:
                ended = status.state.terminated
                state += f" (exit code {ended.exit_code}, {ended.reason})"
            elif status.state.running is not None:
                state += " (ready)" if status.ready else " (running, not ready)"
        if pod.spec.node_name and name not in self.shown:
            self.console.say(f"pod {name} scheduled onto {pod.spec.node_name}")
        if self.shown.get(name) != state:
            self.shown[name] = state
            self.console.say(f"pod {name}: {state}")
        rented = self.sims.rented(dict(pod.metadata.annotations))
        if rented is not None and rented.instance_id not in self.streaming:
            self.streaming.add(rented.instance_id)
            self.rented = rented
            self.console.say(
                f"pod {name} runs as {TITLES[rented.cloud]} {_kind(rented)} "
                f"{rented.instance_id}: {rented.gpu} in {rented.where} at ${rented.price:.3f}/h"
            )
            logs.start_soon(self._logs, name, rented.instance_id)

    async def _events(self, pod_name: str) -> None:
        listed: ObjectList[Event] = await self.client.list(
            EVENTS, namespace=self.ns, field_selector=f"involvedObject.name={pod_name}"
        )
        for event in listed.items:
            key = (event.metadata.uid, event.count)
            if key not in self.events:
                self.events.add(key)
                self.console.say(f"event {event.type} {event.reason}: {event.message}")

    async def _logs(self, pod_name: str, pod_id: str) -> None:
        """The container's lines, as ``kubectl logs -f`` gets them (until the exit marker, or
        the instance's end: a cloud without a log stream may see it gone before the marker)."""
        shown = 0
        try:
            async for line in self.provider.logs(pod_id, LogOptions(follow=True)):
                self.console.say(f"  {pod_name} | {line.text}")
                shown += 1
        except LogsUnavailable:
            if not shown:
                self.console.say(f"  ({pod_name}: no logs: the instance is gone)")
        except CloudError as exc:
            self.console.say(f"  ({pod_name}: logs unavailable: {exc.message})")
