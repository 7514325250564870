"""The Vast.ai provider: pods as Vast.ai instances, under the contract of providers/base.py.

What the kubelet our users come from got wrong, this gets right, and the tests say so:

* **Offers** come from the real JSON filter language (selection.py), cheapest first at the disk we
  will rent, never above the lowest of the node's caps (``--max-gpu-price`` is per GPU, so times
  the pod's GPU count), the pod's cap and ``vast.ai/price-max``.
* **Create** is idempotent by ``spec.key``: a key this object rented is remembered; otherwise the
  account is searched for the key's label first. A create whose outcome is unknown (timeout,
  5xx) is never repeated blindly: the label is looked up again. An offer that vanished is
  ``NoCapacity`` (placement tries the next); an error that still carries a ``new_contract``
  means an instance exists anyway, and it is destroyed before the error is raised.
* **Reads** never lead to a second rental: ``{"instances": null}`` right after a create is the
  documented read lag, so instances this object created stay listed (PROVISIONING) for
  ``read_grace_seconds`` even when the account does not show them yet.
* **List** is one paged pass over the account's instances for all pods of the node. The filter
  language has no prefix operator and the server's string ordering is not documented, so the
  node's instances are picked by their label here rather than by a range query there.
* **Jobs** get their real exit code from the wrapper's marker line (translate.py), read through
  the logs endpoint at most every ``exit_poll_seconds`` per instance. A Job without a command
  runs its image's ENTRYPOINT and CMD, which are read from the image's registry (images.py) so
  the wrapper can run them, as RunPod's provider does.
* **Delete** destroys (storage bills until destroy, so stopping is never enough); gone is success.
* There is no limit on the number of pods: Vast.ai's market is the limit.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2
import trio

from vk_trio.decoding import ascii_digits
from vk_trio.errors import InvalidInput
from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    InstanceState,
    InvalidSpec,
    LogLine,
    LogOptions,
    NoCapacity,
    Offer,
    PaymentRequired,
    ProviderAuthFailed,
    ProviderUnavailable,
    Requirements,
)
from vk_trio.providers.egress import DEFAULT_DENY
from vk_trio.providers.images import ImageConfigReader
from vk_trio.providers.rows import RowFaults
from vk_trio.providers.vastai import selection, translate
from vk_trio.providers.vastai.client import (
    DEFAULT_BASE_URL,
    CreateOutcomeUnknown,
    VastClient,
    error_for,
)
from vk_trio.providers.vastai.logs import read_logs
from vk_trio.providers.vastai.status import (
    ANNOTATION_PREFIX,
    VastInstance,
    decode_row,
    instance_from,
)

NAME = "vastai"
LOOKUP_TRIES = 3  # label lookups after a create of unknown outcome


@dataclass(frozen=True, kw_only=True)
class _Pending:
    instance: Instance
    since: float  # trio time of the create


class VastProvider:
    """Vast.ai behind ``providers.base.Provider``.

    Args:
        node_name: the node whose instances this object creates, lists and deletes.
        api_key: the Vast.ai API key (``VAST_API_KEY``); sent only as a Bearer header.
        base_url: any server speaking the Vast.ai API (the simulator in tests).
        max_price_per_hour: the node's cap in $/h for one instance (``None``: no cap).
        max_gpu_price: the node's cap in $/h per GPU (``--max-gpu-price``): an instance with N
            GPUs may cost N times this (``dph_total``, disk included).
        min_reliability: floor on ``reliability2`` (dstack's default 0.9).
        min_direct_ports: floor on ``direct_port_count`` (pods reach their ports through them).
        default_disk_gb: disk rented when neither ``vast.ai/disk`` nor the pod says.
        loading_timeout: seconds an instance may stay created/loading before it is FAILED.
        intervals: per-endpoint pacing in seconds (``pacing.DEFAULT_INTERVALS``).
        clock: epoch seconds now, used only where Vast.ai gives no time.
        read_grace_seconds: how long a created instance the account does not show yet is
            still reported as PROVISIONING.
        exit_poll_seconds: how often a running Job's logs are read for its exit marker.
        follow_poll_seconds: how often followed logs are fetched again.
        registry_mirror: a pull-through mirror for reading image configs (images.py).
        max_disk_gb: the most disk one pod may rent (``--max-disk-gb``; None: no cap).
        registry_deny: address ranges image registry lookups may not reach (egress.py).
        images: the image config reader (default: one of our own, with ``registry_mirror``).
    """

    name = NAME

    def __init__(
        self,
        node_name: str,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        max_price_per_hour: float | None = None,
        max_gpu_price: float | None = None,
        min_reliability: float = 0.90,
        min_direct_ports: int = 1,
        default_disk_gb: float = 20.0,
        loading_timeout: float = 1200.0,
        intervals: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.time,
        read_grace_seconds: float = 120.0,
        exit_poll_seconds: float = 10.0,
        follow_poll_seconds: float = 5.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        trust_env: bool = True,
        registry_mirror: str | None = None,
        images: ImageConfigReader | None = None,
        max_disk_gb: float | None = None,
        registry_deny: Sequence[str] = DEFAULT_DENY,
    ) -> None:
        self.node_name = node_name
        self.policy = selection.Policy(
            max_price_per_hour=max_price_per_hour,
            max_gpu_price=max_gpu_price,
            min_reliability=min_reliability,
            min_direct_ports=min_direct_ports,
            default_disk_gb=default_disk_gb,
            max_disk_gb=max_disk_gb,
        )
        self.loading_timeout = loading_timeout
        self.clock = clock
        self.read_grace_seconds = read_grace_seconds
        self.exit_poll_seconds = exit_poll_seconds
        self.follow_poll_seconds = follow_poll_seconds
        self.client = VastClient(
            api_key=api_key,
            base_url=base_url,
            intervals=intervals,
            transport=transport,
            trust_env=trust_env,
        )
        self._tag = translate.node_tag(node_name)
        self._locks: dict[str, trio.Lock] = {}
        self._pending: dict[str, _Pending] = {}
        self._markers: dict[str, translate.ExitMarker] = {}
        self._marker_checked: dict[str, float] = {}
        self._first_running: dict[str, float] = {}
        self.images = images or ImageConfigReader(mirror=registry_mirror, deny=registry_deny)
        self.rows = RowFaults(NAME)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.images.aclose()

    # --- check and offers ------------------------------------------------------------------------

    def check(self, spec: InstanceSpec) -> None:
        translate.check(spec)
        selection.select(spec.need, self.policy)

    async def offers(self, need: Requirements) -> list[Offer]:
        chosen = selection.select(need, self.policy)
        rows = await self.client.search_offers(selection.search_query(chosen, self.policy))
        found: dict[int, Offer] = {}
        for row in rows:
            offer = self._offer(row, chosen)
            if offer is not None:
                found.setdefault(int(offer.offer_id), offer)
        return sorted(found.values(), key=lambda o: (o.price_per_hour, int(o.offer_id)))

    def _offer(self, row: Mapping[str, Any], chosen: selection.Selection) -> Offer | None:
        """An offer the pod can use, checked here too: a server that ignores a filter (or a
        stand-in that does not know it) must not get us the wrong machine. A row with a field
        we cannot read (a list or text where a number belongs, ``NaN``) is no offer."""
        try:
            offer = selection.OfferRow.read(row)
        except InvalidInput:
            return None
        country = offer.location.rsplit(",", 1)[-1].strip()
        if (
            offer.num_gpus != chosen.gpu_count
            or (chosen.gpu_names and offer.gpu_name not in chosen.gpu_names)
            or (chosen.gpu_ram_mb is not None and offer.ram_mb < chosen.gpu_ram_mb)
            or (chosen.countries is not None and country not in chosen.countries)
            or offer.reliability < self.policy.min_reliability
            or offer.direct_ports < self.policy.min_direct_ports
            or not selection.fits(offer, chosen)
        ):
            return None
        details = {"disk_gb": f"{chosen.disk_gb:g}", "gpu_ram_mb": f"{offer.ram_mb:g}"}
        for key in ("machine_id", "reliability2", "inet_down", "cuda_max_good"):
            value = getattr(offer, key)
            if value is not None:
                details[key] = f"{value:g}" if isinstance(value, float) else str(value)
        return Offer(
            provider=self.name,
            offer_id=str(offer.id),
            gpu_type=offer.gpu_name,
            gpu_count=offer.num_gpus,
            gpu_memory_gb=round(offer.ram_mb / 1024, 2),
            price_per_hour=offer.dph_total,
            location=offer.location,
            cloud_type="datacenter" if _datacenter(offer.hosting_type) else "community",
            details=details,
        )

    # --- create ----------------------------------------------------------------------------------

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        self.check(spec)
        chosen = selection.select(spec.need, self.policy)
        async with self._locks.setdefault(spec.key, trio.Lock()):
            pending = self._pending.get(spec.key)
            if pending is not None:
                return pending.instance
            label = translate.label(spec)
            existing = await self._find(label)
            if existing is not None:
                return existing
            if offer.provider != self.name or not _offer_id(offer.offer_id):
                raise NoCapacity(f"offer {offer.offer_id!r} is not a Vast.ai offer")
            program = await self._program(spec)
            translate.check(spec, program)
            body = translate.create_body(spec, disk_gb=chosen.disk_gb, program=program)
            try:
                answer = await self.client.create_instance(int(offer.offer_id), body)
            except CreateOutcomeUnknown:
                for _ in range(LOOKUP_TRIES):
                    found = await self._find(label)
                    if found is not None:
                        return found
                    await trio.sleep(self.client.pacer.interval("create"))
                raise
            new_id = answer.new_contract
            success = isinstance(answer.body, dict) and answer.body.get("success") is not False
            if answer.status == 200 and success and new_id is not None:
                instance = self._rented(spec, offer, new_id)
                self._pending[spec.key] = _Pending(instance=instance, since=trio.current_time())
                return instance
            error = error_for("create", answer)
            if new_id is not None:
                await self._destroy_leftover(new_id)
                if not isinstance(error, PaymentRequired | ProviderAuthFailed):
                    error = NoCapacity(f"{error.message}; instance {new_id} was destroyed")
            raise error

    async def _program(self, spec: InstanceSpec) -> tuple[str, ...]:
        """For a Job without a command: what its image runs (ENTRYPOINT, then the pod's args or
        the image's CMD), read from the image's registry so the exit-code wrapper can run it."""
        if not spec.wants_exit_code or spec.command:
            return ()
        config = await self.images.read(spec.image, spec.registry_auth)
        program = (*config.entrypoint, *(spec.args or config.cmd))
        if not program:
            raise InvalidSpec(
                f"image {spec.image} has neither ENTRYPOINT nor CMD: set the container's command"
            )
        return program

    def _rented(self, spec: InstanceSpec, offer: Offer, instance_id: int) -> Instance:
        return Instance(
            instance_id=str(instance_id),
            node_name=self.node_name,
            pod_uid=spec.pod_uid,
            attempt=spec.attempt,
            state=InstanceState.PROVISIONING,
            message="contract being provisioned",
            created_at=datetime.fromtimestamp(self.clock(), UTC),
            gpu_type=offer.gpu_type,
            gpu_count=offer.gpu_count,
            price_per_hour=offer.price_per_hour,
            location=offer.location,
            image=spec.image,
            annotations={ANNOTATION_PREFIX + "instance-id": str(instance_id)},
        )

    async def _find(self, label: str) -> Instance | None:
        """The instance carrying ``label`` (the newest, should there be two)."""
        rows = await self.client.list_instances(select_filters={"label": {"eq": label}})
        owner = translate.owner(label)
        found = sorted(
            (r for r in rows if r.get("label") == label and _row_id(r) is not None),
            key=lambda r: _row_id(r) or 0,
        )
        if not found or owner is None:
            return None
        return await self._instance(self._decode(found[-1]), owner)

    async def _destroy_leftover(self, instance_id: int) -> None:
        """Best effort: a leftover still carries our label, so list() shows it until deleted."""
        with contextlib.suppress(CloudError):
            await self.client.destroy_instance(instance_id)

    # --- list ------------------------------------------------------------------------------------

    async def list(self) -> list[Instance]:
        rows = await self.client.list_instances()
        found: list[Instance] = []
        visible: set[str] = set()
        for raw in rows:
            text = raw.get("label")
            owner = translate.owner(text if isinstance(text, str) else None)
            if owner is None or owner.node_tag != self._tag:
                continue
            visible.add(owner.key)
            row_id = raw.get("id")
            try:
                found.append(await self._instance(self._decode(raw), owner))
            except Exception as exc:  # one row's odd answer is that row's problem (rows.py)
                if not isinstance(row_id, int) or isinstance(row_id, bool) or row_id < 0:
                    self.rows.skipped(f"label {text!r:.80}", exc)
                    continue
                found.append(
                    self.rows.placeholder(
                        instance_id=str(row_id),
                        node_name=self.node_name,
                        pod_uid=owner.pod_uid,
                        attempt=owner.attempt,
                        exc=exc,
                    )
                )
            else:
                self.rows.read(str(row_id))
        now = trio.current_time()
        for key, pending in list(self._pending.items()):
            if key in visible or now - pending.since > self.read_grace_seconds:
                del self._pending[key]
            else:
                found.append(pending.instance)
        return found

    def _decode(self, raw: dict[str, Any]) -> VastInstance:
        try:
            return decode_row(raw)
        except InvalidInput as exc:
            raise ProviderUnavailable(str(exc)) from exc

    async def _instance(self, row: VastInstance, owner: translate.Owner) -> Instance:
        instance_id = str(row.id)
        wrapped = translate.wrapped(row.image_args)
        if row.actual_status == "running":
            self._first_running.setdefault(instance_id, self.clock())
        marker = self._markers.get(instance_id)
        if marker is None and wrapped and row.actual_status in ("running", "exited"):
            marker = await self._read_marker(row.id, owner.key)
        return instance_from(
            row,
            owner,
            node_name=self.node_name,
            marker=marker,
            wrapped=wrapped,
            loading_timeout=self.loading_timeout,
            clock=self.clock,
            first_seen_running=self._first_running.get(instance_id),
        )

    async def _read_marker(self, instance_id: int, key: str) -> translate.ExitMarker | None:
        now = trio.current_time()
        if now - self._marker_checked.get(str(instance_id), -math.inf) < self.exit_poll_seconds:
            return None
        self._marker_checked[str(instance_id)] = now
        try:
            text = await self.client.request_logs(
                instance_id, tail=5, grep=f"{translate.MARKER} key={key} "
            )
        except CloudError:
            return None  # no marker this round; the next list() asks again
        marker = translate.exit_marker(text, key)
        if marker is not None:
            self._markers[str(instance_id)] = marker
        return marker

    # --- delete ----------------------------------------------------------------------------------

    async def delete(self, instance_id: str) -> None:
        for key, pending in list(self._pending.items()):
            if pending.instance.instance_id == instance_id:
                del self._pending[key]
        if not _offer_id(instance_id):
            return  # not a Vast.ai id: nothing of ours can have it
        await self.client.destroy_instance(int(instance_id))
        for cache in (self._markers, self._marker_checked, self._first_running):
            cache.pop(instance_id, None)

    # --- logs ------------------------------------------------------------------------------------

    def logs(self, instance_id: str, opts: LogOptions) -> AsyncIterator[LogLine]:
        return read_logs(
            self.client,
            instance_id,
            opts,
            poll_seconds=self.follow_poll_seconds,
            grace_seconds=self.read_grace_seconds,
        )


def _datacenter(hosting_type: object) -> bool:
    return (
        isinstance(hosting_type, int) and not isinstance(hosting_type, bool) and hosting_type >= 1
    )


def _offer_id(text: str) -> bool:
    """Vast.ai ids are positive integers (ASCII digits; "²" is a digit only to str.isdigit)."""
    return ascii_digits(text) and len(text) <= 16


def _row_id(row: Mapping[str, Any]) -> int | None:
    value = row.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**53:
        return value
    return None
