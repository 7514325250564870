"""``python -m vk_trio.sim.runpod --port N``: the simulated RunPod as a standalone server.

The seeds' example images are scripted (examples.py), and their registry configs served at
``/registry``: point ``vk-trio run --runpod-api-url`` at it with ``RUNPOD_API_KEY`` set to the
simulator's key and ``VK_TRIO_REGISTRY_MIRROR`` at the printed mirror URL.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import trio

from vk_trio.latency import from_flag
from vk_trio.sim.runpod.app import REALISTIC_LATENCY, RunPodSim
from vk_trio.sim.runpod.examples import seed_workloads
from vk_trio.sim.runpod.model import Timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vk_trio.sim.runpod", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default="sim-key", help="the bearer key to accept")
    parser.add_argument("--provisioning", type=float, default=Timings.provisioning)
    parser.add_argument("--starting", type=float, default=Timings.starting)
    parser.add_argument("--ports-delay", type=float, default=Timings.ports_delay)
    parser.add_argument("--running-early", action="store_true", help="report RUNNING at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--latency",
        default="",
        help="response times: 'realistic', or e.g. 'createPod=1-3,listPods=0.3,*=0.1' (seconds)",
    )
    args = parser.parse_args(argv)
    timings = Timings(
        provisioning=args.provisioning,
        starting=args.starting,
        ports_delay=args.ports_delay,
        running_early=args.running_early,
    )
    sim = RunPodSim(
        api_key=args.api_key,
        timings=timings,
        seed=args.seed,
        latency=from_flag(args.latency, realistic=REALISTIC_LATENCY, seed=args.seed),
    )
    for image, workload in seed_workloads().items():
        sim.script_workload(image, workload)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(sim.serve, host=args.host, port=args.port))
            print(f"simulated RunPod v2 API on http://{args.host}:{port}", flush=True)
            print(f"image registry mirror on http://{args.host}:{port}/registry", flush=True)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
