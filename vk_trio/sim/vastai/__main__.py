"""``python -m vk_trio.sim.vastai --port N``: the simulated Vast.ai as a standalone server.

For trying vk-trio (or any Vast.ai client: point its base URL here) without an account. The
clock is the wall clock; the seeds' example images are scripted (examples.py) and their
registry configs served at ``/registry`` (give vk-trio ``VK_TRIO_REGISTRY_MIRROR`` with that
URL); everything else is the in-process simulator's default.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial

import trio

from vk_trio.latency import from_flag
from vk_trio.sim.vastai.app import DEFAULT_API_KEY, REALISTIC_LATENCY, VastSim, trio_clock
from vk_trio.sim.vastai.examples import seed_workloads
from vk_trio.sim.vastai.ratelimit import RateLimits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vk_trio.sim.vastai", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"repeatable (default {DEFAULT_API_KEY})",
    )
    parser.add_argument(
        "--rate-limit-scale", type=float, default=1.0, help="multiply every interval (0: none)"
    )
    parser.add_argument(
        "--latency",
        default="",
        help="response times: 'realistic', or e.g. 'searchOffers=1,createInstance=1.5-2.5'",
    )
    args = parser.parse_args(argv)
    latency = from_flag(args.latency, realistic=REALISTIC_LATENCY)

    async def run() -> None:
        epoch = time.time() - trio.current_time()
        limits = RateLimits()
        limits = (
            limits.scaled(args.rate_limit_scale)
            if args.rate_limit_scale
            else RateLimits(enabled=False)
        )
        sim = VastSim(
            api_keys=args.api_keys or [DEFAULT_API_KEY],
            clock=trio_clock(epoch),
            rate_limits=limits,
            latency=latency,
        )
        for image, workload in seed_workloads().items():
            sim.script(image, workload)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(sim.serve, host=args.host, port=args.port))
            print(f"vast.ai simulator listening on http://{args.host}:{port}", flush=True)
            print(f"image registry mirror on {sim.registry_url}", flush=True)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
