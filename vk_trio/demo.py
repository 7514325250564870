"""``vk-trio demo``: seed 000's GPU Job, end to end, on a simulated cloud, in under a minute.

What someone wants to see before trusting a kubelet with a credit card: a Kubernetes Job that
asks for a GPU lands on the virtual node, a GPU is rented (which, where, at what price), the
Job's output and exit, the bill, and then nothing left running. The demo runs exactly that with
the real parts (a real control plane, the real node agent in this process, the real RunPod
provider over HTTP); only the cloud is simulated (vk_trio/sim/runpod, with the seeds' images
scripted), so no GPU is rented and nothing is paid. ``--provider runpod,vastai`` runs the node
in front of both simulated clouds (demo_clouds.py): the Job's GPU is the cheaper of the two.

The control plane comes from a source checkout: tests/controlplane builds it once from source
(minutes, then cached) and starts it in a temporary directory. ``--kubeconfig`` uses an existing
cluster instead; then only the demo's Job and node are created there, and deleted afterwards.
Everything the demo starts is stopped and the temporary directory removed, on success, failure
and Ctrl-C alike (cleanup runs shielded from the cancellation that Ctrl-C causes).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vk_trio.errors import ConfigError, VkError

if TYPE_CHECKING:
    import trio

    from vk_trio.demo_job import Console

SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the checkout holding vk_trio/ and tests/
DEFAULT_TIMEOUT = 300.0
EXIT_INTERRUPTED = 130


DEMO_CLOUDS = ("runpod", "vastai", "runpod,vastai", "vastai,runpod")


@dataclass(frozen=True, kw_only=True)
class Options:
    kubeconfig: Path | None
    timeout: float
    namespace: str
    clouds: tuple[str, ...] = ("runpod",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="run on this cluster instead of starting a local control plane",
    )
    parser.add_argument(
        "--namespace", default="default", help="namespace of the demo Job (default: default)"
    )
    parser.add_argument(
        "--provider",
        default="runpod",
        help="the simulated cloud(s) behind the node: runpod (default), vastai, or both "
        "(runpod,vastai: the cheaper offer wins)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        default=str(DEFAULT_TIMEOUT),
        help=f"give up on the Job after this long (default: {DEFAULT_TIMEOUT:g})",
    )


def main(args: argparse.Namespace) -> int:
    options = _options(args)
    if options.kubeconfig is None:
        controlplane_package()  # a clear ConfigError now, not a traceback later

    import trio

    from vk_trio.logs import setup_logging

    setup_logging("warning")  # the agent's warnings only; the demo prints the story
    return trio.run(_main, options)


def _options(args: argparse.Namespace) -> Options:
    try:
        timeout = float(args.timeout)
    except ValueError:
        raise ConfigError(f"--timeout: {args.timeout!r} is not a number of seconds") from None
    if not 0 < timeout < 86_400:
        raise ConfigError(f"--timeout: {args.timeout!r} must be between 0 and 86400 seconds")
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
    if kubeconfig is not None and not kubeconfig.is_file():
        raise ConfigError(f"--kubeconfig: {kubeconfig} is not a file")
    provider = args.provider.replace(" ", "").lower()
    if provider not in DEMO_CLOUDS:
        raise ConfigError(f"--provider: {args.provider!r} is not runpod, vastai or runpod,vastai")
    return Options(
        kubeconfig=kubeconfig,
        timeout=timeout,
        namespace=args.namespace,
        clouds=tuple(provider.split(",")),
    )


def controlplane_package() -> str:
    """Import tests.controlplane from the source checkout (it is not in the .pyz or a wheel)."""
    if not (SOURCE_ROOT / "tests" / "controlplane" / "launcher.py").is_file():
        raise ConfigError(
            "demo: the local control plane (tests/controlplane) comes with a source checkout "
            "of vk-trio, and this installation has none; run `make demo` in a clone, or pass "
            "--kubeconfig FILE to run the demo on an existing cluster"
        )
    if str(SOURCE_ROOT) not in sys.path:
        sys.path.insert(0, str(SOURCE_ROOT))
    try:
        importlib.import_module("tests.controlplane.launcher")
    except ImportError as exc:
        raise ConfigError(
            f"demo: cannot import tests.controlplane from {SOURCE_ROOT} ({exc}); install the "
            "development dependencies (`make demo` does) or pass --kubeconfig FILE"
        ) from None
    return "tests.controlplane"


# --- the run, under signal handling ------------------------------------------------------------


async def _main(options: Options) -> int:
    import trio

    from vk_trio.demo_job import Console, run_demo_job

    console = Console()
    interrupted = trio.Event()
    code = 1
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            work = trio.CancelScope()

            async def on_signal() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    console.say(f"{name}: stopping and cleaning up (this takes a few seconds)")
                    interrupted.set()
                    work.cancel()

            nursery.start_soon(on_signal)
            with work:
                state = Path(tempfile.mkdtemp(prefix="vk-trio-demo-"))
                try:
                    async with _cluster(options, state, console) as kubeconfig:
                        code = await run_demo_job(
                            kubeconfig,
                            console=console,
                            namespace=options.namespace,
                            give_up_after=options.timeout,
                            clouds=options.clouds,
                        )
                except* VkError as group:
                    for error in _leaves(group):
                        console.say(f"error: {error}")
                    code = 1
                finally:
                    shutil.rmtree(state, ignore_errors=True)
                    console.say(f"removed {state}")
            nursery.cancel_scope.cancel()
    if interrupted.is_set():
        return EXIT_INTERRUPTED
    if code == 0:
        console.say("done: nothing is left running")
    return code


def _leaves(group: BaseExceptionGroup[VkError]) -> list[BaseException]:
    return [
        leaf
        for error in group.exceptions
        for leaf in (_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    ]


@asynccontextmanager
async def _cluster(options: Options, state: Path, console: Console) -> AsyncIterator[Path]:
    """The kubeconfig of the cluster to use: the given one, or a local control plane that is
    started here and stopped when the block ends, however it ends."""
    import trio

    if options.kubeconfig is not None:
        console.say(f"using the cluster of {options.kubeconfig}")
        yield options.kubeconfig
        return
    build = importlib.import_module("tests.controlplane.build")
    if not build.cached_binary_path().exists() and not build.os.environ.get(build.ENV_PREBUILT):
        console.say(
            "first run: building the control plane (etcd, kube-apiserver, controller-manager, "
            "scheduler) from source with Go; about 7 minutes on two cores, cached afterwards"
        )
    console.say(f"starting a local Kubernetes control plane in {state}")
    try:
        answer = await _controlplane("up", state)
        kubeconfig = Path(answer.splitlines()[-1].strip())
        console.say(f"control plane up (kubeconfig {kubeconfig})")
        yield kubeconfig
    finally:
        with trio.CancelScope(shield=True):
            await _controlplane("down", state)
            console.say("control plane stopped")


async def _controlplane(command: str, state: Path) -> str:
    """``python -m tests.controlplane up|down --state-dir STATE`` in the source checkout.

    A child process rather than a thread, so that Ctrl-C can stop a start (or a first build)
    half-way: it gets SIGINT, which makes the launcher stop what it started, and ``down`` runs
    afterwards anyway. Raises ConfigError with the tail of its output if it fails.
    """
    import trio

    async def interrupt(process: trio.Process) -> None:
        process.send_signal(signal.SIGINT)
        with trio.move_on_after(30):
            await process.wait()
            return
        process.kill()

    argv = [sys.executable, "-m", "tests.controlplane", command, "--state-dir", str(state)]
    done = await trio.run_process(
        argv,
        cwd=str(SOURCE_ROOT),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        deliver_cancel=interrupt,
    )
    if done.returncode != 0:
        output = (done.stderr or done.stdout or b"").decode(errors="replace")
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise ConfigError(
            f"demo: the local control plane did not {command} (exit {done.returncode}); "
            f"pass --kubeconfig FILE to use an existing cluster. Its output ends with:\n{tail}"
        )
    return bytes(done.stdout).decode()
