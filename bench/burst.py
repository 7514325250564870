"""Burst at scale: 500 managed Jobs pending at once, offloaded with --pending-job-threshold 0.

Why: the day the cluster's GPUs are full is the day hundreds of Jobs queue; the burst
controller must bind them all quickly without flooding the API server. This creates the Jobs
on the local control plane (tests/controlplane) with no node that could run them, waits until
the scheduler has marked every pod Unschedulable, and only then starts the agent (in this
process, fake provider) with ``--offload --pending-job-threshold 0``: its first decision pass
sees all of them at once.

Figures (written to bench/results/burst.json):
* ``to_bound_s``: agent Ready (burst starting) → every pod bound to the node.  TARGET <= 10 s
* ``burst_writes_per_job``: API writes burst made per Job, by kind (binding, Job annotation,
  Events) and in total.                                                        TARGET <= 3
* ``agent_writes_per_job``: every POST/PATCH of the agent's client in the window (burst plus
  the node's own work on the pods it now runs: status patches), per Job.
Each run states the API client QPS/burst it used.

Run: ``python -m bench.burst [--jobs 500] [--qps 100 --burst 200] [--state-dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from tests.agent_harness import admin_client, agent_config, delete_node, running_agent
from tests.controlplane import launcher
from tests.controlplane.launcher import ControlPlane
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import ObjectList, Pod
from vk_trio.kube.resources import JOBS, PODS
from vk_trio.kube.watch import Changed, Synced, watch_resource

TARGET_TO_BOUND_S = 10.0
TARGET_WRITES_PER_JOB = 3.0
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def job_body(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {"runpod.io/managed": "true"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"fake.vk-trio.io/boot-seconds": "0"}},
                "spec": {
                    "restartPolicy": "Never",
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


async def all_unschedulable(client: KubeClient, ns: str) -> int:
    listed: ObjectList[Pod] = await client.list(PODS, namespace=ns)
    return sum(
        any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in p.status.conditions)
        for p in listed.items
    )


async def create_pending_jobs(admin: KubeClient, ns: str, names: list[str]) -> tuple[float, float]:
    """Create the Jobs; seconds until created, and until every pod is Unschedulable."""
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        limit = trio.CapacityLimiter(32)

        async def create(name: str) -> None:
            async with limit:
                await admin.create(JOBS, job_body(name), namespace=ns)

        for name in names:
            nursery.start_soon(create, name)
    created_s = time.monotonic() - started
    with trio.fail_after(600):
        while True:
            if await all_unschedulable(admin, ns) >= len(names):
                break
            await trio.sleep(1)
    return created_s, time.monotonic() - started


async def pods_gone(admin: KubeClient, ns: str) -> None:
    """Wait (up to 3 minutes) until the namespace has no pod left: a pending pod of this run
    must not land on a GPU node registered later (the tests' local kwok nodes)."""
    with trio.move_on_after(180):
        while True:
            listed: ObjectList[Pod] = await admin.list(PODS, namespace=ns)
            if not listed.items:
                return
            await trio.sleep(0.5)


async def run(cp: ControlPlane, *, jobs: int, qps: float, burst: int) -> dict[str, Any]:
    ns = f"bench-burst-{secrets.token_hex(3)}"
    names = [f"job-{i:04d}" for i in range(jobs)]
    work = Path(tempfile.mkdtemp(prefix="vk-bench-burst-"))
    config = agent_config(
        cp,
        work,
        offload=True,
        pending_job_threshold=0,
        gpus=jobs * 2,
        max_pods=jobs * 2,
        kube_qps=qps,
        kube_burst=burst,
        reconcile_interval=30.0,
        fast_interval=2.0,
    )
    async with admin_client(cp) as admin:
        await trio.to_thread.run_sync(lambda: cp.kubectl("create", "namespace", ns))
        try:
            created_s, pending_s = await create_pending_jobs(admin, ns, names)
            bound: set[str] = set()
            all_bound = trio.Event()

            async def on_pod(event: Synced[Pod] | Changed[Pod]) -> None:
                items = event.items if isinstance(event, Synced) else [event.object]
                for pod in items:
                    if pod.spec.node_name == config.node_name:
                        bound.add(pod.metadata.uid)
                if len(bound) >= jobs:
                    all_bound.set()

            async with trio.open_nursery() as nursery:
                await nursery.start(
                    lambda task_status: watch_resource(
                        admin, PODS, on_pod, namespace=ns, task_status=task_status
                    )
                )
                async with running_agent(config, cp) as agent:
                    ready = time.monotonic()
                    before = dict(agent.kube_requests)
                    with trio.fail_after(300):
                        await all_bound.wait()
                    to_bound = time.monotonic() - ready
                    stats = agent.burst
                    with trio.move_on_after(60):  # the Job annotations follow the bindings
                        while True:
                            if stats.job_annotations >= jobs:
                                break
                            await trio.sleep(0.1)
                    after = dict(agent.kube_requests)
                    writes = dict(stats.writes)
                    lost = stats.lost_races
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(
                    lambda: cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)
                )
                await pods_gone(admin, ns)  # no pending GPU pod may outlive the run
                await delete_node(admin, config.node_name)
    agent_writes = sum(after.get(m, 0) - before.get(m, 0) for m in WRITES)
    burst_writes = sum(writes.values())
    return {
        "jobs": jobs,
        "qps": qps,
        "burst": burst,
        "create_jobs_s": round(created_s, 2),
        "all_pending_s": round(pending_s, 2),
        "to_bound_s": round(to_bound, 2),
        "target_to_bound_s": TARGET_TO_BOUND_S,
        "burst_writes": writes,
        "burst_writes_per_job": round(burst_writes / jobs, 2),
        "burst_writes_per_job_by_kind": {k: round(v / jobs, 2) for k, v in writes.items()},
        "target_writes_per_job": TARGET_WRITES_PER_JOB,
        "lost_races": lost,
        "agent_writes_per_job_in_window": round(agent_writes / jobs, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vk-trio burst benchmark")
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--qps", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="reuse a control plane started with python -m tests.controlplane up",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/burst.json"))
    args = parser.parse_args(argv)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="vk-bench-cp-"))
    cp = launcher.up(state)
    try:
        result = trio.run(lambda: run(cp, jobs=args.jobs, qps=args.qps, burst=args.burst))
    finally:
        if args.state_dir is None:
            launcher.down(state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
