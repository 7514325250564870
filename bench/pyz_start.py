"""Start-up of the shipped .pyz: process spawned → its Node Ready in the API server.

Why: the agent is restarted by systemd, by a Deployment rollout, by a user on a laptop; the
time to Ready is how long the node is NotReady (pods look lost) at every restart. pex's
``--venv`` mode builds a venv under PEX_ROOT on the first run (cold) and execs that venv's
interpreter directly afterwards (warm).

Figures (written to bench/results/pyz_start.json; medians):
* ``warm_to_ready_s``: warm PEX_ROOT, spawn → Node condition Ready=True.   TARGET <= 1.5 s
* ``cold_to_ready_s``: fresh, empty PEX_ROOT each run, same measure.      TARGET <= 10 s
* ``warm_version_ms`` / ``cold_version_ms``: ``vk-trio.pyz version`` (process start only),
  each with PYTHONDONTWRITEBYTECODE set and unset (this machine sets it; pex runs its venv
  with ``-I``, which ignores it, so the two should match).
* ``readyz_to_ready_ms``: how much later than /readyz answering 200 the API shows Ready.
The .pyz is built from the work tree first (build_zipapp.build), its size is reported too.

Run: ``python -m bench.pyz_start [--runs 5] [--cold-runs 3] [--state-dir /tmp/cp]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import trio

import build_zipapp
from tests.agent_harness import admin_client, delete_node, unique_node
from tests.controlplane import launcher
from tests.controlplane.launcher import ControlPlane
from vk_trio.errors import NotFound
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Node
from vk_trio.kube.resources import NODES

TARGET_WARM_TO_READY_S = 1.5
TARGET_COLD_TO_READY_S = 10.0
POLL_S = 0.01


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(pex_root: Path, *, dont_write_bytecode: bool) -> dict[str, str]:
    env = dict(os.environ, PEX_ROOT=str(pex_root))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if dont_write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def time_version(pyz: Path, env: dict[str, str]) -> float:
    """Wall time of ``vk-trio.pyz version`` in milliseconds."""
    started = time.perf_counter()
    subprocess.run([str(pyz), "version"], env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


async def _node_ready(client: KubeClient, name: str) -> bool:
    try:
        node: Node = await client.get(NODES, name)
    except NotFound:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


async def time_to_ready(
    pyz: Path, cp: ControlPlane, client: KubeClient, env: dict[str, str], workdir: Path
) -> tuple[float, float]:
    """Spawn ``vk-trio.pyz run``; seconds to Node Ready, and ms between /readyz and that."""
    node, port = unique_node("bench-pyz"), _free_port()
    argv = [
        str(pyz),
        "run",
        "--provider",
        "fake",
        "--fake-state-file",
        str(workdir / f"{node}.json"),
        "--kubeconfig",
        str(cp.kubeconfig),
        "--nodename",
        node,
        "--health-server-address",
        f"127.0.0.1:{port}",
        "--node-ip",
        "127.0.0.1",
    ]
    readyz_at: float | None = None
    with (workdir / f"{node}.log").open("wb") as log:
        started = time.perf_counter()
        process = await trio.lowlevel.open_process(argv, env=env, stdout=log, stderr=log)
    try:
        async with httpx2.AsyncClient() as http:
            with trio.fail_after(120):
                while True:
                    if process.poll() is not None:
                        raise RuntimeError(f"agent exited {process.returncode}, see {log.name}")
                    if readyz_at is None:
                        try:
                            answer = await http.get(f"http://127.0.0.1:{port}/readyz")
                            if answer.status_code == 200:
                                readyz_at = time.perf_counter()
                        except httpx2.TransportError:
                            pass
                    if await _node_ready(client, node):
                        ready_at = time.perf_counter()
                        break
                    await trio.sleep(POLL_S)
        lag = (ready_at - readyz_at) * 1000 if readyz_at is not None else float("nan")
        return ready_at - started, lag
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(30):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await delete_node(client, node)


async def run(pyz: Path, cp: ControlPlane, *, runs: int, cold_runs: int) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="vk-bench-pyz-"))
    warm_root = scratch / "warm-pex-root"
    result: dict[str, Any] = {}
    for label, dont in (("dontwritebytecode", True), ("writebytecode", False)):
        cold = []
        for i in range(cold_runs):
            cold.append(
                time_version(pyz, _env(scratch / f"cold-{label}-{i}", dont_write_bytecode=dont))
            )
        env = _env(scratch / f"warm-{label}", dont_write_bytecode=dont)
        time_version(pyz, env)
        warm = [time_version(pyz, env) for _ in range(max(runs, 10))]
        result[f"cold_version_ms_{label}"] = round(statistics.median(cold), 1)
        result[f"warm_version_ms_{label}"] = round(statistics.median(warm), 1)
    env = _env(warm_root, dont_write_bytecode=True)
    async with admin_client(cp) as client:
        await time_to_ready(pyz, cp, client, env, scratch)  # fills the warm PEX_ROOT
        warm_runs = [await time_to_ready(pyz, cp, client, env, scratch) for _ in range(runs)]
        cold_runs_ = [
            await time_to_ready(
                pyz, cp, client, _env(scratch / f"cold-{i}", dont_write_bytecode=True), scratch
            )
            for i in range(cold_runs)
        ]
    warm_s = statistics.median(t for t, _ in warm_runs)
    cold_s = statistics.median(t for t, _ in cold_runs_)
    result.update(
        {
            "warm_to_ready_s": round(warm_s, 3),
            "warm_to_ready_all_s": [round(t, 3) for t, _ in warm_runs],
            "cold_to_ready_s": round(cold_s, 3),
            "cold_to_ready_all_s": [round(t, 3) for t, _ in cold_runs_],
            "readyz_to_ready_ms": round(statistics.median(lag for _, lag in warm_runs), 1),
        }
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vk-trio .pyz start-up benchmark")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="reuse a control plane started with python -m tests.controlplane up",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/pyz_start.json"))
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="vk-bench-pyz-build-"))
    started = time.perf_counter()
    pyz = build_zipapp.build(scratch / "vk-trio.pyz")
    build_s = time.perf_counter() - started
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="vk-bench-cp-"))
    cp = launcher.up(state)
    try:
        figures = trio.run(lambda: run(pyz, cp, runs=args.runs, cold_runs=args.cold_runs))
    finally:
        if args.state_dir is None:
            launcher.down(state)
    result = {
        "benchmark": "pyz_start",
        "pyz_bytes": pyz.stat().st_size,
        "pyz_sha256": build_zipapp.sha256(pyz),
        "build_s": round(build_s, 2),
        **figures,
        "target_warm_to_ready_s": TARGET_WARM_TO_READY_S,
        "target_cold_to_ready_s": TARGET_COLD_TO_READY_S,
        "meets_targets": figures["warm_to_ready_s"] <= TARGET_WARM_TO_READY_S
        and figures["cold_to_ready_s"] <= TARGET_COLD_TO_READY_S,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
