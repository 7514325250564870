"""FakeProvider: a GPU marketplace in a box that keeps every promise of the provider contract.

The reconciler, the status mapping, the CLI demo and the end-to-end tests all need a cloud that
behaves like RunPod or Vast.ai (capacity runs out, create times out after renting, deleted
machines linger, money is billed until delete) without the network or a credit card. The fake
runs the same contract suite as the real providers (tests/providers/contract.py), so code that
passes against it is held to the same rules.

Everything a test needs to steer it is here: a catalog with capacity, scripted workloads (per
image, overridable per pod with ``fake.vk-trio.io/*`` annotations), a queue of errors for the next
calls of a method, per-call latency, a ledger of what was billed, and a count of calls.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import trio

from vk_trio.providers.base import (
    CloudError,
    GpuUsage,
    Instance,
    InstanceSpec,
    InstanceState,
    InvalidSpec,
    LogLine,
    LogOptions,
    LogsUnavailable,
    NoCapacity,
    Offer,
    ProviderUnavailable,
    Requirements,
    Usage,
)
from vk_trio.providers.fake import _workload as wl
from vk_trio.providers.fake._catalog import DEFAULT_CATALOG, CatalogEntry, in_use, matching_offers
from vk_trio.providers.fake._faults import Faults, Method
from vk_trio.providers.fake._ledger import LedgerEntry, total_cost, total_seconds
from vk_trio.providers.fake._logs import stream_logs
from vk_trio.providers.fake._store import Record, State, Store

# A fixed instant for virtual clocks (2027-01-15): any will do, as long as tests agree.
DEFAULT_EPOCH = 1_800_000_000.0
DEFAULT_WORKLOAD = wl.Workload()  # boots in 1 s, starts in 1 s, runs forever, prints nothing


def trio_clock(epoch: float = DEFAULT_EPOCH) -> Callable[[], float]:
    """Epoch seconds that follow trio's clock: virtual under ``MockClock``/``autojump_clock``."""
    return lambda: epoch + trio.current_time()


class FakeProvider:
    """An in-process GPU marketplace implementing ``providers.base.Provider``.

    Args:
        node_name: the node whose instances this provider lists, creates and deletes.
        name: the provider name put on offers (offers of another name are not rentable here).
        catalog: machines for rent; each ``offer_id`` once.
        scripts: the workload of each image; other images run ``default_workload``. A pod's
            ``fake.vk-trio.io/*`` annotations override either.
        clock: epoch seconds now; ``trio_clock()`` in tests puts the fake on virtual time.
        state_file: share the books with other processes and survive ``kill -9``.
        delete_latency: seconds a deleted instance stays TERMINATING before it is gone.
        latency: seconds each call of a method takes (``{"create": 2.0}``, or a uniform range
            ``{"create": (1.0, 3.0)}``), on trio time.
    """

    def __init__(
        self,
        node_name: str,
        *,
        name: str = "fake",
        catalog: Iterable[CatalogEntry] = DEFAULT_CATALOG,
        scripts: Mapping[str, wl.Workload] | None = None,
        default_workload: wl.Workload = DEFAULT_WORKLOAD,
        clock: Callable[[], float] = time.time,
        state_file: Path | None = None,
        delete_latency: float = 0.0,
        latency: Mapping[Method, float | tuple[float, float]] | None = None,
    ) -> None:
        self.name = name
        self.node_name = node_name
        self.delete_latency = delete_latency
        self.default_workload = default_workload
        self._catalog = {entry.offer_id: entry for entry in catalog}
        self._scripts = dict(scripts or {})
        self._clock = clock
        self._store = Store(state_file)
        self._faults = Faults(latency)

    # --- the Provider protocol ------------------------------------------------------------

    def check(self, spec: InstanceSpec) -> None:
        self._workload(spec)

    async def offers(self, need: Requirements) -> list[Offer]:
        await self._faults.enter("offers")
        return matching_offers(
            self._catalog.values(),
            need,
            state=self._store.read(),
            now=self._clock(),
            provider=self.name,
        )

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        late_error = await self._faults.enter("create")
        workload = self._workload(spec)
        now = self._clock()
        record = self._find_key(self._store.read(), spec.key, now)
        if record is None:  # _rent looks again under the lock: another process may have rented
            record, rented = self._store.update(
                lambda state: self._rent(state, spec, offer, workload, now)
            )
            if rented and workload.fail == wl.FAIL_CREATE_500_CREATED:
                raise ProviderUnavailable(
                    "500 Internal Server Error (scripted: the instance was created)"
                )
        if late_error is not None:
            raise late_error
        return _instance(record, now)

    async def list(self) -> list[Instance]:
        await self._faults.enter("list")
        now = self._clock()
        return [_instance(r, now) for r in self._ours(self._store.read(), now)]

    async def delete(self, instance_id: str) -> None:
        late_error = await self._faults.enter("delete")
        now = self._clock()

        def terminate(state: State) -> None:
            for index, record in enumerate(state.instances):
                mine = record.instance_id == instance_id and record.owned_by(self.node_name)
                if mine and record.delete_requested_at is None:
                    state.instances[index] = msgspec.structs.replace(
                        record, delete_requested_at=now, deleted_at=now + self.delete_latency
                    )

        self._store.update(terminate)  # unknown, foreign or already deleted: nothing to do
        if late_error is not None:
            raise late_error

    async def logs(self, instance_id: str, opts: LogOptions) -> AsyncGenerator[LogLine, None]:
        await self._faults.enter("logs")
        record = self._owned(instance_id)
        if record is None:
            raise LogsUnavailable(f"instance {instance_id} not found on node {self.node_name}")
        lines = stream_logs(
            record, opts, clock=self._clock, reload=lambda: self._owned(instance_id)
        )
        async with aclosing(lines):  # closed with us, even when the reader stops early
            async for line in lines:
                yield line

    async def aclose(self) -> None:
        """Nothing to release: the books are closed after every call."""

    # --- steering, for tests ----------------------------------------------------------------

    def sibling(self, node_name: str) -> FakeProvider:
        """Another node's provider on the same marketplace: same books, catalog, scripts, clock
        and delete latency (its own faults and call counts). Works without a state file too."""
        other = FakeProvider(
            node_name,
            name=self.name,
            default_workload=self.default_workload,
            clock=self._clock,
            delete_latency=self.delete_latency,
        )
        other._catalog, other._scripts, other._store = self._catalog, self._scripts, self._store
        return other

    def script(self, image: str, workload: wl.Workload) -> None:
        """Instances of ``image`` rented from now on run ``workload``."""
        self._scripts[image] = workload

    def fail_next(self, method: Method, *errors: CloudError, after_effect: bool = False) -> None:
        """The next ``len(errors)`` calls of ``method`` raise these errors, in order.

        With ``after_effect`` (create and delete only) the call does its work first and then
        answers the error, like a cloud that rented the machine but timed out on the reply.
        """
        self._faults.fail_next(method, *errors, after_effect=after_effect)

    def set_latency(self, method: Method, seconds: float | tuple[float, float]) -> None:
        """Every later call of ``method`` takes ``seconds`` of trio time before it acts."""
        self._faults.set_latency(method, seconds)

    def call_count(self, method: Method) -> int:
        """How many times ``method`` was called on this object (faulted calls included)."""
        return self._faults.call_count(method)

    def reset_call_counts(self) -> None:
        self._faults.reset_call_counts()

    def set_capacity(self, offer_id: str, capacity: int) -> None:
        self._catalog[offer_id] = replace(self._catalog[offer_id], capacity=capacity)

    def remove_offer(self, offer_id: str) -> None:
        """The offer vanishes: ``create`` with it raises NoCapacity from now on."""
        self._catalog.pop(offer_id, None)

    def seed_foreign_instance(
        self,
        *,
        node_name: str = "",
        pod_uid: str = "",
        image: str = "someone/else:latest",
        price_per_hour: float = 1.0,
    ) -> str:
        """Rent an instance this node does not own (untagged by default); returns its id."""
        now = self._clock()

        def seed(state: State) -> str:
            record = Record(
                instance_id=state.new_instance_id(),
                node_name=node_name,
                pod_uid=pod_uid,
                price_per_hour=price_per_hour,
                image=image,
                created_at=now,
            )
            state.instances.append(record)
            return record.instance_id

        return self._store.update(seed)

    # --- the books, for tests -----------------------------------------------------------------

    def ledger(self, *, all_nodes: bool = False) -> builtins.list[LedgerEntry]:
        """Every instance this node ever rented (every instance at all with ``all_nodes``)."""
        return [
            _ledger_entry(r)
            for r in self._store.read().instances
            if all_nodes or r.owned_by(self.node_name)
        ]

    def instance_seconds(
        self, instance_id: str | None = None, *, until: float | None = None
    ) -> float:
        """Seconds billed to this node (or to one instance) up to ``until`` (default: now)."""
        return total_seconds(self._entries(instance_id), until=self._until(until))

    def cost(self, instance_id: str | None = None, *, until: float | None = None) -> float:
        """USD billed to this node (or to one instance) up to ``until`` (default: now)."""
        return total_cost(self._entries(instance_id), until=self._until(until))

    def billed_after(self, t: float) -> builtins.list[LedgerEntry]:
        """This node's instances that were billed at some moment after epoch second ``t``."""
        return [entry for entry in self.ledger() if entry.billed_after(t)]

    def live_instances(self, *, all_nodes: bool = False) -> builtins.list[Instance]:
        """Instances not yet gone, whatever their state (no call counted, no fault applied)."""
        now = self._clock()
        state = self._store.read()
        records = (
            [r for r in state.instances if not r.gone(now)] if all_nodes else self._ours(state, now)
        )
        return [_instance(r, now) for r in records]

    # --- inside ----------------------------------------------------------------------------------

    def _workload(self, spec: InstanceSpec) -> wl.Workload:
        """What an instance for ``spec`` will do; raises what ``check`` promises to raise."""
        if not spec.image.strip():
            raise InvalidSpec(f"pod {spec.namespace}/{spec.pod_name}: the container has no image")
        if spec.node_name != self.node_name:
            raise InvalidSpec(f"spec is for node {spec.node_name!r}, not {self.node_name!r}")
        base = self._scripts.get(spec.image, self.default_workload)
        return wl.workload_for(spec.need.annotations, base)

    def _rent(
        self, state: State, spec: InstanceSpec, offer: Offer, workload: wl.Workload, now: float
    ) -> tuple[Record, bool]:
        """The instance for ``spec.key``, and whether it was rented just now."""
        existing = self._find_key(state, spec.key, now)
        if existing is not None:
            return existing, False
        if workload.fail == wl.FAIL_NO_CAPACITY:
            raise NoCapacity(f"offer {offer.offer_id} has no capacity (scripted)")
        if workload.fail == wl.FAIL_CREATE_500:
            raise ProviderUnavailable("500 Internal Server Error (scripted; nothing was created)")
        entry = self._catalog.get(offer.offer_id) if offer.provider == self.name else None
        gpus = max(1, offer.gpu_count)
        if entry is None or gpus > entry.max_gpu_count:
            raise NoCapacity(f"offer {offer.offer_id} is no longer available")
        if in_use(state, entry.offer_id, now) >= entry.capacity:
            raise NoCapacity(f"offer {offer.offer_id} has no free machine left")
        record = Record(
            instance_id=state.new_instance_id(self.name),
            node_name=spec.node_name,
            pod_uid=spec.pod_uid,
            attempt=spec.attempt,
            offer_id=entry.offer_id,
            gpu_type=entry.gpu_type,
            gpu_count=gpus,
            price_per_hour=entry.price_per_gpu_hour * gpus,
            location=entry.location,
            image=spec.image,
            public_ip=f"198.51.100.{state.next_id % 254 + 1}",  # TEST-NET-2, never routable
            created_at=now,
            workload=workload,
        )
        state.instances.append(record)
        return record, True

    def _find_key(self, state: State, key: str, now: float) -> Record | None:
        return next((r for r in self._ours(state, now) if r.key == key), None)

    def _ours(self, state: State, now: float) -> builtins.list[Record]:
        return [r for r in state.instances if r.owned_by(self.node_name) and not r.gone(now)]

    def _owned(self, instance_id: str) -> Record | None:
        ours = self._ours(self._store.read(), self._clock())
        return next((r for r in ours if r.instance_id == instance_id), None)

    def _entries(self, instance_id: str | None) -> builtins.list[LedgerEntry]:
        return [e for e in self.ledger() if instance_id in (None, e.instance_id)]

    def _until(self, until: float | None) -> float:
        return self._clock() if until is None else until


def _instance(record: Record, now: float) -> Instance:
    """What the cloud reports about ``record`` at ``now`` (its life stops at a delete)."""
    deleting = record.delete_requested_at is not None
    at = min(now, record.delete_requested_at) if record.delete_requested_at is not None else now
    phase = wl.phase_at(record.workload, created_at=record.created_at, now=at, image=record.image)
    state = InstanceState.TERMINATING if deleting else phase.state
    return Instance(
        instance_id=record.instance_id,
        node_name=record.node_name,
        pod_uid=record.pod_uid,
        attempt=record.attempt,
        state=state,
        ready=state is InstanceState.RUNNING,
        exit_code=phase.exit_code,
        message=phase.message,
        public_ip=record.public_ip,
        created_at=wl.to_datetime(record.created_at),
        started_at=wl.to_datetime(phase.started_at),
        finished_at=wl.to_datetime(phase.finished_at),
        gpu_type=record.gpu_type,
        gpu_count=record.gpu_count,
        price_per_hour=record.price_per_hour,
        location=record.location,
        image=record.image,
        annotations={wl.ANNOTATION_PREFIX + "offer-id": record.offer_id},
        usage=_usage(record, now) if state is InstanceState.RUNNING else None,
    )


FAKE_GPU_MEMORY = 24 * 1024**3


def _usage(record: Record, now: float) -> Usage:
    """A busy container: 0.25 to 0.75 cores (a slow cycle over its run), 256 MiB, GPUs at 50 %
    with a third of their memory used. The numbers are the fake's; real providers report theirs."""
    started = record.created_at + record.workload.running_from
    phase = ((now - started) % 60.0) / 60.0
    gpus = tuple(
        GpuUsage(
            index=index,
            model=record.gpu_type,
            duty_cycle=50.0,
            memory_total_bytes=FAKE_GPU_MEMORY,
            memory_used_bytes=FAKE_GPU_MEMORY // 3,
        )
        for index in range(record.gpu_count)
    )
    cores = 0.25 + 0.5 * abs(1 - 2 * phase)
    return Usage(
        at=wl.to_datetime(now) or datetime.now(UTC),
        cpu_cores=cores,
        memory_bytes=256 * 1024**2,
        gpus=gpus,
    )


def _ledger_entry(record: Record) -> LedgerEntry:
    return LedgerEntry(
        instance_id=record.instance_id,
        node_name=record.node_name,
        pod_uid=record.pod_uid,
        attempt=record.attempt,
        offer_id=record.offer_id,
        price_per_hour=record.price_per_hour,
        created_at=record.created_at,
        deleted_at=record.deleted_at,
    )
