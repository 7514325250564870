"""A Vast.ai instance row as an ``Instance``: state, readiness, failure message, annotations.

Vast.ai's ``actual_status`` is ``null`` while the contract is provisioned, then ``created``,
``loading`` (image pull, container start), ``running``; ``exited``, ``offline``, ``unknown``,
``frozen`` and ``stopped`` never come back to ``running`` on their own (the API description's
"poll trap"; SkyPilot fails fast on them), and a ``created`` or ``loading`` instance whose
``status_msg`` carries an error (``OCI runtime create failed``, ``pull access denied``, ...) is
stuck for good (dstack; Vast.ai's own self-test patterns). Those are FAILED with the status
message, so the node agent deletes the instance and fails the pod over. An instance that loads
for longer than ``loading_timeout`` is FAILED too (dstack#2809: "can take hours").

A Job wrapped by translate.py stays ``running`` after its command ended; its marker gives the
state EXITED and the real exit code. An unwrapped Job that ``exited`` is EXITED without a code.
An ``Always`` pod's wrapper restarts the program in place; the markers of its runs give the
instance's ``restarts`` and ``last_exit``. A container that ran and then ``exited`` (or whose
host was lost) keeps the time it started: it ran, and "never started" (ContainerCannotRun, 128)
would be a lie.

Ready means running with every ``-p`` port of the request mapped in ``ports`` (which Vast.ai only
shows once running); the pod IP is ``public_ipaddr``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from vk_trio import decoding
from vk_trio.providers.base import Exit, GpuUsage, Instance, InstanceState, Usage
from vk_trio.providers.exit_marker import ExitMarker
from vk_trio.providers.vastai.translate import Owner

ANNOTATION_PREFIX = "vastai.vk-trio.io/"
ERROR_MESSAGE = re.compile(
    r"error|failed|failure|exception|traceback|oci runtime|permission denied|pull access denied"
    r"|manifest unknown|unauthorized|exec format",
    re.I,
)
LOST = frozenset({"exited", "offline", "unknown", "frozen", "stopped"})
MIB = 1024 * 1024
_PORT_KEY = re.compile(r"^-p\s+(\d+):(\d+)(?:/(tcp|udp))?$")


# Bounds of what a row may say (vk_trio/decoding.py's rules, as msgspec constraints): numbers
# finite and in range (a "NaN" start date or a 1e300 duration would break the clock arithmetic),
# text of bounded length (a status message ends up in the pod's status and Events).
Id = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Count = Annotated[int, msgspec.Meta(ge=0, le=1024)]
Epoch = Annotated[float, msgspec.Meta(ge=0, le=1e11)]  # seconds: until the year 5138
Seconds = Annotated[float, msgspec.Meta(ge=0, le=1e10)]
Price = Annotated[float, msgspec.Meta(ge=0, le=1e6)]
Short = Annotated[str, msgspec.Meta(max_length=1024)]
Long = Annotated[str, msgspec.Meta(max_length=8192)]


class PortBinding(msgspec.Struct, kw_only=True):
    HostIp: Short | None = None
    HostPort: Short | Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None


class VastInstance(msgspec.Struct, kw_only=True):
    """The fields of an instance row vk-trio reads (the rest is ignored)."""

    id: Id
    label: Short | None = None
    actual_status: Short | None = None
    intended_status: Short | None = None
    status_msg: Long | None = None
    image_uuid: Short | None = None
    image_args: list[Long] | None = None
    extra_env: list[list[Long]] | None = None
    public_ipaddr: Short | None = None
    ports: dict[Short, list[PortBinding] | None] | None = None
    machine_id: Id | None = None
    gpu_name: Short | None = None
    num_gpus: Count | None = None
    dph_total: Price | None = None
    geolocation: Short | None = None
    start_date: Epoch | None = None
    duration: Seconds | None = None
    uptime_mins: Seconds | None = None
    cpu_util: float | None = None  # fraction of the instance's cores busy
    cpu_cores_effective: float | None = None
    mem_usage: float | None = None  # MB (MiB: what the host's cgroup reports)
    gpu_util: float | None = None  # fraction, one figure for all the instance's GPUs
    gpu_ram: float | None = None  # MB per GPU


def decode_row(row: dict[str, Any]) -> VastInstance:
    """Raises ``InvalidInput`` when a field has a shape or a value we cannot read."""
    return decoding.convert(
        row, VastInstance, what=f"Vast.ai instance {row.get('id')!r:.40}", strict=False
    )


def requested_ports(row: VastInstance) -> list[str]:
    """``"8000/tcp"`` for every ``-p`` key the instance was created with."""
    found = []
    for pair in row.extra_env or []:
        match = _PORT_KEY.match(pair[0].strip()) if pair else None
        if match:
            found.append(f"{match.group(2)}/{match.group(3) or 'tcp'}")
    return found


def mapped_ports(row: VastInstance) -> dict[str, str]:
    """``"8000/tcp"`` → host port, for the ports Vast.ai has mapped."""
    mapped: dict[str, str] = {}
    for key, bindings in (row.ports or {}).items():
        for binding in bindings or []:
            if binding.HostPort not in (None, ""):
                mapped[key] = str(binding.HostPort)
                break
    return mapped


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def instance_from(
    row: VastInstance,
    owner: Owner,
    *,
    node_name: str,
    marker: ExitMarker | None,
    wrapped: bool,
    loading_timeout: float,
    clock: Callable[[], float],
    first_seen_running: float | None = None,
    restarts: int = 0,
    last_exit: Exit | None = None,
) -> Instance:
    """The ``Instance`` a row shows (``marker``: the Job wrapper's, when read; ``restarts``,
    ``last_exit``: an Always wrapper's runs that ended)."""
    status = row.actual_status
    message = row.status_msg or ""
    server_now = (
        row.start_date + row.duration
        if row.start_date is not None and row.duration is not None
        else clock()
    )
    started: float | None = first_seen_running
    if status == "running":
        if row.uptime_mins is not None:
            started = server_now - row.uptime_mins * 60.0
        elif started is None:
            started = server_now
    elif status == "exited" and started is None:
        started = row.start_date  # it ran (only a started container exits); when, roughly
    ready = False
    exit_code: int | None = None
    finished: float | None = None
    if marker is not None:
        state = InstanceState.EXITED
        exit_code = marker.code
        finished = marker.at if marker.at is not None else server_now
        if started is not None:
            finished = max(finished, started)
        message = f"exit code {marker.code}"
    elif status is None:
        state, message = InstanceState.PROVISIONING, message or "contract being provisioned"
    elif status in ("created", "loading") and ERROR_MESSAGE.search(message):
        state = InstanceState.FAILED
    elif status in ("created", "loading", "scheduling", "rebooting", "restarting"):
        state = InstanceState.PROVISIONING if status == "created" else InstanceState.STARTING
        age = server_now - row.start_date if row.start_date is not None else 0.0
        if age > loading_timeout:
            state = InstanceState.FAILED
            message = f"still {status} after {age / 60:.0f} minutes: {message}".rstrip(": ")
    elif status == "running" and row.intended_status != "stopped":
        state = InstanceState.RUNNING
        mapped = mapped_ports(row)
        ready = all(port in mapped for port in requested_ports(row))
    elif status == "exited" and owner.job and not wrapped:
        state = InstanceState.EXITED
        finished = server_now
        message = "the container exited; Vast.ai does not report exit codes of unwrapped commands"
    elif status == "running":
        state, message = InstanceState.FAILED, "Vast.ai is stopping the instance"
    elif status in LOST:
        state = InstanceState.FAILED
        message = f"instance {status} on Vast.ai" + (f": {message}" if message else "")
    else:
        state = InstanceState.PROVISIONING
    return Instance(
        instance_id=str(row.id),
        node_name=node_name,
        pod_uid=owner.pod_uid,
        attempt=owner.attempt,
        state=state,
        ready=ready,
        exit_code=exit_code,
        message=message,
        public_ip=(row.public_ipaddr or "").strip(),
        created_at=_when(row.start_date),
        started_at=_when(started),
        finished_at=_when(finished),
        gpu_type=row.gpu_name or "",
        gpu_count=row.num_gpus or 0,
        price_per_hour=row.dph_total or 0.0,
        location=row.geolocation or "",
        image=row.image_uuid or "",
        annotations=pod_annotations(row),
        restarts=restarts,
        last_exit=last_exit,
        usage=usage_of(row, at=server_now) if state is InstanceState.RUNNING else None,
    )


def _finite(value: float | None, *, high: float = math.inf) -> float | None:
    if value is None or not math.isfinite(value) or not 0 <= value <= high:
        return None
    return float(value)


def usage_of(row: VastInstance, *, at: float) -> Usage | None:
    """What Vast.ai reports an instance uses: ``cpu_util`` (a fraction of its
    ``cpu_cores_effective``) as cores, ``mem_usage`` as bytes, ``gpu_util`` for each GPU (Vast.ai
    gives one figure for them all) with ``gpu_ram`` as its memory. GPU memory in use is not
    reported, so it is left out; so is anything null or out of range."""
    util, cores = _finite(row.cpu_util, high=1.0), _finite(row.cpu_cores_effective)
    memory = _finite(row.mem_usage)
    gpu_util, gpu_ram = _finite(row.gpu_util, high=1.0), _finite(row.gpu_ram)
    gpus = tuple(
        GpuUsage(
            index=index,
            model=row.gpu_name or "",
            duty_cycle=gpu_util * 100 if gpu_util is not None else None,
            memory_total_bytes=int(gpu_ram * MIB) if gpu_ram is not None else None,
        )
        for index in range(row.num_gpus or 0)
    )
    cpu = util * cores if util is not None and cores is not None else None
    if cpu is None and memory is None and gpu_util is None:
        return None
    return Usage(
        at=datetime.fromtimestamp(at, UTC),
        cpu_cores=cpu,
        memory_bytes=int(memory * MIB) if memory is not None else None,
        gpus=gpus,
    )


def pod_annotations(row: VastInstance) -> dict[str, str]:
    notes = {ANNOTATION_PREFIX + "instance-id": str(row.id)}
    if row.machine_id is not None:
        notes[ANNOTATION_PREFIX + "machine-id"] = str(row.machine_id)
    if row.gpu_name:
        notes[ANNOTATION_PREFIX + "gpu"] = f"{row.num_gpus or 1}x {row.gpu_name}"
    if row.geolocation:
        notes[ANNOTATION_PREFIX + "geolocation"] = row.geolocation
    if row.dph_total is not None:
        notes[ANNOTATION_PREFIX + "price-per-hour"] = f"{row.dph_total:.4f}"
    ip = (row.public_ipaddr or "").strip()
    for key, host_port in sorted(mapped_ports(row).items()):
        notes[ANNOTATION_PREFIX + "port-" + key.replace("/", "-")] = f"{ip}:{host_port}"
    return notes
