"""Command line of vk-trio: subcommands, and the mapping of flags to environment variables.

Each subcommand lives in its own function so ``--help`` stays fast: nothing heavy (trio, httpx2)
is imported until a subcommand that needs it runs.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from vk_trio import __version__


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"vk-trio {__version__} (Python {platform.python_version()}, {sys.platform})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vk-trio",
        description=(
            "A virtual kubelet: registers a virtual node in a Kubernetes cluster and runs every "
            "pod scheduled onto it as an instance on a cloud GPU marketplace."
        ),
    )
    parser.add_argument("--version", action="version", version=f"vk-trio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    version = sub.add_parser("version", help="print the version and exit")
    version.set_defaults(func=_cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    result: int = func(args)
    return result
