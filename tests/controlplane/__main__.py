"""`python -m tests.controlplane up|down|build`: the control plane outside pytest.

For a fast development loop start it once (`up --state-dir DIR`), point the tests at it with
VK_TRIO_CONTROLPLANE_STATE=DIR, and stop it with `down --state-dir DIR` when done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.controlplane import launcher, metrics_server
from tests.controlplane.build import ensure_binary, ensure_kwok


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    if args.command == "build":
        binary = ensure_binary()
        print(f"{binary}  ({time.monotonic() - started:.1f}s)")
        started = time.monotonic()
        extra = metrics_server.ensure_binary()  # for kubectl top (tests/api)
        print(f"{extra}  ({time.monotonic() - started:.1f}s)")
        started = time.monotonic()
        kwok = ensure_kwok()  # the simulated local GPU nodes of tests/pods/test_burst_*
        print(f"{kwok}  ({time.monotonic() - started:.1f}s)")
    elif args.command == "up":
        binary = ensure_binary()
        built = time.monotonic()
        cp = launcher.up(args.state_dir, binary=binary)
        up_s = time.monotonic() - built
        print(f"binary in {built - started:.1f}s, control plane in {up_s:.1f}s", file=sys.stderr)
        print(f"server {cp.server}  logs {cp.state_dir / 'logs'}", file=sys.stderr)
        print(cp.kubeconfig)
    else:
        launcher.down(args.state_dir)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "build", help="build (or find) the cached controlplane, metrics-server and kwok binaries"
    )
    for name, text in (("up", "start, or reuse, a control plane"), ("down", "stop it")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", type=Path, required=True, help="its files, logs and pids")
    return parser


if __name__ == "__main__":
    sys.exit(main())
