"""Command line of vk-trio: subcommands, and the mapping of flags to environment variables.

Each subcommand lives in its own function so ``--help`` stays fast: nothing heavy (trio, httpx2)
is imported until a subcommand that needs it runs.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vk_trio import __version__
from vk_trio.errors import ConfigError

if TYPE_CHECKING:
    from vk_trio.config import Config


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"vk-trio {__version__} (Python {platform.python_version()}, {sys.platform})")
    return 0


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    from vk_trio.config import SETTINGS

    parser.add_argument("--config", metavar="FILE", help="TOML config file (flags and env win)")
    for setting in SETTINGS:
        env = f" [env {', '.join(setting.env)}]" if setting.env else ""
        if setting.field in ("disable_taint", "leader_elect", "offload"):
            parser.add_argument(
                setting.flag,
                dest=setting.field,
                action="store_const",
                const="true",
                default=None,
                help=setting.help + env,
            )
        else:
            parser.add_argument(
                setting.flag, dest=setting.field, default=None, help=setting.help + env
            )


def _config_from(args: argparse.Namespace) -> Config:
    from vk_trio.config import SETTINGS, load_config

    flags = {s.field: getattr(args, s.field) for s in SETTINGS}
    return load_config(flags=flags, config_file=args.config)


def _cmd_run(args: argparse.Namespace) -> int:
    config = _config_from(args)  # validate before importing anything heavy

    import trio

    from vk_trio.daemon import run_until_signalled
    from vk_trio.logs import setup_logging
    from vk_trio.providers.registry import check, resolve

    check(resolve(config))  # e.g. a custom RunPod URL without a key: exit 2 before anything
    setup_logging(config.log_level, config.log_format)
    return trio.run(run_until_signalled, config)


def _cmd_offers(args: argparse.Namespace) -> int:
    from vk_trio.offers import main as offers

    return offers(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from vk_trio.demo import main as demo

    return demo(args)


def build_parser() -> argparse.ArgumentParser:
    from vk_trio import demo, offers  # their flags only: both import nothing heavy at the top

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
    run = sub.add_parser("run", help="run the node agent (registers the node, runs its pods)")
    _add_config_flags(run)
    run.set_defaults(func=_cmd_run)
    offers_cmd = sub.add_parser(
        "offers", help="list the GPU offers a pod could rent, cheapest first"
    )
    offers.add_arguments(offers_cmd)
    offers_cmd.set_defaults(func=_cmd_offers)
    demo_cmd = sub.add_parser(
        "demo",
        help="run an example GPU Job end to end on a simulated cloud, or two (no key needed)",
    )
    demo.add_arguments(demo_cmd)
    demo_cmd.set_defaults(func=_cmd_demo)
    return parser


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        result: int = func(args)
    except ConfigError as exc:
        print(f"vk-trio: {exc}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:  # raised from inside a nursery
        config_errors = group.subgroup(lambda exc: isinstance(exc, ConfigError))
        if config_errors is None:
            raise
        print(f"vk-trio: {_first_leaf(config_errors)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result
