"""What a RunPod pod runs, and whether the exit-code wrapper can run it (mapping.py wraps it).

Why it needs the image: RunPod restarts a container whose process exits and reports no exit
code, so a Job's program runs inside a wrapper that prints its exit code. The program is the
pod's ``command``/``args``; a Job that sets neither (seed 000's example) runs its image's CMD,
read from the image's registry config like a container runtime reads it, then wrapped. If that
config cannot be read (no such image, a private image without an imagePullSecret) the pod fails
naming the image, rather than running unwrapped and billing forever; an unreachable registry is
retried (the reader's ``ProviderUnavailable``).

RunPod cannot replace an image's ENTRYPOINT: it runs it with the wrapper as its arguments. So
an ``Always`` pod is wrapped (for its restarts and last exit codes) only where wrapping cannot
change what runs, and a Job whose image has an ENTRYPOINT and no CMD is refused.
"""

from __future__ import annotations

from vk_trio.logs import get_logger
from vk_trio.providers.base import CloudError, InstanceSpec, InvalidSpec
from vk_trio.providers.images import ImageConfigReader

_log = get_logger("vk_trio.providers.runpod")


async def program(images: ImageConfigReader, spec: InstanceSpec) -> tuple[tuple[str, ...], bool]:
    """(the image's CMD where the pod sets no command, whether to wrap the program).

    A Job is always wrapped: its exit code ends it. An ``Always`` pod is wrapped only where
    that cannot change what runs: it sets ``command``, or its image has no ENTRYPOINT
    (read from the registry); otherwise it runs as written (mapping.py).
    """
    if spec.wants_exit_code:
        return await default_command(images, spec), True
    if spec.command:
        return (), True
    if not spec.image:
        return (), False  # a template's start command: not ours to wrap
    try:
        config = await images.read(spec.image, spec.registry_auth)
    except CloudError as exc:
        _log.info("%s: running %s unwrapped (%s)", spec.pod_name, spec.image, exc)
        return (), False
    if config.entrypoint:
        return (), False
    return (() if spec.args else config.cmd), bool(spec.args or config.cmd)


async def default_command(images: ImageConfigReader, spec: InstanceSpec) -> tuple[str, ...]:
    """The image's CMD, for a Job that sets no command (the wrapper must know what to run).

    RunPod runs the image's ENTRYPOINT itself, with the wrapper as its arguments; an
    ENTRYPOINT without a CMD leaves the wrapper nothing to run, so such a Job is refused.
    """
    if spec.command or spec.args:
        return ()
    config = await images.read(spec.image, spec.registry_auth)
    if config.cmd:
        return config.cmd
    if config.entrypoint:
        raise InvalidSpec(
            f"image {spec.image} has ENTRYPOINT {list(config.entrypoint)} and no CMD; "
            "RunPod cannot replace an ENTRYPOINT, so vk-trio cannot wrap it to read this "
            "Job's exit code: set the container's command"
        )
    raise InvalidSpec(f"image {spec.image} has no default command: set the container's command")
