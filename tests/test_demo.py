"""``vk-trio demo`` end to end, as a user runs it: a subprocess, its output, and nothing left.

The demo starts its own control plane (from the cached binary), a simulated RunPod and the
agent, runs seed 000's Job and prints the GPU, the time and the cost. These tests run it as a
child process with a deadline, read what it printed, and then look for anything it left: its
temporary directory, and any process whose command line still names it.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.agent_harness import admin_client
from tests.controlplane.launcher import ControlPlane
from vk_trio import demo
from vk_trio.errors import ConfigError, NotFound
from vk_trio.kube.resources import JOBS, NODES

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 240  # seconds; the demo takes about 30 warm
STATE = re.compile(r"starting a local Kubernetes control plane in (\S+)")


def demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "VK_TRIO_"))}
    env.pop("CREDENTIALS_DIRECTORY", None)
    return env


def processes_naming(text: str) -> list[str]:
    """Command lines of live processes that contain ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(f"{entry.name}: {argv}")
    return found


def assert_nothing_left(output: str) -> None:
    match = STATE.search(output)
    assert match, output
    state = match.group(1)
    assert not Path(state).exists()
    assert processes_naming(state) == []


async def test_the_demo_runs_seed_000s_job_and_reports_gpu_time_and_cost() -> None:
    output = await _run_demo()
    assert "submitted Job default/gpu-workload (the RunPod kubelet README's example)" in output
    assert re.search(r"pod gpu-workload-\w+ runs as RunPod pod \w+: 1x NVIDIA", output)
    assert "gpu-workload-" in output and "| epoch 4/4 loss=0.518" in output
    assert re.search(r"pod gpu-workload-\w+: Running", output)
    assert re.search(r"pod gpu-workload-\w+: Succeeded \(exit code 0, Completed\)", output)
    assert "Result: Job gpu-workload Complete" in output
    assert "GPU    1x NVIDIA RTX 2000 Ada Generation (16 GB)" in output
    assert re.search(r"cost   \$0\.\d{4} for \d+\.\ds billed", output)
    assert "nothing is billed any more" in output
    assert output.rstrip().endswith("done: nothing is left running")
    assert_nothing_left(output)


async def _run_demo(*extra: str) -> str:
    with trio.fail_after(DEADLINE):
        done = await trio.run_process(
            [sys.executable, "-m", "vk_trio", "demo", *extra],
            cwd=str(ROOT),
            env=demo_env(),
            capture_stdout=True,
            stderr=subprocess.STDOUT,
            check=False,
        )
    output = done.stdout.decode()
    assert done.returncode == 0, output
    return output


async def test_ctrl_c_during_the_job_stops_everything_and_removes_the_state() -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "vk_trio", "demo"],
        cwd=str(ROOT),
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = b""
    with trio.fail_after(DEADLINE):
        async for chunk in process.stdout:
            output += chunk
            if b"runs as RunPod pod" in output:
                break
        process.send_signal(signal.SIGINT)
        async for chunk in process.stdout:
            output += chunk
        await process.wait()
    text = output.decode()
    assert process.returncode == 130, text
    assert "SIGINT: stopping and cleaning up" in text and "control plane stopped" in text
    assert_nothing_left(text)


async def test_on_an_existing_cluster_the_demo_leaves_neither_its_job_nor_its_node(
    controlplane: ControlPlane, namespace: str
) -> None:
    output = await _run_demo("--kubeconfig", str(controlplane.kubeconfig), "--namespace", namespace)
    assert "using the cluster of" in output and "Result: Job gpu-workload Complete" in output
    node = re.search(r"node (vk-trio-demo-\w+) is Ready", output)
    assert node
    async with admin_client(controlplane) as client:
        with pytest.raises(NotFound):
            await client.get(NODES, node.group(1))
        with pytest.raises(NotFound):
            await client.get(JOBS, "gpu-workload", namespace=namespace)


async def test_on_both_simulated_clouds_the_job_gets_the_cheaper_gpu_of_the_two(
    controlplane: ControlPlane, namespace: str
) -> None:
    output = await _run_demo(
        "--kubeconfig",
        str(controlplane.kubeconfig),
        "--namespace",
        namespace,
        "--provider",
        "runpod,vastai",
    )
    assert "simulated RunPod API on" in output and "simulated Vast.ai API on" in output
    assert "vk-trio.io/gpu-memory for every cloud" in output
    # at least 16 GB: Vast.ai's RTX 3090 in Bavaria ($0.18/h) beats RunPod's RTX 2000 Ada ($0.24)
    assert re.search(
        r"runs as Vast\.ai instance \d+: 1x RTX 3090 in Bavaria, DE at \$0\.18", output
    )
    assert "GPU    1x RTX 3090 (24 GB) in Bavaria, DE" in output
    assert re.search(r"cost   \$0\.\d{4} for \d+\.\ds billed \(what Vast\.ai would charge", output)
    assert "Result: Job gpu-workload Complete" in output
    assert "nothing is billed any more" in output


def test_a_demo_cloud_that_is_not_simulated_is_refused() -> None:
    args = argparse.Namespace(kubeconfig=None, namespace="d", timeout="9", provider="aws")
    with pytest.raises(ConfigError, match="--provider: 'aws'"):
        demo.main(args)


def test_without_a_source_checkout_the_demo_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(demo, "SOURCE_ROOT", tmp_path)
    with pytest.raises(ConfigError, match=r"source checkout.*--kubeconfig FILE"):
        demo.controlplane_package()
