"""`kubectl logs` through the real API server, the real kubectl and the agent's real HTTPS port,
for the fake, the simulated RunPod and the simulated Vast.ai: following while the pod runs,
--tail, --since, --timestamps, --limit-bytes, `kubectl logs job/x` after the Job completed and its
instance is gone, --previous after a restart, and a Ctrl-C that leaves no stream open upstream.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from tests.agent_harness import admin_client, eventually, get_pod
from tests.api.scenes import PROVIDERS, Scene, scene
from tests.controlplane.launcher import ControlPlane, kubectl_path
from vk_trio.kube.resources import JOBS

pytestmark = pytest.mark.controlplane

LINES = tuple(f"step {i} of 6: loss={1.0 / (i + 1):.3f}" for i in range(6))
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")


@asynccontextmanager
async def started_process(argv: list[str]) -> AsyncIterator[trio.Process]:
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE)
    try:
        yield process
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()


async def kubectl(cp: ControlPlane, *args: str) -> str:
    done = await trio.to_thread.run_sync(lambda: cp.kubectl(*args))
    return done.stdout


async def no_instances(scene_: Scene) -> bool:
    provider = scene_.agent.reconciler.provider if scene_.agent.reconciler else None
    assert provider is not None
    return not await provider.list()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_logs_follow_while_running_then_outlive_the_jobs_instance(
    provider: str, controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    async with scene(provider, controlplane, tmp_path) as sc, admin_client(controlplane) as client:
        sc.workload("example/train:1", LINES, seconds=6)
        job = {
            "metadata": {"name": "train"},
            "spec": {
                "backoffLimit": 0,
                "template": sc.pod_spec("example/train:1", restart_policy="Never"),
            },
        }
        await client.create(JOBS, job, namespace=namespace)
        argv = [str(kubectl_path()), f"--kubeconfig={controlplane.kubeconfig}", "-n", namespace]

        async def started() -> bool:
            done = await trio.run_process(
                [*argv, "logs", "job/train"], capture_stdout=True, capture_stderr=True, check=False
            )
            return done.returncode == 0 and bool(done.stdout)

        await eventually(started, within=60, what="the Job's first log line")
        # follow: lines arrive while the pod runs, and the stream ends with the container
        received: list[tuple[float, str]] = []
        async with started_process([*argv, "logs", "-f", "job/train"]) as follow:
            assert follow.stdout is not None
            buffer = b""
            with trio.fail_after(60):
                async for chunk in follow.stdout:
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        received.append((trio.current_time(), line.decode()))
        assert [text for _, text in received] == list(LINES)
        assert received[-1][0] - received[0][0] > 1.0  # not all at once: streamed as printed

        async def completed() -> bool:
            job_now = await client.get(JOBS, "train", namespace=namespace)
            done = any(
                c.type == "Complete" and c.status == "True" for c in job_now.status.conditions
            )
            return done and await no_instances(sc)

        await eventually(completed, within=60, what="the Job complete and its instance gone")
        assert (
            await kubectl(controlplane, "-n", namespace, "logs", "job/train")
        ).splitlines() == list(LINES)
        tail = await kubectl(controlplane, "-n", namespace, "logs", "job/train", "--tail=2")
        assert tail.splitlines() == list(LINES[-2:])
        limited = await kubectl(
            controlplane, "-n", namespace, "logs", "job/train", "--limit-bytes=10"
        )
        assert limited == LINES[0][:10]
        stamped = (
            await kubectl(controlplane, "-n", namespace, "logs", "job/train", "--timestamps")
        ).splitlines()
        if sc.stamps_lines:
            assert all(STAMP.match(line) for line in stamped), stamped
            assert [STAMP.sub("", line) for line in stamped] == list(LINES)
            recent = await kubectl(controlplane, "-n", namespace, "logs", "job/train", "--since=1h")
            assert recent.splitlines() == list(LINES)
            future = await kubectl(
                controlplane,
                "-n",
                namespace,
                "logs",
                "job/train",
                "--since-time=2999-01-01T00:00:00Z",
            )
            assert future == ""
        else:  # Vast.ai gives no time per line: nothing is invented
            assert stamped == list(LINES)
        # the wrapper's exit-code marker never reaches the user
        assert "exit" not in (await kubectl(controlplane, "-n", namespace, "logs", "job/train"))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_previous_after_a_restart_and_ctrl_c_closes_the_upstream_stream(
    provider: str, controlplane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    async with scene(provider, controlplane, tmp_path) as sc, admin_client(controlplane) as client:
        lines = ("attempt starting", "about to fail")
        sc.workload("example/flaky:1", lines, seconds=2, exit_code=3)
        from vk_trio.kube.resources import PODS

        await client.create(
            PODS,
            sc.pod("flaky", "example/flaky:1", restart_policy="OnFailure"),
            namespace=namespace,
        )

        async def restarted() -> bool:
            pod = await get_pod(client, namespace, "flaky")
            return any(s.restart_count >= 1 for s in pod.status.container_statuses)

        await eventually(restarted, within=90, what="a restart of the container")
        previous = await kubectl(controlplane, "-n", namespace, "logs", "flaky", "--previous")
        assert previous.splitlines() == list(lines)

        # Ctrl-C on a follow: the agent closes its stream to the provider at once
        argv = [str(kubectl_path()), f"--kubeconfig={controlplane.kubeconfig}", "-n", namespace]
        sc.workload("example/service:1", ("serving",), seconds=600)
        await client.create(
            PODS, sc.pod("svc", "example/service:1", restart_policy="Always"), namespace=namespace
        )
        api_view = sc.agent.api.agent if sc.agent.api else None
        assert api_view is not None

        async def serving() -> bool:
            done = await trio.run_process(
                [*argv, "logs", "svc"], capture_stdout=True, capture_stderr=True, check=False
            )
            return b"serving" in done.stdout

        await eventually(serving, within=60, what="the service's log")
        async with started_process([*argv, "logs", "-f", "svc"]) as follow:
            assert follow.stdout is not None
            with trio.fail_after(30):
                assert b"serving" in await follow.stdout.receive_some(4096)
            assert api_view.open_log_streams == 1
            if sc.runpod is not None:
                assert sc.runpod.open_log_streams >= 1
            follow.send_signal(signal.SIGINT)

        async def closed() -> bool:
            upstream = sc.runpod.open_log_streams if sc.runpod is not None else 0
            return api_view.open_log_streams == 0 and upstream == 0

        await eventually(closed, within=10, what="no log stream left open")
