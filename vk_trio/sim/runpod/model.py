"""One simulated pod: its lifecycle timeline, its container runs, its logs and its v2 JSON.

A pod is a small discrete-event simulation on the simulator's clock. Nothing runs in the
background: every read first ``advance``s the pod to "now", firing the transitions that fell due
(PROVISIONING → STARTING → RUNNING, log lines, container exits and RunPod's restarts). That keeps
the simulator deterministic and lets tests drive it on trio's virtual clock.

Behaviour follows the measurements in the research notes, not the spec's wishes: ``runtime`` and
port mappings appear only ``ports_delay`` seconds after RUNNING (and with ``running_early`` the
status says RUNNING right from the create); a container whose process exits is restarted unless
the pod is stopped; HTTP ports never get a public mapping, TCP ports do.
"""

from __future__ import annotations

import enum
import heapq
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from vk_trio.sim.runpod.ledger import RUNNING_DISK_PER_GB_HOUR
from vk_trio.sim.runpod.workloads import Workload, plan_run
from vk_trio.sim.usage import busy

_MAX_EVENTS_PER_ADVANCE = 200_000


class Phase(enum.StrEnum):
    PROVISIONING = "PROVISIONING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    EXITED = "EXITED"
    ERROR = "ERROR"
    TERMINATED = "TERMINATED"


ACTIONS = {
    Phase.PROVISIONING: ["stop", "terminate"],
    Phase.STARTING: ["stop", "terminate"],
    Phase.RUNNING: ["stop", "restart", "terminate"],
    Phase.EXITED: ["start", "terminate"],
    Phase.ERROR: ["start", "terminate"],
    Phase.TERMINATED: [],
}


@dataclass(frozen=True, kw_only=True)
class Timings:
    """How long the lifecycle takes; the defaults are short but not zero."""

    provisioning: float = 2.0
    starting: float = 3.0  # plus the workload's boot_seconds
    ports_delay: float = 1.0  # RUNNING without runtime/ports for this long (measured quirk)
    tcp_delay: float = 0.0  # then TCP ports listed unmapped (public null) this long (#8)
    running_early: bool = False  # status RUNNING from the create on (measured quirk)
    restart_delay: float = 1.0  # RunPod restarts an exited container after this long


class SimClock:
    """Seconds on a monotonic clock (trio's by default, so virtual time works) and wall time."""

    def __init__(
        self, now: Callable[[], float] | None = None, *, wall_origin: datetime | None = None
    ) -> None:
        self._now = now or trio.current_time
        self._origin: tuple[float, datetime] | None = None
        self._wall_origin = wall_origin

    def now(self) -> float:
        t = self._now()
        if self._origin is None:
            self._origin = (t, self._wall_origin or datetime.now(UTC).replace(microsecond=0))
        return t

    def wall(self, t: float) -> datetime:
        if self._origin is None:
            self.now()
        assert self._origin is not None
        return self._origin[1] + timedelta(seconds=t - self._origin[0])

    def stamp(self, t: float) -> str:
        """RFC 3339 with milliseconds, UTC (``2026-06-01T12:02:03.250Z``)."""
        return self.wall(t).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def to_seconds(self, when: datetime) -> float:
        if self._origin is None:
            self.now()
        assert self._origin is not None
        return self._origin[0] + (when - self._origin[1]).total_seconds()


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    seq: int
    t: float
    source: str  # "container" | "system"
    line: str


@dataclass(kw_only=True)
class SimPod:
    id: str
    name: str
    image: str
    args: str
    env: dict[str, str]
    ports: list[str]
    disk: int
    registry: str | None
    cloud: str
    datacenter: str
    gpu_id: str
    gpu_count: int
    price_per_gpu: float
    mounts: dict[str, Any]
    workload: Workload
    timings: Timings
    created: float
    pull_ok: bool = True
    locked: bool = False
    cpu: dict[str, Any] | None = None  # CPU pods: {id, vcpuCount, memory}; no gpu then
    cuda_version: str | None = "12.8"
    phase: Phase = Phase.PROVISIONING
    run_start: float | None = None
    runtime_at: float | None = None
    restarts: int = 0
    public_ip: str = ""
    port_map: dict[int, int] = field(default_factory=dict)
    logs: list[LogEntry] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    _queue: list[tuple[float, int, int, str, Any]] = field(default_factory=list)
    _seq: int = 0
    _gen: int = 0

    # --- the timeline -----------------------------------------------------------------

    def boot(self, t: float) -> None:
        """Start the lifecycle of a just-created pod."""
        self.log(t, "system", f"Pod created: {self.gpu_count}x {self.gpu_id} in {self.datacenter}")
        self._at(t + self.timings.provisioning, "starting")
        started = self.timings.provisioning + self.timings.starting + self.workload.boot_seconds
        self._at(t + started, "running")

    def advance(self, now: float) -> None:
        """Fire every transition due at or before ``now``."""
        for _ in range(_MAX_EVENTS_PER_ADVANCE):
            if not self._queue or self._queue[0][0] > now:
                return
            t, _, gen, kind, payload = heapq.heappop(self._queue)
            if gen == self._gen:
                self._fire(t, kind, payload)

    def next_event(self) -> float | None:
        live = [entry[0] for entry in self._queue if entry[2] == self._gen]
        return min(live, default=None)

    def _at(self, t: float, kind: str, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, self._gen, kind, payload))

    def _fire(self, t: float, kind: str, payload: Any) -> None:
        if kind == "starting":
            self.phase = Phase.STARTING
            self.log(t, "system", f"Pulling image {self.image}")
        elif kind == "running":
            if self.workload.pull_error or not self.pull_ok:
                self.phase = Phase.ERROR
                why = self.workload.pull_error or "unauthorized: authentication required"
                self.log(t, "system", f"Failed to pull image {self.image}: {why}")
                return
            self.phase = Phase.RUNNING
            self.runtime_at = t + self.timings.ports_delay
            self._map_ports()
            self._begin_run(t)
        elif kind == "line":
            self.log(t, "container", payload)
        elif kind == "exit":
            self.log(t, "system", f"Container exited with code {payload}; restarting")
            self._at(t + max(self.timings.restart_delay, 0.05), "restart")
        elif kind == "restart":
            self.restarts += 1
            self._begin_run(t)

    def _begin_run(self, t: float) -> None:
        self.run_start = t
        self.log(t, "system", "Container started")
        environ = {**self.env, "RUNPOD_POD_ID": self.id, "RUNPOD_DC_ID": self.datacenter}
        plan = plan_run(self.workload, self.args, environ)
        for offset, text in plan.lines:
            self._at(t + offset, "line", text)
        if plan.exit_at is not None:
            self._at(t + plan.exit_at, "exit", plan.exit_code)

    def _map_ports(self) -> None:
        self.public_ip = f"203.0.113.{self.rng.randint(2, 254)}"
        self.port_map = {}
        for spec in self.ports:
            number, _, proto = spec.partition("/")
            if proto == "tcp" and number.isdigit():
                self.port_map[int(number)] = self.rng.randint(10000, 60000)

    def log(self, t: float, source: str, line: str) -> None:
        seq = (self.logs[-1].seq + 1) if self.logs else 1
        self.logs.append(LogEntry(seq=seq, t=t, source=source, line=line))

    # --- actions (the state layer checks they are allowed) ------------------------------

    def stop(self, t: float) -> None:
        self._gen += 1
        self.phase = Phase.EXITED
        self.run_start = self.runtime_at = None
        self.port_map = {}
        self.log(t, "system", "Pod stopped")

    def start(self, t: float) -> None:
        self._gen += 1
        self.phase = Phase.STARTING
        self.log(t, "system", "Pod starting")
        self._at(t + self.timings.starting + self.workload.boot_seconds, "running")

    def restart(self, t: float) -> None:
        self._gen += 1
        self.log(t, "system", "Container restart requested")
        self.restarts += 1
        self._begin_run(t)

    def reset(self, t: float) -> None:
        """A PATCH that changes the container: it is recreated (and its ports remapped)."""
        if self.phase in (Phase.EXITED, Phase.TERMINATED):
            return
        self._gen += 1
        self.phase = Phase.STARTING
        self.run_start = self.runtime_at = None
        self.port_map = {}
        self.log(t, "system", "Pod reset: recreating container")
        self._at(t + self.timings.starting + self.workload.boot_seconds, "running")

    def terminate(self, t: float) -> None:
        self._gen += 1
        self.phase = Phase.TERMINATED
        self.run_start = self.runtime_at = None
        self.log(t, "system", "Pod terminated")

    # --- what the API shows -----------------------------------------------------------

    @property
    def ready_at(self) -> float | None:
        """When the current run became ready as the API shows it: ``runtime`` present and every
        TCP port mapped (None: not yet running). Benchmarks measure from here to pod Ready."""
        if self.runtime_at is None:
            return None
        tcp = any(spec.partition("/")[2] == "tcp" for spec in self.ports)
        return self.runtime_at + (self.timings.tcp_delay if tcp else 0.0)

    def status(self) -> Phase:
        early = self.timings.running_early and self.phase in (Phase.PROVISIONING, Phase.STARTING)
        return Phase.RUNNING if early else self.phase

    def holds_gpus(self) -> bool:
        return self.phase in (Phase.PROVISIONING, Phase.STARTING, Phase.RUNNING, Phase.ERROR)

    def runtime_json(self, now: float) -> dict[str, Any] | None:
        if self.phase != Phase.RUNNING or self.runtime_at is None or now < self.runtime_at:
            return None
        assert self.run_start is not None
        ports: list[dict[str, Any]] = []
        for spec in self.ports:
            number, _, proto = spec.partition("/")
            if not number.isdigit():
                continue
            private = int(number)
            if proto == "tcp":
                mapped = now >= self.runtime_at + self.timings.tcp_delay
                public = self.port_map.get(private) if mapped else None
                ports.append(
                    {"private": private, "public": public, "type": "tcp", "ip": self.public_ip}
                )
            else:
                ports.append(
                    {"private": private, "public": None, "type": "http", "ip": "100.65.0.2"}
                )
        load = busy(now - self.run_start)
        return {
            "uptime": int(now - self.run_start),
            "gpus": [
                {"util": round(load.gpu * 100), "memoryUtil": round(load.gpu_memory * 100)}
                for _ in range(self.gpu_count)
            ],
            "cpu": {"util": round(load.cpu * 100)},
            "memory": {"util": round(load.memory * 100)},
            "ports": ports,
        }

    def disk_gb(self) -> int:
        """Container disk plus the pod's own (persistent) volume, in GB."""
        return self.disk + int((self.mounts.get("persistent") or {}).get("size", 0))

    def rate_per_hour(self) -> float:
        """What the pod bills per hour while it runs: its GPUs, and its disk (RunPod charges
        container and volume disk of a running pod $0.10 per GB-month)."""
        gpus = self.price_per_gpu * (self.gpu_count or 1)
        return gpus + self.disk_gb() * RUNNING_DISK_PER_GB_HOUR

    def to_json(self, now: float, clock: SimClock) -> dict[str, Any]:
        """The v2 ``Pod`` object."""
        runtime = self.runtime_json(now)
        proxy_user = f"{self.id}-{zlib.crc32(self.id.encode()):08x}"
        direct = None
        mapped = self.runtime_at is not None and now >= self.runtime_at + self.timings.tcp_delay
        if runtime is not None and mapped and 22 in self.port_map:
            port = self.port_map[22]
            direct = {
                "host": self.public_ip,
                "port": port,
                "username": "root",
                "command": f"ssh root@{self.public_ip} -p {port}",
            }
        status = self.status()
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "status": status.value,
            "actions": ACTIONS[status],
            "image": self.image,
            "args": self.args,
            "disk": self.disk,
            "mounts": self.mounts,
            "ports": self.ports,
            "env": self.env,
            "registry": self.registry,
            "gpu": {"id": self.gpu_id, "count": self.gpu_count},
            "cloud": self.cloud,
            "dataCenterId": self.datacenter,
            "cudaVersion": self.cuda_version,
            "ssh": {
                "proxy": {
                    "host": "ssh.runpod.io",
                    "port": 22,
                    "username": proxy_user,
                    "command": f"ssh {proxy_user}@ssh.runpod.io",
                },
                "direct": direct,
            },
            "template": None,
            # The spec says 0.0 once EXITED; a pod stopped through v2 kept showing its rate
            # (measured), so the simulator keeps it too.
            "cost": round(self.rate_per_hour(), 4),
            "locked": self.locked,
            "globalNetworking": {"enabled": False},
            "runtime": runtime,
            "createdAt": clock.stamp(self.created).replace(".000Z", "Z"),
            "startedAt": None if self.run_start is None else clock.stamp(self.run_start),
        }
        if self.cpu is not None:
            del body["gpu"]
            body["cpu"] = self.cpu
        return body
