"""What a simulated instance does: scripted per image, because a simulator cannot run images.

A ``Workload`` says how long each Vast.ai state lasts (``actual_status`` null while the contract
is provisioned, ``created``, ``loading`` while the image is pulled, then ``running``), what the
container's command prints and how it ends. Faults reproduce what clients met in the field:
``oci_error`` (stuck in ``created`` with an "OCI runtime create failed" ``status_msg``, dstack's
fatal case), ``stuck_loading`` (hours of ``loading``, dstack#2809), ``offline``/``unknown`` (the
host stops answering after ``fault_after`` seconds of running).

The image's own command is ``entrypoint`` followed by ``cmd`` (what runs when the client
overrides nothing; ``args`` replace ``cmd``, as with Docker); when the client overrides it with a
shell (``onstart: "/bin/sh"``, ``args: ["-c", SCRIPT, ...]``), the shell module runs the script
around the workload. The simulator's registry stand-in (sim/registry.py) serves ``entrypoint``
and ``cmd`` as the image's config, so a client can read them as a container runtime would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FAULTS = frozenset({"", "oci_error", "stuck_loading", "offline", "unknown"})

OCI_ERROR = (
    "Error response from daemon: failed to create task for container: failed to create shim "
    "task: OCI runtime create failed: runc create failed: unable to start container process: "
    'exec: "{exe}": executable file not found in $PATH: unknown'
)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """Seconds in each state, then the command's behaviour. ``run_seconds=None``: forever."""

    provision_seconds: float = 1.0  # actual_status null
    create_seconds: float = 2.0  # "created"
    load_seconds: float = 5.0  # "loading" (image pull)
    run_seconds: float | None = None
    exit_code: int = 0
    logs: tuple[str, ...] = ()
    fault: str = ""
    fault_after: float = 0.0  # seconds of running before "offline"/"unknown"
    entrypoint: tuple[str, ...] = ("/usr/local/bin/app",)
    cmd: tuple[str, ...] = ()  # the image CMD (its registry config says so too)
    registry_username: str | None = None  # a private image: its registry wants this user

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {sorted(FAULTS)}, not {self.fault!r}")

    @property
    def created_after(self) -> float:
        return self.provision_seconds

    @property
    def loading_after(self) -> float:
        return self.provision_seconds + self.create_seconds

    @property
    def running_after(self) -> float:
        """Seconds from (re)start to ``running``; infinite when stuck."""
        if self.fault in ("stuck_loading", "oci_error"):
            return math.inf
        return self.provision_seconds + self.create_seconds + self.load_seconds
