"""The simulated Vast.ai account: marketplace, instances, bill, limits, and the control API.

``VastSim`` is the whole simulator. Tests build one, change it through plain Python (stock,
scripted workloads, faults, the clock) and read it back (instances, ledger, the journal of every
HTTP exchange, the violations of the OpenAPI document); ``serve`` puts the HTTP API of
``routes.py`` on a loopback port, in-process (``port = await nursery.start(sim.serve)``) or
standalone (``python -m vk_trio.sim.vastai --port N``). The same port serves the scripted images'
registry configs at ``sim.registry_url`` (sim/registry.py), so a client can read the default
command of an image the way it would from the image's real registry.

Time is an injected clock of epoch seconds. The default follows trio's clock, so under
``autojump_clock`` boots, rate-limit intervals and log delays cost no real time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from vk_trio.httpserver import Request, Response, serve
from vk_trio.latency import Latency
from vk_trio.sim.registry import PREFIX as REGISTRY_PREFIX
from vk_trio.sim.registry import ImageRegistry, find_script
from vk_trio.sim.vastai.instances import SimInstance
from vk_trio.sim.vastai.ledger import Ledger
from vk_trio.sim.vastai.offers import Marketplace, SimOffer
from vk_trio.sim.vastai.ratelimit import Limiter, RateLimits
from vk_trio.sim.vastai.validation import Validator
from vk_trio.sim.vastai.workloads import Workload

DEFAULT_EPOCH = 1_800_000_000.0
DEFAULT_API_KEY = "sim-key"
# Response times in seconds (issue 10's acceptance run; search about 1 s, create about 2 s), for
# ``Latency(REALISTIC_LATENCY)``. Operations not named answer in 0.2-0.4 s.
REALISTIC_LATENCY: dict[str, tuple[float, float]] = {
    "searchOffers": (0.8, 1.2),
    "createInstance": (1.5, 2.5),
    "showInstances": (0.3, 0.5),
    "destroyInstance": (0.4, 0.8),
    "*": (0.2, 0.4),
}


def trio_clock(epoch: float = DEFAULT_EPOCH) -> Callable[[], float]:
    """Epoch seconds that follow trio's clock (virtual under ``autojump_clock``)."""
    return lambda: epoch + trio.current_time()


@dataclass(frozen=True, kw_only=True)
class Exchange:
    """One HTTP request and the answer the simulator gave (credentials left out)."""

    operation: str  # an operationId, "resultUrl", or "" when no route matched
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    auth: str  # "bearer", "query", "both" or ""
    status: int
    content_type: str
    response: bytes
    user_agent: str = ""
    scripted: bool = False  # a fault the test scripted (``fail_next``), not the simulator's own
    received_at: float = 0.0  # epoch seconds on the simulator's clock (benchmarks)
    answered_at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class LogResult:
    ready_at: float
    text: str


@dataclass(kw_only=True)
class _Fault:
    status: int
    body: Any = None
    text: str | None = None
    after: bool = False


@dataclass(kw_only=True)
class SimState:
    instances: dict[int, SimInstance] = field(default_factory=dict)  # not destroyed
    log_results: dict[str, LogResult] = field(default_factory=dict)
    hidden_until: dict[int, float] = field(default_factory=dict)  # create-then-read lag


class VastSim:
    """A Vast.ai account on loopback. Every keyword has a default that works for tests.

    Args:
        api_keys: keys accepted (``Authorization: Bearer K`` or ``?api_key=K``). The first owns
            what ``rent_foreign`` rents unless told otherwise.
        offers: the marketplace (``offers.default_offers()`` when omitted).
        clock: epoch seconds now (``trio_clock()``).
        rate_limits: per-endpoint intervals (``RateLimits().scaled(0.01)`` to shrink them).
        read_lag_seconds: how long ``GET /instances/{id}/`` says ``{"instances": null}`` after
            a create.
        logs_delay_seconds: how long a ``result_url`` answers 404 before the logs appear.
        default_workload: what images without a script do.
        latency: each operation's response time (``REALISTIC_LATENCY``; default instant),
            taken after the rate limit admitted the call.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        offers: list[SimOffer] | None = None,
        clock: Callable[[], float] | None = None,
        rate_limits: RateLimits | None = None,
        read_lag_seconds: float = 2.0,
        logs_delay_seconds: float = 0.5,
        default_workload: Workload | None = None,
        latency: Latency | None = None,
    ) -> None:
        self.api_keys = list(api_keys)
        self.marketplace = Marketplace(offers)
        self.clock = clock or trio_clock()
        self.limiter = Limiter(rate_limits or RateLimits())
        self.latency = latency or Latency()
        self.read_lag_seconds = read_lag_seconds
        self.logs_delay_seconds = logs_delay_seconds
        self.default_workload = default_workload or Workload()
        self.ledger = Ledger(self.clock)
        self.validator = Validator()
        self.state = SimState()
        self.journal: list[Exchange] = []
        self.violations: list[str] = []  # answers of ours the document does not allow
        self.rejected: list[str] = []  # requests refused because the document does not allow them
        self.ignored_filters: list[str] = []  # search fields the simulator does not know
        self.url = ""
        self._scripts: dict[str, Workload] = {}
        self.images = ImageRegistry(self.scripted)
        self._faults: dict[str, list[_Fault]] = {}
        self._contract_errors = 0
        self._ids = itertools.count(20_000_001)

    # --- control API: the world -----------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def script(self, image: str, workload: Workload) -> None:
        """Instances of ``image`` (exact, or any tag of the repository) rented from now on
        behave as ``workload`` says; the registry stand-in serves its entrypoint and cmd."""
        self._scripts[image] = workload

    def scripted(self, image: str) -> Workload | None:
        return find_script(self._scripts, image)

    def workload_for(self, image: str) -> Workload:
        return self.scripted(image) or self.default_workload

    def set_rate_limits(self, limits: RateLimits) -> None:
        self.limiter.limits = limits

    def instances(self, *, owner: str | None = None) -> list[SimInstance]:
        """Instances that exist (not destroyed), oldest first."""
        found = sorted(self.state.instances.values(), key=lambda i: i.id)
        return [i for i in found if owner is None or i.owner == owner]

    def instance(self, instance_id: int) -> SimInstance | None:
        return self.state.instances.get(instance_id)

    def host_fault(self, instance_id: int, status: str, message: str = "") -> None:
        """From now on the instance's host is ``status`` ("offline", "unknown", "exited")."""
        self.state.instances[instance_id].host_fault = (status, message or status, self.now())

    # --- control API: faults of the API ---------------------------------------------------------

    def fail_next(
        self,
        operation: str,
        *,
        status: int,
        body: Any = None,
        text: str | None = None,
        times: int = 1,
        after: bool = False,
    ) -> None:
        """The next ``times`` authenticated calls of ``operation`` (an operationId, or ``"*"`` for
        any) answer this instead, before rate limits and validation. With ``after``, the call is
        carried out first and only its answer is lost (a gateway timeout after the fact)."""
        self._faults.setdefault(operation, []).extend(
            _Fault(status=status, body=body, text=text, after=after) for _ in range(times)
        )

    def error_with_contract_next(self, times: int = 1) -> None:
        """The next creates rent a *stopped* instance and still answer an error carrying its
        ``new_contract`` (dstack met this with low bids)."""
        self._contract_errors += times

    def take_fault(self, operation: str, *, after: bool = False) -> Response | None:
        queue = self._faults.get(operation) or self._faults.get("*")
        if not queue or queue[0].after != after:
            return None
        fault = queue.pop(0)
        if fault.text is not None:
            return Response.text(fault.text, status=fault.status)
        return Response.json(fault.body if fault.body is not None else {}, status=fault.status)

    def take_contract_error(self) -> bool:
        if self._contract_errors <= 0:
            return False
        self._contract_errors -= 1
        return True

    # --- the account -------------------------------------------------------------------------

    def rent(
        self,
        offer: SimOffer,
        *,
        owner: str,
        image: str,
        stopped: bool = False,
        **fields: Any,
    ) -> SimInstance:
        """Create an instance on ``offer`` (stock already taken unless ``stopped``)."""
        now = self.now()
        instance = SimInstance(
            id=next(self._ids),
            owner=owner,
            offer=offer,
            image=image,
            created_at=now,
            origin=now,
            workload=self.workload_for(image),
            intended="stopped" if stopped else "running",
            **fields,
        )
        self.state.instances[instance.id] = instance
        self.state.hidden_until[instance.id] = now + self.read_lag_seconds
        self.ledger.open(instance)
        return instance

    def rent_foreign(
        self, *, label: str | None = None, owner: str | None = None, image: str = "other/app:1"
    ) -> int:
        """Rent an instance behind the client's back (another tool on the same account)."""
        for offer in sorted(self.marketplace.all(), key=lambda o: o.dph_base):
            taken = self.marketplace.take(offer.id)
            if taken is not None:
                instance = self.rent(
                    taken, owner=owner or self.api_keys[0], image=image, label=label
                )
                return instance.id
        raise RuntimeError("the marketplace is sold out")

    def destroy(self, instance: SimInstance) -> None:
        now = self.now()
        instance.close_period(now)
        instance.destroyed_at = now
        del self.state.instances[instance.id]
        if instance.intended == "running":
            self.marketplace.give_back(instance.offer.id)

    # --- HTTP ------------------------------------------------------------------------------------

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the API until cancelled; ``await nursery.start(sim.serve)`` returns the port."""
        from vk_trio.sim.vastai.routes import Api  # routes imports this module

        api = Api(self)

        async def handle(request: Request) -> Response:
            if request.path.startswith(REGISTRY_PREFIX + "/"):
                return await self.images(request)
            return await api(request)

        async with trio.open_nursery() as nursery:
            bound: int = await nursery.start(partial(serve, handle, host=host, port=port))
            self.url = f"http://{host}:{bound}"
            task_status.started(bound)

    @property
    def registry_url(self) -> str:
        """A pull-through mirror of every image registry, for the scripted images."""
        if not self.url:
            raise RuntimeError("the simulator is not serving yet")
        return self.url + REGISTRY_PREFIX
