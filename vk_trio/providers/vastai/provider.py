"""The Vast.ai provider: pods as Vast.ai instances, under the contract of providers/base.py.

What the kubelet our users come from got wrong, this gets right, and the tests say so:

* **Offers** come from the real JSON filter language (selection.py), cheapest first at the disk we
  will rent, never above the lowest of the node's caps (``--max-gpu-price`` is per GPU, so times
  the pod's GPU count), the pod's cap and ``vast.ai/price-max``, and every row is checked again
  here (offers.py). One search serves every pod waiting at that moment, and each offer goes to
  one pod (offer_book.py).
* **Create** is idempotent by ``spec.key``: a key this object rented is remembered; otherwise the
  account is searched for the key's label first. A create whose outcome is unknown (timeout,
  5xx) is never repeated blindly: the label is looked up again. An offer that vanished is
  ``NoCapacity`` (placement tries the next); an error that still carries a ``new_contract``
  means an instance exists anyway, and it is destroyed before the error is raised.
* **Reads** never lead to a second rental: ``{"instances": null}`` right after a create is the
  documented read lag, so instances this object created stay listed (PROVISIONING) for
  ``read_grace_seconds`` even when the account does not show them yet (rentals.py).
* **List** is one paged pass over the account's instances for all pods of the node. The filter
  language has no prefix operator and the server's string ordering is not documented, so the
  node's instances are picked by their label rather than by a range query, and each row is
  read behind a barrier (reading.py).
* **Exit codes and restarts** come from the wrapper's marker lines (translate.py, exits.py),
  read through the logs endpoint, rationed. A pod without a command runs its image's
  ENTRYPOINT and CMD, which are read from the image's registry (images.py) so the wrapper can
  run them, as RunPod's provider does.
* **Create waits** (the create endpoint's turn comes every 4.5 s) end by asking the pod whether
  it still wants the instance (``spec.still_wanted``): a pod deleted meanwhile rents nothing.
* **Delete** destroys (storage bills until destroy, so stopping is never enough); gone is success.
* There is no limit on the number of pods: Vast.ai's market is the limit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

import httpx2
import trio

from vk_trio.decoding import ascii_digits
from vk_trio.providers import exit_marker
from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    InvalidSpec,
    LogLine,
    LogOptions,
    NoCapacity,
    Offer,
    PaymentRequired,
    ProviderAuthFailed,
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
from vk_trio.providers.vastai.exits import MarkerWatch
from vk_trio.providers.vastai.logs import read_logs
from vk_trio.providers.vastai.offer_book import OfferBook
from vk_trio.providers.vastai.offers import offers_from
from vk_trio.providers.vastai.reading import RowReader
from vk_trio.providers.vastai.rentals import RecentRentals

NAME = "vastai"
LOOKUP_TRIES = 3  # label lookups after a create of unknown outcome


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
        exit_poll_seconds: how often a running Job's logs are read for its exit marker at most.
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
        self.read_grace_seconds = read_grace_seconds
        self.follow_poll_seconds = follow_poll_seconds
        self.client = VastClient(
            api_key=api_key,
            base_url=base_url,
            intervals=intervals,
            transport=transport,
            trust_env=trust_env,
        )
        self._locks: dict[str, trio.Lock] = {}
        self._renting = trio.Lock()  # one look-up-then-create at a time (create is paced)
        self.rentals = RecentRentals(
            node_name=node_name, grace_seconds=read_grace_seconds, clock=clock
        )
        self.book = OfferBook(
            self.client.search_offers,
            self.policy,
            next_turn=lambda: self.client.pacer.next_turn("search"),
        )
        self.markers = MarkerWatch(self.client, job_poll=exit_poll_seconds)
        self._running: list[tuple[int, str, bool]] = []  # wrapped, running: (id, nonce, job)
        self._housekept = False  # housekeep() ran since the last list
        self.images = images or ImageConfigReader(mirror=registry_mirror, deny=registry_deny)
        self.rows = RowFaults(NAME)
        self.reader = RowReader(
            node_name=node_name,
            markers=self.markers,
            rows=self.rows,
            loading_timeout=loading_timeout,
            clock=clock,
        )

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.images.aclose()

    # --- check and offers ------------------------------------------------------------------------

    def check(self, spec: InstanceSpec) -> None:
        translate.check(spec)
        selection.select(spec.need, self.policy)

    async def offers(self, need: Requirements) -> list[Offer]:
        chosen = selection.select(need, self.policy)
        rows = await self.book.rows_for(chosen)
        return offers_from(rows, chosen, self.policy, provider=self.name)

    # --- create ----------------------------------------------------------------------------------

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        self.check(spec)
        chosen = selection.select(spec.need, self.policy)
        async with self._locks.setdefault(spec.key, trio.Lock()):
            known = self.rentals.get(spec.key)
            if known is not None:
                return known
            if offer.provider != self.name or not _offer_id(offer.offer_id):
                raise NoCapacity(f"offer {offer.offer_id!r} is not a Vast.ai offer")
            offer_id = int(offer.offer_id)
            refused = self.book.claim(offer_id, spec.key)
            if refused is not None:
                raise NoCapacity(f"offer {offer_id} is {refused}")
            rented = False
            try:
                instance = await self._create(spec, offer, chosen)
                rented = True
                return instance
            except NoCapacity:
                self.book.vanished(offer_id)
                raise
            finally:
                self.book.release(offer_id, spec.key, rented=rented)

    async def _create(
        self, spec: InstanceSpec, offer: Offer, chosen: selection.Selection
    ) -> Instance:
        spec.ensure_wanted()
        label = translate.label(spec)
        program, wrap = await self._program(spec)
        nonce = exit_marker.new_nonce() if wrap else None
        translate.check(spec, program, nonce=nonce)
        body = translate.create_body(spec, disk_gb=chosen.disk_gb, program=program, nonce=nonce)
        # One rental at a time (Vast.ai takes one create per 4.5 s anyway): each looks for an
        # instance of its label right before its create, so 200 waiting pods do not queue 200
        # look-ups ahead of the status loop's list on the list endpoint's one-a-second turns.
        async with self._renting:
            spec.ensure_wanted()
            existing = await self._find(label)
            if existing is not None:
                return existing
            try:
                answer = await self.client.create_instance(
                    int(offer.offer_id), body, before_send=spec.ensure_wanted
                )
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
            return self.rentals.rented(spec, offer, new_id)
        error = error_for("create", answer)
        if new_id is not None:
            await self._destroy_leftover(new_id)
            if not isinstance(error, PaymentRequired | ProviderAuthFailed):
                error = NoCapacity(f"{error.message}; instance {new_id} was destroyed")
        raise error

    async def _program(self, spec: InstanceSpec) -> tuple[tuple[str, ...], bool]:
        """(what the image runs, for a pod without a command: ENTRYPOINT, then the pod's args or
        the image's CMD, read from the image's registry; whether to wrap the program). A Job is
        always wrapped (its exit code ends it; an image that cannot be read fails it); an
        ``Always`` pod whose image cannot be read runs unwrapped, as written."""
        if spec.command:
            return (), True
        try:
            config = await self.images.read(spec.image, spec.registry_auth)
        except CloudError:
            if spec.wants_exit_code:
                raise
            return (), False
        program = (*config.entrypoint, *(spec.args or config.cmd))
        if not program and spec.wants_exit_code:
            raise InvalidSpec(
                f"image {spec.image} has neither ENTRYPOINT nor CMD: set the container's command"
            )
        return program, bool(program)

    async def _find(self, label: str) -> Instance | None:
        """The instance carrying ``label`` (the newest, should there be two)."""
        rows = await self.client.list_instances(select_filters={"label": {"eq": label}})
        return self.reader.newest(rows, label)

    async def _destroy_leftover(self, instance_id: int) -> None:
        """Best effort: a leftover still carries our label, so list() shows it until deleted."""
        with contextlib.suppress(CloudError):
            await self.client.destroy_instance(instance_id)

    # --- list ------------------------------------------------------------------------------------

    async def list(self) -> list[Instance]:
        scan = self.reader.scan(await self.client.list_instances())
        self._running = scan.wrapped_running()
        if not self._housekept:  # nobody reads markers between lists: read them here
            await self.markers.read_due(self._running)
        self._housekept = False
        return [
            *scan.unreadable,
            *self.reader.instances(scan.ours),
            *self.rentals.unlisted(scan.listed),
        ]

    async def housekeep(self) -> None:
        """Between two lists: read the markers that are due (exits.py), off the list's path."""
        self._housekept = True
        await self.markers.read_due(self._running, budget=None)

    # --- delete ----------------------------------------------------------------------------------

    async def delete(self, instance_id: str) -> None:
        self.rentals.forget(instance_id)
        if not _offer_id(instance_id):
            return  # not a Vast.ai id: nothing of ours can have it
        await self.client.destroy_instance(int(instance_id))
        self.reader.forget(instance_id)
        self.markers.forget(int(instance_id))

    # --- logs ------------------------------------------------------------------------------------

    def logs(self, instance_id: str, opts: LogOptions) -> AsyncIterator[LogLine]:
        return read_logs(
            self.client,
            instance_id,
            opts,
            poll_seconds=self.follow_poll_seconds,
            grace_seconds=self.read_grace_seconds,
        )


def _offer_id(text: str) -> bool:
    """Vast.ai ids are positive integers (ASCII digits; "²" is a digit only to str.isdigit)."""
    return ascii_digits(text) and len(text) <= 16
