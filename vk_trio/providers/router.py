"""Several clouds behind one node: the cheapest feasible offer anywhere, failover, one budget.

``Router`` speaks the Provider contract (providers/base.py), so the pod side does not know it
fronts several clouds. What it adds:

* **Offers** from every cloud the pod may use (``vk-trio.io/providers``, health.py), asked
  concurrently, each cloud with the pod's wishes in its own words (neutral.py), merged cheapest
  first. Every price is what the whole instance costs per hour with the disk the cloud bills,
  so prices compare; equal prices go to the cloud named first in ``--provider``, then to the
  earlier model of ``vk-trio.io/gpu-types``. A cloud that fails is skipped for a cool-down
  and the others answer; only when none can is the pod told why.
* **Create** goes to the offer's cloud. placement.py walks the merged offers, so a vanished offer
  moves on to the next one on any cloud, and a cloud that fails or refuses payment is skipped
  for the rest of the walk. **No double renting**: a create that failed with an unknown outcome
  (timeout, 5xx) may have rented, so before the same attempt goes anywhere else its cloud is
  asked for an instance of the attempt's key (one list); one found is adopted. If the cloud
  cannot be asked, the pod waits (``OutcomeUnknown``) and asks again on its next try.
* **Budget** (budget.py): a create reserves its price first; a pod whose cheapest offer does not
  fit waits with ``BudgetExceeded``.
* **List** asks every cloud once per call (concurrently) and tags each instance with its cloud
  (``Instance.provider``, and the pod annotation ``vk-trio.io/cloud``). A cloud that fails to
  answer keeps its last answer (its pods are not lost for an outage), except on the very first
  list, which is the recovery pass after a start: every cloud must answer it, so that no pod is
  judged from half the picture. Delete and logs are routed by the instance id's cloud.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import AsyncIterator, Sequence

import trio

from vk_trio import faults
from vk_trio.logs import get_logger
from vk_trio.providers import neutral
from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    InstanceState,
    InvalidAnnotation,
    InvalidSpec,
    LogLine,
    LogOptions,
    LogsUnavailable,
    NoCapacity,
    Offer,
    OutcomeUnknown,
    Provider,
    ProviderUnavailable,
    Requirements,
)
from vk_trio.providers.budget import Budget
from vk_trio.providers.health import Health
from vk_trio.providers.placement import most_hopeful, why_no_offers

CLOUD_ANNOTATION = "vk-trio.io/cloud"
# A pod over budget asks again every BUDGET_RETRY seconds; the cheapest price its needs found in
# the clouds is remembered this long, so that a crowd of waiting pods does not search them
# again and again while nothing has ended.
CHEAPEST_MEMORY = 60.0
MAX_REMEMBERED = 1024
_log = get_logger("vk_trio.providers.router")
_faults = faults.FaultLog()


def _as_cloud_error(name: str, exc: Exception, what: str) -> CloudError:
    """A cloud's failure as a CloudError: itself, or an unexpected one reported once (with its
    traceback) and treated as that cloud being unavailable, so the other clouds go on."""
    if isinstance(exc, CloudError):
        return exc
    if faults.only(exc, CloudError):
        first = faults.first(exc)
        assert isinstance(first, CloudError)
        return first
    _faults.report(f"{what}:{name}", exc, log=_log, what=f"{what} of {name}")
    return ProviderUnavailable(f"{name}: unexpected failure: {faults.describe(exc)}")


class Router:
    """The clouds of one node, in ``--provider`` order, as one Provider."""

    def __init__(self, clouds: Sequence[Provider], *, max_node_price: float | None = None) -> None:
        if not clouds:
            raise ValueError("a router needs at least one cloud")
        self.clouds = {cloud.name: cloud for cloud in clouds}
        self.names = tuple(self.clouds)
        self.name = ",".join(self.names)
        self.health = Health(self.names)
        self.budget = Budget(max_node_price)
        self._snapshots: dict[str, builtins.list[Instance]] = {}
        self._where: dict[str, tuple[str, float]] = {}  # instance id → (cloud, trio time noted)
        # key → (cloud, reservation, trio time): creates whose outcome nobody could tell yet
        self._unsettled: dict[str, tuple[str, int, float]] = {}
        self._cheapest: dict[tuple[object, ...], tuple[float, float, str]] = {}

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            for cloud in self.clouds.values():
                await cloud.aclose()

    # --- check and offers ------------------------------------------------------------------------

    def check(self, spec: InstanceSpec) -> None:
        """The pod's neutral annotations, and each allowed cloud's own check: InvalidSpec only
        when no cloud could ever run it (a cloud that cannot is skipped by placement)."""
        wishes = neutral.parse(spec.need.annotations, node_clouds=self.names)
        refusals: list[InvalidSpec] = []
        for name in wishes.clouds:
            try:
                self.clouds[name].check(spec)
            except InvalidSpec as exc:
                refusals.append(exc)
        if len(refusals) == len(wishes.clouds):
            if len(refusals) == 1:
                raise refusals[0]
            said = zip(wishes.clouds, refusals, strict=True)
            raise InvalidSpec(
                "no cloud of this node can run the pod: "
                + "; ".join(f"{name}: {exc.message}" for name, exc in said)
            )

    async def offers(self, need: Requirements) -> builtins.list[Offer]:
        wishes = neutral.parse(need.annotations, node_clouds=self.names)
        signature = _signature(need)
        seen = self._cheapest.get(signature)
        fresh = seen is not None and trio.current_time() - seen[1] < CHEAPEST_MEMORY
        if seen is not None and fresh and not self.budget.fits(seen[0]):
            raise self.budget.exceeded(seen[0], seen[2])
        asked = [name for name in wishes.clouds if self.health.usable(name)]
        skipped: dict[str, CloudError] = {
            name: self.health.why_not(name) for name in wishes.clouds if name not in asked
        }
        answers: dict[str, builtins.list[Offer]] = {}
        bad_input: list[InvalidAnnotation] = []

        async def ask(name: str) -> None:
            narrowed = neutral.narrowed(need, wishes, name)
            if narrowed is None:
                answers[name] = []
                return
            try:
                answers[name] = await self.clouds[name].offers(narrowed)
            except InvalidAnnotation as exc:  # the pod's to fix: said once, after the nursery
                bad_input.append(exc)
                return
            except Exception as exc:  # never Cancelled (faults.py): one cloud's problem
                error = _as_cloud_error(name, exc, "offers")
                self.health.failed(name, error)
                skipped[name] = error
                return
            self.health.succeeded(name)

        async with trio.open_nursery() as nursery:
            for name in asked:
                nursery.start_soon(ask, name)
        if bad_input:
            raise bad_input[0]
        if not answers:
            said = {name: skipped[name] for name in self.names if name in skipped}
            raise most_hopeful(said or {self.name: NoCapacity("no cloud may serve this pod")})
        found = [
            (offer.price_per_hour, self.names.index(name), wishes.rank(offer), index, offer)
            for name, offers in answers.items()
            for index, offer in enumerate(offers)
            if offer.provider == name and neutral.allows(offer, wishes)
        ]
        found.sort(key=lambda item: item[:4])
        merged = [_with_model(item[-1]) for item in found]
        if merged:
            self._remember(signature, merged[0])
            if not self.budget.fits(merged[0].price_per_hour):
                raise self.budget.exceeded(merged[0].price_per_hour, describe(merged[0]))
        return merged

    def _remember(self, signature: tuple[object, ...], cheapest: Offer) -> None:
        now = trio.current_time()
        if len(self._cheapest) >= MAX_REMEMBERED:
            old = [k for k, (_, at, _) in self._cheapest.items() if now - at >= CHEAPEST_MEMORY]
            for key in old or list(self._cheapest)[: MAX_REMEMBERED // 2]:
                del self._cheapest[key]
        self._cheapest[signature] = (cheapest.price_per_hour, now, describe(cheapest))

    # --- create ----------------------------------------------------------------------------------

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        adopted = await self._settle(spec)
        if adopted is not None:
            return adopted
        name = offer.provider
        cloud = self.clouds.get(name)
        if cloud is None:
            raise NoCapacity(f"offer {offer.offer_id!r} is of {name!r}, not a cloud of this node")
        if not self.health.usable(name):
            raise self.health.why_not(name)
        token = self.budget.reserve(name, offer.price_per_hour, describe(offer))
        try:
            instance = await cloud.create(spec, offer)
        except OutcomeUnknown as exc:
            return await self._after_unknown(spec, name, token, exc)
        except ProviderUnavailable as exc:  # a timeout or a 5xx: it may have rented
            self.health.failed(name, exc)
            return await self._after_unknown(spec, name, token, exc)
        except CloudError as exc:
            self.budget.release(token)
            self.health.failed(name, exc)
            if isinstance(exc, NoCapacity):
                self.health.succeeded(name)  # it answered; the offer was gone
            raise named(exc, name) from exc
        except BaseException:
            self.budget.release(token)
            raise
        self.health.succeeded(name, paid=True)
        return self._rented(name, token, instance)

    def _rented(self, name: str, token: int, instance: Instance) -> Instance:
        self.budget.rented(token, instance, name)
        self._where[instance.instance_id] = (name, trio.current_time())
        return _tagged(instance, name)

    async def _after_unknown(
        self, spec: InstanceSpec, name: str, token: int, error: ProviderUnavailable
    ) -> Instance:
        """Ask ``name`` whether the failed create rented; adopt what it rented, else raise
        ``error`` (nothing was rented: placement may try another cloud)."""
        try:
            found = await self._find(name, spec.key)
        except CloudError as exc:
            # the reservation stays: it may bill
            self._unsettled[spec.key] = (name, token, trio.current_time())
            raise OutcomeUnknown(
                f"{name}: the create of {spec.key} failed ({error.reason}: {error.message}) "
                f"and {name} cannot say whether it rented ({exc.reason}); no other cloud is "
                "tried before it does",
                retry_after=error.retry_after,
            ) from exc
        if found is not None:
            _log.warning(
                "%s: the failed create of %s had rented %s: adopted",
                *(name, spec.key, found.instance_id),
            )
            return self._rented(name, token, found)
        self.budget.release(token)
        raise named(error, name) from error

    async def _settle(self, spec: InstanceSpec) -> Instance | None:
        """Before a new try of an attempt whose create had an unknown outcome: ask that cloud."""
        held = self._unsettled.get(spec.key)
        if held is None:
            return None
        name, token, _ = held
        try:
            found = await self._find(name, spec.key)
        except CloudError as exc:
            raise OutcomeUnknown(
                f"{name} still cannot say whether the create of {spec.key} rented "
                f"({exc.reason}: {exc.message}); no other cloud is tried before it does",
                retry_after=exc.retry_after,
            ) from exc
        # a list of that cloud may have settled it meanwhile (and released the reservation);
        # either way the question is answered now
        self._unsettled.pop(spec.key, None)
        if found is not None:
            return self._rented(name, token, found)
        self.budget.release(token)
        return None

    async def _find(self, name: str, key: str) -> Instance | None:
        for inst in await self.clouds[name].list():
            if inst.key == key and inst.state is not InstanceState.TERMINATING:
                return inst
        return None

    # --- list, delete, logs ----------------------------------------------------------------------

    async def list(self) -> builtins.list[Instance]:
        errors: dict[str, CloudError] = {}

        async def ask(name: str) -> None:
            started = trio.current_time()
            try:
                found = await self.clouds[name].list()
            except Exception as exc:  # never Cancelled (faults.py): one cloud's problem
                errors[name] = _as_cloud_error(name, exc, "list")
                self.health.failed(name, errors[name])
                return
            self._listed(name, found, started)
            self.health.succeeded(name)

        async with trio.open_nursery() as nursery:
            for name in self.names:
                nursery.start_soon(ask, name)
        errors = {name: errors[name] for name in self.names if name in errors}
        never = [name for name in errors if name not in self._snapshots]
        if never:
            prefix = "every cloud must answer the first list (recovery) before pods are judged: "
            raise most_hopeful(errors, prefix=prefix)
        if len(errors) == len(self.names):
            raise most_hopeful(errors)
        for name, exc in errors.items():
            _log.warning("listing %s failed, its last list stands: %s", name, exc)
        return [inst for name in self.names for inst in self._snapshots[name]]

    async def housekeep(self) -> None:
        """Each cloud's work between lists (exit markers), side by side (base.py's optional
        ``housekeep``); one cloud's failure is its own."""

        async def run(name: str) -> None:
            housekeep = getattr(self.clouds[name], "housekeep", None)
            if not callable(housekeep):
                return
            try:
                await housekeep()
            except Exception as exc:  # never Cancelled (faults.py)
                _log.info("housekeeping of %s failed: %s", name, _as_cloud_error(name, exc, "hk"))

        async with trio.open_nursery() as nursery:
            for name in self.names:
                nursery.start_soon(run, name)

    async def explain_no_offers(self, need: Requirements) -> str:
        """Why no cloud offers ``need``: each cloud's own account (placement.why_no_offers)."""
        wishes = neutral.parse(need.annotations, node_clouds=self.names)
        said: list[str] = []
        for name in wishes.clouds:
            narrowed = neutral.narrowed(need, wishes, name)
            if narrowed is None:
                said.append(f"{name}: not asked (the pod's annotations rule it out)")
                continue
            try:
                said.append(f"{name}: {await why_no_offers(self.clouds[name], narrowed)}")
            except Exception as exc:  # never Cancelled (faults.py)
                said.append(f"{name}: {_as_cloud_error(name, exc, 'explain').message}")
        return "; ".join(said)

    def _listed(self, name: str, found: builtins.list[Instance], started: float) -> None:
        self._snapshots[name] = [_tagged(inst, name) for inst in found]
        self.budget.listed(name, found, started_at=started)
        now = trio.current_time()
        self._where = {
            iid: (cloud, at)
            for iid, (cloud, at) in self._where.items()
            if cloud != name or at >= started  # what we created while the list was on its way
        } | {inst.instance_id: (name, now) for inst in found}
        for key, (cloud, token, since) in list(self._unsettled.items()):
            if cloud == name and since < started:  # it shows (and counts) what that create rented
                del self._unsettled[key]
                self.budget.release(token)

    def _cloud_of(self, instance_id: str) -> str | None:
        where = self._where.get(instance_id)
        return where[0] if where is not None else None

    async def delete(self, instance_id: str) -> None:
        name = self._cloud_of(instance_id)
        if name is None:
            raise ProviderUnavailable(f"instance {instance_id} is on no cloud listed so far")
        await self.clouds[name].delete(instance_id)
        self.budget.deleted(name, instance_id)

    async def logs(self, instance_id: str, opts: LogOptions) -> AsyncIterator[LogLine]:
        name = self._cloud_of(instance_id)
        if name is None:
            raise LogsUnavailable(f"instance {instance_id} is on no cloud of this node")
        async for line in self.clouds[name].logs(instance_id, opts):
            yield line


def _signature(need: Requirements) -> tuple[object, ...]:
    """What makes two pods' offers the same (a dict is not hashable; this tuple is)."""
    return (
        need.gpu_count,
        need.gpu_memory_gb,
        need.cpu_millis,
        need.memory_mb,
        need.disk_gb,
        need.max_price_per_hour,
        tuple(sorted(need.annotations.items())),
    )


def named(error: CloudError, cloud: str) -> CloudError:
    """``error`` of the same kind, its message starting with the cloud that said it."""
    if error.message.startswith(f"{cloud}: "):
        return error
    return type(error)(f"{cloud}: {error.message}", retry_after=error.retry_after)


def _tagged(instance: Instance, cloud: str) -> Instance:
    return dataclasses.replace(
        instance, provider=cloud, annotations={**instance.annotations, CLOUD_ANNOTATION: cloud}
    )


def _with_model(offer: Offer) -> Offer:
    model = neutral.model_of(offer)
    if model is None:
        return offer
    return dataclasses.replace(offer, details={**offer.details, "model": model.name})


def describe(offer: Offer) -> str:
    gpu = offer.details.get("model") or offer.gpu_type
    return f"{offer.gpu_count}x {gpu} on {offer.provider}"
