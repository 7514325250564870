"""``RunPodProvider``: the provider contract (providers/base.py) on RunPod's REST v2 API.

The pieces: annotations.py parses ``runpod.io/*``, offers.py picks (GPU type, data center)
candidates from the catalog, mapping.py builds create bodies and reads pods back (ownership by
name, the Job exit-code wrapper), program.py decides what the wrapper runs (an image's CMD read
from its registry by ../images.py), client.py speaks HTTP with RunPod's retry table, catalog.py
reads the catalog once for many pods, account.py shares the account's lists among look-ups and
reads each pod behind a barrier, registry_credentials.py stores private images' credentials,
exits.py follows exit markers and restarts, logs.py reads the log stream. This module holds
them together where the contract needs state and ordering: idempotent create (one lock per key,
and a look-up by name before every create and retry, because a create can answer 500 after it
created the pod), one pod per key in every list, and the housekeeping between lists.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import datetime

import trio

from vk_trio.pacing import Backoff
from vk_trio.providers import exit_marker
from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceSpec,
    InvalidAnnotation,
    InvalidSpec,
    LogLine,
    LogOptions,
    NoCapacity,
    Offer,
    ProviderUnavailable,
    Requirements,
)
from vk_trio.providers.egress import DEFAULT_DENY
from vk_trio.providers.images import ImageConfigReader
from vk_trio.providers.rows import RowFaults
from vk_trio.providers.runpod import mapping, models
from vk_trio.providers.runpod.account import Account
from vk_trio.providers.runpod.annotations import (
    CONTAINER_DISK_GB,
    RunPodOptions,
    allowed_datacenters,
    container_disk_gb,
    parse,
)
from vk_trio.providers.runpod.catalog import CATALOG_SECONDS, CatalogCache
from vk_trio.providers.runpod.client import DEFAULT_BASE_URL, RunPodClient
from vk_trio.providers.runpod.exits import ExitWatch
from vk_trio.providers.runpod.logs import LogReader
from vk_trio.providers.runpod.offers import ANY_DATACENTER, Candidate, choose, explain
from vk_trio.providers.runpod.program import program
from vk_trio.providers.runpod.registry_credentials import RegistryCredentials


class RunPodProvider:
    """Pods of one node as RunPod pods. See the package modules for each concern."""

    name = "runpod"

    def __init__(
        self,
        node_name: str,
        *,
        api_key: str = "",
        base_url: str = DEFAULT_BASE_URL,
        datacenter_ids: Sequence[str] = (),
        max_gpu_price: float | None = None,
        client: RunPodClient | None = None,
        create_attempts: int = 5,
        backoff: Backoff | None = None,
        log_idle_timeout: float = 1.5,
        log_first_timeout: float = 5.0,
        registry_mirror: str | None = None,
        images: ImageConfigReader | None = None,
        catalog_seconds: float = CATALOG_SECONDS,
        max_disk_gb: int = mapping.MAX_DISK_GB,
        registry_deny: Sequence[str] = DEFAULT_DENY,
    ) -> None:
        self.node_name = node_name
        self.max_disk_gb = max_disk_gb
        self.datacenter_ids = tuple(dc.strip().upper() for dc in datacenter_ids if dc.strip())
        self.max_gpu_price = max_gpu_price
        self.client = client or RunPodClient(api_key=api_key, base_url=base_url)
        self.create_attempts = create_attempts
        self.backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self.log_idle_timeout = log_idle_timeout
        self.log_first_timeout = log_first_timeout
        self.catalog = CatalogCache(self.client, seconds=catalog_seconds)
        self._locks: dict[str, trio.Lock] = {}
        self._housekept = False  # housekeep() ran since the last list
        self._listed: builtins.list[models.Pod] = []  # our pods as the last list showed them
        self._creating = 0  # creates in flight: log reads wait for them (exits.py)
        self.reader = LogReader(
            self.client, first_timeout=log_first_timeout, idle_timeout=log_idle_timeout
        )
        self.exits = ExitWatch(self._marker_lines)
        self.rows = RowFaults(self.name)
        self.account = Account(self.client, node_name=node_name, exits=self.exits, rows=self.rows)
        self.registries = RegistryCredentials(self.client, node_name)
        self.images = images or ImageConfigReader(mirror=registry_mirror, deny=registry_deny)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.images.aclose()

    # --- check and offers ----------------------------------------------------------------------

    def _options(self, spec: InstanceSpec) -> tuple[RunPodOptions, tuple[str, ...]]:
        options = parse(spec.need.annotations)
        return options, allowed_datacenters(self.datacenter_ids, options.datacenter_ids)

    def check(self, spec: InstanceSpec) -> None:
        options, _ = self._options(spec)
        disk = container_disk_gb(options, spec.need.disk_gb)
        if disk > self.max_disk_gb:
            where = (
                f"{CONTAINER_DISK_GB} {options.container_disk_gb}"
                if options.container_disk_gb is not None
                else f"ephemeral-storage ({spec.need.disk_gb:g} GB)"
            )
            message = (
                f"{where} is more disk than this node rents for one pod ({self.max_disk_gb} GB, "
                "--max-disk-gb)"
            )
            if options.container_disk_gb is not None:
                raise InvalidAnnotation(message)
            raise InvalidSpec(message)
        if not spec.image and not options.template_id:
            raise InvalidSpec("the container has no image (and no runpod.io/templateId)")
        if spec.wants_exit_code and not (spec.command or spec.args or spec.image):
            raise InvalidSpec(
                "RunPod restarts a container whose process exits and reports no exit code; "
                "vk-trio reads a Job's exit code by wrapping its program in a POSIX shell, so "
                "a Job run from a runpod.io/templateId must set command or args (a template's "
                "start command cannot be seen from here)"
            )

    async def offers(self, need: Requirements) -> list[Offer]:
        options = parse(need.annotations)
        datacenters = allowed_datacenters(self.datacenter_ids, options.datacenter_ids)
        await self.catalog.check_datacenters(options.datacenter_ids)
        gpus = await self.catalog.gpu_types(count=max(1, need.gpu_count), cloud=options.cloud_type)
        return choose(
            gpus,
            need,
            options,
            datacenters=datacenters,
            max_gpu_price=self.max_gpu_price,
        )

    async def explain_no_offers(self, need: Requirements) -> str:
        """Why ``offers(need)`` is empty: the constraints and what each left (offers.explain)."""
        options = parse(need.annotations)
        datacenters = allowed_datacenters(self.datacenter_ids, options.datacenter_ids)
        gpus = await self.catalog.gpu_types(count=max(1, need.gpu_count), cloud=options.cloud_type)
        return explain(
            gpus, need, options, datacenters=datacenters, max_gpu_price=self.max_gpu_price
        )

    # --- create ------------------------------------------------------------------------------

    async def create(self, spec: InstanceSpec, offer: Offer) -> Instance:
        self.check(spec)
        options, datacenters = self._options(spec)
        candidate = Candidate.parse(offer.offer_id)
        if candidate is None:
            raise NoCapacity(f"offer {offer.offer_id!r} is not a RunPod offer (any more)")
        await self.catalog.still_in_stock(candidate)
        lock = self._locks.setdefault(spec.key, trio.Lock())
        async with lock:
            spec.ensure_wanted()
            existing = await self.account.before_create(spec)
            if existing is not None:
                return existing
            default_command, wrap = await program(self.images, spec)
            request = mapping.create_request(
                spec,
                options,
                gpu_id=candidate.gpu_id,
                gpu_count=candidate.count,
                cloud=candidate.cloud,
                datacenters=(
                    list(datacenters)
                    if candidate.datacenter == ANY_DATACENTER
                    else [candidate.datacenter]
                ),
                registry=await self.registries.for_pod(spec, options),
                default_command=default_command,
                nonce=exit_marker.new_nonce() if wrap else None,
            )
            return await self._create(spec, request)

    async def _create(self, spec: InstanceSpec, request: models.CreatePodRequest) -> Instance:
        failure: ProviderUnavailable | None = None
        for attempt in range(self.create_attempts):
            try:
                self._creating += 1
                self.account.sending(spec.key)
                try:
                    pod = await self.client.create_pod(request, before_send=spec.ensure_wanted)
                finally:
                    self._creating -= 1
            except NoCapacity:
                self.catalog.forget()
                raise
            except ProviderUnavailable as exc:
                # A create that timed out or answered 5xx may have created the pod (and
                # RunPod bills it): wait, look it up by its name, and only then try again.
                failure = exc
                await trio.sleep(self.backoff.delay(attempt, retry_after=exc.retry_after))
                found = await self.account.after_failed_create(spec)
                if found is not None:
                    return found
                spec.ensure_wanted()
                continue
            instance = mapping.to_instance(pod, node_name=self.node_name)
            if instance is None:  # pragma: no cover - RunPod renamed our pod?
                raise ProviderUnavailable(f"RunPod created {pod.id} under another name")
            return instance
        assert failure is not None
        raise failure

    # --- list and delete ---------------------------------------------------------------------

    async def list(self) -> list[Instance]:
        listing = await self.account.list()
        for exc in listing.skipped:
            self.rows.skipped("without an id", exc)
        pods = [
            pod
            for pod in listing.pods
            if pod.status != "TERMINATED" and mapping.parse_name(pod.name, self.node_name)
        ]
        pods = await self._without_duplicates(pods)
        self.exits.observe(pods)
        if not self._housekept:  # nobody reads markers between lists: read them here
            await self.exits.read_due(pods, busy=self._creating > 0, room=self.client.quota_room())
        self._housekept, self._listed = False, pods
        out = [found for pod in pods if (found := self.account.instance(pod)) is not None]
        for stub, exc in listing.unreadable:
            if stub.status != "TERMINATED":
                placeholder = self.account.placeholder(stub, exc)
                if placeholder is not None:
                    out.append(placeholder)
        await self.registries.collect(listing)
        return out

    async def housekeep(self) -> None:
        """Between two lists: read the exit markers that are due (exits.py), off the list's
        path (the agent's status loop calls this while it waits for the next list)."""
        self._housekept = True
        await self.exits.read_due(
            self._listed, busy=self._creating > 0, room=self.client.quota_room(), budget=None
        )

    async def _without_duplicates(
        self, pods: builtins.list[models.Pod]
    ) -> builtins.list[models.Pod]:
        """Keep the oldest pod of each key and terminate the others.

        Two pods can share a key only when a create was delayed *before* RunPod processed it
        and our retry (after looking and finding nothing) created a second: we pay for one.
        """
        by_name: dict[str, models.Pod] = {}
        extra: list[models.Pod] = []

        def age(pod: models.Pod) -> tuple[float, str]:
            created = mapping.parse_time(pod.created_at)
            return (created.timestamp() if created else math.inf, pod.id)

        for pod in sorted(pods, key=age):
            if pod.name in by_name:
                extra.append(pod)
            else:
                by_name[pod.name] = pod
        for pod in extra:
            await self.client.delete_pod(pod.id)
        return [pod for pod in pods if by_name[pod.name] is pod]

    async def delete(self, instance_id: str) -> None:
        await self.client.delete_pod(instance_id)
        self.exits.forget(instance_id)
        self.account.prune()

    # --- logs --------------------------------------------------------------------------------

    def logs(self, instance_id: str, opts: LogOptions) -> AsyncIterator[LogLine]:
        """The container's log lines, without the wrapper's marker (logs.py)."""
        return self.reader.logs(instance_id, opts, nonce=self._nonce)

    def _marker_lines(
        self, pod_id: str, tail: int, since: str | None
    ) -> AsyncGenerator[tuple[str, datetime | None]]:
        """The end of a container's log, read quickly (ExitWatch's reader)."""
        return self.reader.lines(pod_id, tail=tail, since=since, follow=False, quick=True)

    async def _nonce(self, instance_id: str) -> str | None:
        """The nonce of the pod's wrapper (None: not wrapped, or no such pod)."""
        nonce = self.exits.nonce(instance_id)
        if nonce is not None:
            return nonce
        try:
            pod = await self.client.get_pod(instance_id)
        except CloudError:
            return None
        wrapped = mapping.wrapped(pod) if pod is not None else None
        return wrapped[1] if wrapped else None
