"""``RunPodSim``: the simulated RunPod v2 API, its Python control API for tests, and its server.

In process under trio::

    sim = RunPodSim(api_key="k")
    port = await nursery.start(sim.serve)          # http://127.0.0.1:{port}/v2/...
    sim.set_stock("NVIDIA GeForce RTX 4090", "EU-RO-1", "SECURE", 0)
    sim.script_workload("trainer:1", Workload(lines=("epoch 1",), duration=30, exit_code=3))
    sim.add_fault(Fault(operation="createPod", status=500, apply_first=True))
    sim.latency = Latency(REALISTIC_LATENCY)        # createPod takes 1-3 s, listPods 0.3 s
    assert sim.cost(pod_id) == pytest.approx(...)

The scripted images' registry configs (ENTRYPOINT/CMD) are served at ``sim.registry_url``.
Standalone: ``python -m vk_trio.sim.runpod --port 8089``. Time comes from an injectable clock
(trio's by default, so ``autojump_clock`` tests run hours of pod lifecycle in milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import trio

from vk_trio.httpserver import Request, Response, serve
from vk_trio.latency import Latency
from vk_trio.sim.registry import PREFIX as REGISTRY_PREFIX
from vk_trio.sim.registry import ImageRegistry
from vk_trio.sim.runpod.catalog import Catalog
from vk_trio.sim.runpod.faults import Fault, Faults, RateLimiter
from vk_trio.sim.runpod.ledger import Ledger
from vk_trio.sim.runpod.model import LogEntry, SimClock, SimPod, Timings
from vk_trio.sim.runpod.routes import Api, RecordedRequest
from vk_trio.sim.runpod.state import Account, Registry, Template
from vk_trio.sim.runpod.validation import Validator
from vk_trio.sim.runpod.workloads import Workload

# Response times in seconds (issue 10's acceptance run: create 1-3 s, list 0.3 s), for
# ``Latency(REALISTIC_LATENCY)``. Operations not named answer in 0.2-0.4 s.
REALISTIC_LATENCY: dict[str, tuple[float, float]] = {
    "createPod": (1.0, 3.0),
    "listPods": (0.3, 0.3),
    "deletePod": (0.3, 0.6),
    "*": (0.2, 0.4),
}


class RunPodSim:
    """A RunPod account behind a loopback v2 API; every knob is a method or attribute."""

    def __init__(
        self,
        *,
        api_key: str = "sim-key",
        catalog: Catalog | None = None,
        timings: Timings | None = None,
        clock: Callable[[], float] | None = None,
        wall_origin: datetime | None = None,
        rate_limiter: RateLimiter | None = None,
        seed: int = 0,
        latency: Latency | None = None,
    ) -> None:
        self.api_keys = {api_key}
        self.clock = SimClock(clock, wall_origin=wall_origin)
        self.catalog = catalog if catalog is not None else Catalog.default()
        self.account = Account(
            clock=self.clock, catalog=self.catalog, timings=timings or Timings(), seed=seed
        )
        self.faults = Faults(limiter=rate_limiter or RateLimiter())
        self.latency = latency or Latency(seed=seed)  # per operation, after the rate limit
        self.validator = Validator()
        self.requests: list[RecordedRequest] = []
        self.api = Api(self)
        self.images = ImageRegistry(self.account.scripted)
        self.port: int | None = None
        self.open_log_streams = 0  # SSE log streams a client holds open right now

    # --- serving -------------------------------------------------------------------------------

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled; ``await nursery.start(sim.serve)`` returns the bound port."""
        async with trio.open_nursery() as nursery:
            self.port = await nursery.start(
                lambda **kw: serve(self._handle, host=host, port=port, **kw)
            )
            task_status.started(self.port)

    async def _handle(self, request: Request) -> Response:
        if request.path.startswith(REGISTRY_PREFIX + "/"):
            return await self.images(request)
        return await self.api(request)

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not serving yet")
        return f"http://127.0.0.1:{self.port}"

    @property
    def registry_url(self) -> str:
        """A pull-through mirror of every image registry for the scripted images (registry.py)."""
        return self.url + REGISTRY_PREFIX

    # --- the control API ---------------------------------------------------------------------

    @property
    def timings(self) -> Timings:
        return self.account.timings

    @timings.setter
    def timings(self, value: Timings) -> None:
        self.account.timings = value  # applies to pods created from now on

    def set_stock(self, gpu_id: str, datacenter_id: str, cloud: str, count: int) -> None:
        self.catalog.set_stock(gpu_id, datacenter_id, cloud, count)

    def clear_stock(self) -> None:
        self.catalog.clear_stock()

    def script_workload(self, image: str, workload: Workload) -> None:
        """What containers of ``image`` (exact, or any tag of the repository) do."""
        self.account.workloads[image] = workload

    def add_template(self, template: Template) -> None:
        self.account.templates[template.id] = template

    def forbid(self, gpu_id: str, datacenter_id: str | None = None) -> None:
        """Creates of this GPU type (in this DC, or anywhere) answer 403."""
        self.account.forbidden.add((gpu_id, datacenter_id))

    def set_payment_required(self, value: bool = True) -> None:
        self.account.payment_required = value

    def add_fault(self, fault: Fault) -> Fault:
        return self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_rate_limits(
        self, *, minute: int | None, hour: int | None = None, day: int | None = None
    ) -> None:
        """Per-window budgets; ``minute=None`` makes the caller rate-limit exempt (no headers)."""
        self.faults.limiter = (
            None if minute is None else RateLimiter.per(minute=minute, hour=hour, day=day)
        )

    def create_pod(self, body: dict[str, Any]) -> SimPod:
        """Rent a pod behind the API's back (as a human in the console would); body as in v2."""
        errors = self.validator.body_errors("createPod", body)
        if errors:
            raise ValueError(f"not a valid createPod body: {errors}")
        return self.account.create(body, self.clock.now())

    def pods(self, *, include_terminated: bool = False) -> list[SimPod]:
        now = self.clock.now()
        live = self.account.live(now)
        return live + list(self.account.gone.values()) if include_terminated else live

    def pod(self, pod_id: str) -> SimPod:
        pod = self.account.pods.get(pod_id) or self.account.gone[pod_id]
        pod.advance(self.clock.now())
        return pod

    def logs(self, pod_id: str) -> list[LogEntry]:
        return list(self.pod(pod_id).logs)

    @property
    def registries(self) -> dict[str, Registry]:
        return self.account.registries

    @property
    def ledger(self) -> Ledger:
        return self.account.ledger

    def cost(self, pod_id: str | None = None) -> float:
        """USD billed so far, for one pod or the whole account."""
        return self.ledger.cost(pod_id)

    def billing(self) -> list[str]:
        """Ids of the pods that are being charged right now."""
        return self.ledger.billing()

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]
