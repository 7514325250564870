"""Simulated Vast.ai instances: the state machine and the JSON the API shows for it.

State is computed from the clock rather than advanced by background tasks, so a test on trio's
virtual clock sees exactly the same history as one in real time, and nothing runs between
requests. From its (re)start an instance is ``actual_status`` null, then ``created``, then
``loading``, then ``running``; its command then runs (``shell.Timeline``) and the container
``exited`` when the command ends, unless a wrapping shell keeps it alive. Faults freeze it in
``created`` (OCI error), in ``loading``, or turn it ``offline``/``unknown``. A stopped instance
(``intended_status`` stopped) shows ``stopped`` everywhere and holds no GPU.

``ports`` appears only while running, one entry per ``-p H:C`` key of ``env``, each with a host
port from the machine's direct range, as a string (the document says integers; clients measured
strings).

GPU billing periods are kept here because only the state machine knows when an instance ran.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from vk_trio.sim.usage import busy
from vk_trio.sim.vastai import shell
from vk_trio.sim.vastai.offers import SimOffer
from vk_trio.sim.vastai.workloads import OCI_ERROR, Workload

_PORT_KEY = re.compile(r"^-p\s+(\d+):(\d+)(?:/(tcp|udp))?$")


@dataclass(frozen=True, kw_only=True)
class Status:
    actual: str | None
    message: str | None = None
    running_since: float | None = None  # epoch, while running
    ended_at: float | None = None  # epoch the process exited or the host was lost


@dataclass(kw_only=True)
class SimInstance:
    id: int
    owner: str  # the API key that rented it
    offer: SimOffer
    image: str
    label: str | None = None
    runtype: str = "ssh"
    onstart: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    disk: float = 8.0
    bid: bool = False
    created_at: float
    workload: Workload
    intended: str = "running"
    origin: float = 0.0  # epoch of the current (re)start
    host_fault: tuple[str, str, float] | None = None  # status, status_msg, since (epoch)
    gpu_periods: list[tuple[float, float]] = field(default_factory=list)  # closed periods
    destroyed_at: float | None = None
    notes: list[str] = field(default_factory=list)  # what the simulator could not do
    _timeline: shell.Timeline | None = None

    # --- the command ---------------------------------------------------------------------------

    @property
    def argv(self) -> list[str]:
        """The container's process, as Docker starts it: the image entrypoint unless ``onstart``
        overrides it (``args`` runtype: the CLI sends ``--entrypoint`` as ``onstart``, which
        also drops the image CMD), then ``args``, or the image CMD when there are none."""
        if self.runtype == "args" and self.onstart:
            return [self.onstart, *self.args]
        return [*self.workload.entrypoint, *(self.args or self.workload.cmd)]

    def timeline(self, running_since: float) -> shell.Timeline:
        if self._timeline is None:
            command = shell.Command(
                run_seconds=self.workload.run_seconds,
                lines=self.workload.logs,
                exit_code=self.workload.exit_code,
            )
            argv = self.argv
            if shell.is_shell_script(argv):
                try:
                    self._timeline = shell.run_script(argv, command, started_epoch=running_since)
                except shell.Unsupported as exc:
                    self.notes.append(f"shell: {exc}")
                    self._timeline = shell.Timeline(exit_at=0.0, exit_code=2)
            else:
                self._timeline = shell.plain(command)
        return self._timeline

    # --- state ---------------------------------------------------------------------------------

    @property
    def ready_at(self) -> float:
        """Epoch at which the current (re)start is running with its ports mapped (benchmarks
        measure from here to the pod's Ready)."""
        return self.origin + self.workload.running_after

    def status(self, now: float) -> Status:
        if self.intended == "stopped":
            return Status(actual="stopped", message="stopped")
        since = now - self.origin
        wl = self.workload
        if self.host_fault is not None and now >= self.host_fault[2]:
            status, message, at = self.host_fault
            return Status(actual=status, message=message, ended_at=at)
        if since < wl.created_after:
            return Status(actual=None)
        if wl.fault == "oci_error":
            exe = self.argv[0] if self.argv else "/bin/sh"
            return Status(actual="created", message=OCI_ERROR.format(exe=exe))
        if since < wl.loading_after:
            return Status(actual="created")
        if since < wl.running_after:
            return Status(actual="loading")
        running_since = self.origin + wl.running_after
        if wl.fault in ("offline", "unknown") and now >= running_since + wl.fault_after:
            at = running_since + wl.fault_after
            return Status(actual=wl.fault, message=f"host {wl.fault}", ended_at=at)
        timeline = self.timeline(running_since)
        if timeline.exit_at is not None and now >= running_since + timeline.exit_at:
            return Status(
                actual="exited", message="exited", ended_at=running_since + timeline.exit_at
            )
        run_msg = f"success, running {self.image.replace(':', '_')}/{self.runtype}"
        return Status(actual="running", message=run_msg, running_since=running_since)

    def gpu_seconds(self, now: float) -> float:
        """Seconds the GPU was billed up to ``now`` (it bills while ``running``)."""
        closed = sum(end - start for start, end in self.gpu_periods)
        return closed + self._open_period(now)

    def close_period(self, now: float) -> None:
        """Stop or destroy at ``now``: the current running period (if any) ends here."""
        seconds = self._open_period(now)
        if seconds > 0:
            self.gpu_periods.append((now - seconds, now))

    def _open_period(self, now: float) -> float:
        if self.intended == "stopped" or self.destroyed_at is not None:
            return 0.0
        start = self.origin + self.workload.running_after
        if math.isinf(start) or now <= start:
            return 0.0
        end = now
        status = self.status(now)
        if status.ended_at is not None:
            end = min(end, status.ended_at)
        return max(0.0, end - start)

    def restart(self, now: float) -> None:
        self.intended = "running"
        self.origin = now
        self._timeline = None

    def stop(self, now: float) -> None:
        self.close_period(now)
        self.intended = "stopped"

    # --- logs ----------------------------------------------------------------------------------

    def log_lines(self, now: float) -> list[str]:
        status = self.status(now)
        start = self.origin + self.workload.running_after
        if math.isinf(start) or now < start:
            return []
        end = min(now, status.ended_at) if status.ended_at is not None else now
        return [text for at, text in self.timeline(start).lines if start + at <= end]

    # --- JSON ----------------------------------------------------------------------------------

    def ports(self) -> dict[str, list[dict[str, str]]]:
        mapped: dict[str, list[dict[str, str]]] = {}
        for key in self.env:
            match = _PORT_KEY.match(key.strip())
            if match is None or len(mapped) >= self.offer.direct_port_count:
                continue
            inner, proto = match.group(2), match.group(3) or "tcp"
            host_port = self.offer.direct_port_start + len(mapped)
            mapped[f"{inner}/{proto}"] = [{"HostIp": "0.0.0.0", "HostPort": str(host_port)}]
        return mapped

    def as_json(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        offer = self.offer
        state = "stopped" if self.intended == "stopped" else "running"
        gpu_cost = offer.min_bid if self.bid else offer.dph_base
        disk_hour = offer.storage_dph(self.disk)
        cost = {
            "gpuCostPerHour": gpu_cost,
            "diskHour": disk_hour,
            "totalHour": gpu_cost + disk_hour,
            "discountTotalHour": 0,
            "discountedTotalPerHour": gpu_cost + disk_hour,
        }
        row: dict[str, Any] = {
            "id": self.id,
            "machine_id": offer.machine_id,
            "host_id": offer.host_id,
            "bundle_id": offer.id * 10,
            "label": self.label,
            "actual_status": status.actual,
            "intended_status": state,
            "cur_state": state,
            "next_state": state,
            "status_msg": status.message,
            "image_uuid": self.image,
            "image_args": list(self.args),
            "image_runtype": self.runtype,
            "extra_env": [[k, v] for k, v in self.env.items()],
            "public_ipaddr": offer.public_ipaddr,
            "local_ipaddrs": "10.2.0.5 172.17.0.1 \n",
            "ssh_host": f"ssh{offer.machine_id % 9 + 1}.vast.ai",
            "ssh_port": 10_000 + self.id % 50_000,
            "ssh_idx": str(offer.machine_id % 9 + 1),
            "direct_port_count": offer.direct_port_count,
            "direct_port_start": offer.direct_port_start,
            "direct_port_end": offer.direct_port_start + offer.direct_port_count,
            "template_id": None,
            "template_hash_id": None,
            "gpu_name": offer.gpu_name,
            "num_gpus": offer.num_gpus,
            "gpu_ram": offer.gpu_ram,
            "gpu_totalram": offer.gpu_ram * offer.num_gpus,
            "gpu_arch": "nvidia",
            "gpu_util": None,
            "cpu_cores_effective": offer.cpu_cores_effective,
            "cpu_ram": offer.cpu_ram,
            "disk_space": self.disk,
            "dph_base": offer.dph_base,
            "dph_total": gpu_cost + disk_hour,
            "storage_cost": offer.storage_cost,
            "storage_total_cost": disk_hour,
            "min_bid": offer.min_bid,
            "is_bid": self.bid,
            "start_date": self.created_at,
            "end_date": offer.end_date,
            "duration": now - self.created_at,
            "uptime_mins": None,
            "geolocation": offer.geolocation,
            "reliability2": offer.reliability2,
            "verification": offer.verification,
            "static_ip": offer.static_ip,
            "external": offer.external,
            "search": cost,
            "instance": cost,
        }
        if offer.cpu_cores is not None:
            row["cpu_cores"] = offer.cpu_cores
        if self.onstart is not None:
            row["onstart"] = self.onstart
        if status.actual == "running" and status.running_since is not None:
            row["ports"] = self.ports()
            row["uptime_mins"] = (now - status.running_since) / 60.0
            load = busy(now - status.running_since)
            memory_limit = offer.cpu_ram * offer.cpu_cores_effective / (offer.cpu_cores or 32)
            row["cpu_util"] = load.cpu
            row["mem_limit"] = memory_limit
            row["mem_usage"] = memory_limit * load.memory
            row["gpu_util"] = load.gpu
        return row
