"""An ``InstanceSpec`` as a Vast.ai create request, and our instances recognised again.

**The command.** We rent in ``runtype: "args"`` mode, which keeps the image's ENTRYPOINT unless
``onstart`` names another executable (the CLI sends ``--entrypoint`` as ``onstart``), and passes
``args`` to it. A Kubernetes ``command`` therefore becomes ``onstart = command[0]`` and
``args = command[1:] + args``; without a command, ``args`` go to the image's own ENTRYPOINT,
exactly as a kubelet would run the container.

**Exit codes.** Vast.ai reports that a container ``exited``, never with which code, and does not
restart it. So the program runs under a small POSIX-shell wrapper whatever the restart policy,
with a nonce drawn for this attempt (exit_marker.py). A Job's (Never/OnFailure)::

    /bin/sh -c '"$@"; code=$?; echo "vk-trio-exit nonce=N code=$code at=$(date +%s)";
                while :; do sleep 3600; done' vk-trio PROGRAM ARGS...

prints one marker line with the real exit code, then idles so the container (and its logs) stay
up until vk-trio reads the marker and deletes the instance. Under ``restartPolicy: Always`` the
wrapper restarts the program itself, on the same instance, as a kubelet restarts a container:
after each run it prints the marker with the run's number (``run=N``), waits 10 s, doubled after
each run up to 300 s and back to 10 s after a run of 10 minutes (the kubelet's CrashLoopBackOff),
and runs the program again. The image must therefore have a POSIX ``/bin/sh`` at that path (every
distribution and busybox image has; ``FROM scratch`` and distroless images do not, and fail with
an OCI "executable file not found" error, which vk-trio reports). The program is the pod's
``command`` + ``args``; a pod that sets no command runs what its image would: the image's
ENTRYPOINT followed by the pod's ``args``, or by the image's CMD when there are none. Those words
are in the image, not the pod, so the provider reads them from the image's registry config
(providers/images.py) and passes them here as ``program``; since ``onstart`` replaces the
ENTRYPOINT on Vast.ai, the whole program runs under the wrapper, even behind an entrypoint
script that would ignore its arguments. (An ``Always`` pod whose image config cannot be read runs
unwrapped, as written.) ``date +%s`` is not POSIX; where it is missing the marker has no time,
vk-trio uses the time it read the marker, and the backoff is never reset.

**Ownership.** Every instance carries the label ``vk-trio/<node>/<pod uid>.<attempt>`` (``/job``
appended for specs that want an exit code): that is how a restarted vk-trio finds what it owns,
and how two nodes on one account keep their hands off each other's instances.

Limits checked before anything is paid (vast-docs create_instance): label 256 characters,
``onstart`` + ``args`` 4096, each env entry 256 and 32768 in total, 64 ports; env names starting
with ``-`` are refused because the env object also carries docker flags (``-p``, ``-v``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from vk_trio.decoding import ascii_digits
from vk_trio.providers import exit_marker
from vk_trio.providers.base import InstanceSpec, InvalidSpec

LABEL_PREFIX = "vk-trio/"
JOB_SUFFIX = "/job"
WRAPPER_NAME = "vk-trio"
MAX_LABEL = 256
MAX_COMMAND = 4096
MAX_ENV_ENTRY = 256
MAX_ENV_TOTAL = 32768
MAX_PORTS = 64
MAX_IMAGE = 1024
MAX_ATTEMPT_DIGITS = 9
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True, kw_only=True)
class Owner:
    """What a label says about an instance."""

    node_tag: str
    pod_uid: str
    attempt: int
    job: bool

    @property
    def key(self) -> str:
        return f"{self.pod_uid}.{self.attempt}"


def node_tag(node_name: str) -> str:
    """The node's part of a label: its name, or a shortened name plus a hash when very long."""
    if len(node_name) <= 160:
        return node_name
    digest = hashlib.sha256(node_name.encode()).hexdigest()[:16]
    return f"{node_name[:120]}~{digest}"


def label(spec: InstanceSpec) -> str:
    suffix = JOB_SUFFIX if spec.wants_exit_code else ""
    return f"{LABEL_PREFIX}{node_tag(spec.node_name)}/{spec.key}{suffix}"


def owner(text: str | None) -> Owner | None:
    """The owner a label names, or ``None`` when it is not one of vk-trio's labels."""
    if not text or not text.startswith(LABEL_PREFIX):
        return None
    job = text.endswith(JOB_SUFFIX)
    body = text[len(LABEL_PREFIX) : len(text) - len(JOB_SUFFIX) if job else None]
    tag, _, key = body.rpartition("/")
    uid, _, attempt = key.rpartition(".")
    # ASCII digits within int32 (the attempt is a restartCount): ".²" is no label of ours
    if not tag or not uid or not ascii_digits(attempt) or len(attempt) > MAX_ATTEMPT_DIGITS:
        return None
    return Owner(node_tag=tag, pod_uid=uid, attempt=int(attempt), job=job)


def wrapper(nonce: str, restart_policy: str) -> str:
    """The wrapper script for ``restart_policy`` (see the module docstring)."""
    if restart_policy != "Always":
        return f'"$@"\ncode=$?\n{exit_marker.echo(nonce)}\nwhile :; do sleep 3600; done\n'
    return (
        "n=0\n"
        "d=10\n"
        "while :; do\n"
        "t=$(date +%s)\n"
        '"$@"\n'
        "code=$?\n"
        "e=$(date +%s)\n"
        f"{exit_marker.echo(nonce, run='$n', at='$e')}\n"
        "n=$((n + 1))\n"
        "d=$((${e:-0} - ${t:-0} >= 600 ? 10 : d))\n"
        "sleep $d\n"
        "d=$((d >= 150 ? 300 : d * 2))\n"
        "done\n"
    )


def argv(
    spec: InstanceSpec, program: tuple[str, ...] = (), *, nonce: str | None = None
) -> tuple[str | None, list[str]]:
    """``onstart`` (the entrypoint override, or ``None``) and ``args``. ``program``: what the
    image runs (ENTRYPOINT, then args or CMD), for a pod that sets no command; ``nonce``: run
    it under the wrapper (None: as written)."""
    command = list(spec.command)
    if nonce is not None:
        words = [*command, *spec.args] if command else list(program)
        if words:
            return "/bin/sh", ["-c", wrapper(nonce, spec.restart_policy), WRAPPER_NAME, *words]
    if command:
        return command[0], command[1:] + list(spec.args)
    return None, list(spec.args)


def nonce_of(args: list[str] | None) -> str | None:
    """The nonce of our wrapper when an instance's ``image_args`` are it (a marker will come)."""
    if args is None or len(args) < 2 or not isinstance(args[1], str):
        return None
    return exit_marker.nonce_in(args[1])


def wrapped(args: list[str] | None) -> bool:
    """Whether an instance's ``image_args`` are our wrapper (so markers will come)."""
    return nonce_of(args) is not None


def env(spec: InstanceSpec) -> dict[str, str]:
    merged = dict(spec.env)
    for port in spec.ports:
        merged[f"-p {port.number}:{port.number}"] = "1"
    return merged


def image_login(spec: InstanceSpec) -> str | None:
    auth = spec.registry_auth
    if auth is None:
        return None
    return f"-u {auth.username} -p {auth.password} {auth.server}"


def check(spec: InstanceSpec, program: tuple[str, ...] = (), *, nonce: str | None = None) -> None:
    """Raise ``InvalidSpec`` for what Vast.ai would refuse or could not run."""
    if not spec.image.strip():
        raise InvalidSpec("the container has no image")
    if len(spec.image) > MAX_IMAGE:
        raise InvalidSpec(f"the image reference is longer than {MAX_IMAGE} characters")
    if not _SAFE_KEY.match(spec.key):
        raise InvalidSpec(f"pod uid {spec.pod_uid!r} has characters a Vast.ai label cannot carry")
    if len(label(spec)) > MAX_LABEL:
        raise InvalidSpec(f"the instance label would be longer than {MAX_LABEL} characters")
    onstart, args = argv(spec, program, nonce=nonce or "0" * 16)
    if len(onstart or "") + sum(len(a) for a in args) > MAX_COMMAND:
        raise InvalidSpec(f"command and args are longer than Vast.ai's {MAX_COMMAND} characters")
    for name in spec.env:
        if not name or name.startswith("-") or "=" in name:
            raise InvalidSpec(f"env name {name!r} is not allowed on Vast.ai")
    sizes = [len(k) + 1 + len(v) for k, v in env(spec).items()]
    if any(size > MAX_ENV_ENTRY for size in sizes):
        raise InvalidSpec(f"an env entry is longer than Vast.ai's {MAX_ENV_ENTRY} characters")
    if sum(sizes) > MAX_ENV_TOTAL:
        raise InvalidSpec(f"the env is longer than Vast.ai's {MAX_ENV_TOTAL} characters in total")
    if len(spec.ports) > MAX_PORTS:
        raise InvalidSpec(f"Vast.ai opens at most {MAX_PORTS} ports per instance")
    if spec.registry_auth is not None:
        auth = spec.registry_auth
        if any(re.search(r"\s", v) or not v for v in (auth.server, auth.username, auth.password)):
            raise InvalidSpec("registry credentials with whitespace cannot be passed to Vast.ai")


def create_body(
    spec: InstanceSpec,
    *,
    disk_gb: float,
    program: tuple[str, ...] = (),
    nonce: str | None = None,
) -> dict[str, Any]:
    """The body of ``PUT /api/v0/asks/{offer_id}/`` (``program``, ``nonce``: as for ``argv``)."""
    onstart, args = argv(spec, program, nonce=nonce)
    body: dict[str, Any] = {
        "client_id": "me",
        "image": spec.image,
        "disk": disk_gb,
        "label": label(spec),
        "runtype": "args",
        "env": env(spec),
        "cancel_unavail": True,  # an error rather than a stopped, storage-billed instance
        "target_state": "running",
    }
    if onstart is not None:
        body["onstart"] = onstart
    if args:
        body["args"] = args
    login = image_login(spec)
    if login is not None:
        body["image_login"] = login
    return body
