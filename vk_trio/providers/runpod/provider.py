"""``RunPodProvider``: the provider contract (providers/base.py) on RunPod's REST v2 API.

The pieces: annotations.py parses ``runpod.io/*``, offers.py picks (GPU type, data center)
candidates from the catalog, mapping.py builds create bodies and reads pods back (ownership by
name, the Job exit-code wrapper), client.py speaks HTTP with RunPod's retry table, ../images.py
reads an image's default command from its registry, catalog.py reads the catalog once for many
pods, exits.py follows exit markers and restarts, logs.py reads the log stream. This module adds
what needs state and I/O: idempotent create (one lock per key, and a look-up by name before every
create and retry, because a create can answer 500 after it created the pod; one recent account
list serves the look-ups of a burst), the housekeeping between lists, and registry credentials
made from imagePullSecrets.

Jobs and exit codes (the decision, in full in mapping.py): RunPod restarts a container whose
process exits and reports no exit code, so a Job's program runs inside a wrapper that prints
its exit code. The program is the pod's ``command``/``args``; a Job that sets neither (seed
000's example) runs its image's CMD, read from the image's registry config like a container
runtime reads it, then wrapped. If that config cannot be read (no such image, a private image
without an imagePullSecret) the pod fails naming the image, rather than running unwrapped and
billing forever; an unreachable registry is retried.
"""

from __future__ import annotations

import builtins
import hashlib
import math
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import datetime

import trio

from vk_trio.logs import get_logger
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
    RegistryAuth,
    Requirements,
)
from vk_trio.providers.egress import DEFAULT_DENY
from vk_trio.providers.images import ImageConfigReader
from vk_trio.providers.rows import RowFaults
from vk_trio.providers.runpod import mapping, models
from vk_trio.providers.runpod.annotations import (
    CONTAINER_DISK_GB,
    RunPodOptions,
    allowed_datacenters,
    container_disk_gb,
    parse,
)
from vk_trio.providers.runpod.catalog import CATALOG_SECONDS, CatalogCache
from vk_trio.providers.runpod.client import DEFAULT_BASE_URL, PodListing, RunPodClient
from vk_trio.providers.runpod.exits import ExitWatch
from vk_trio.providers.runpod.logs import LogReader
from vk_trio.providers.runpod.offers import ANY_DATACENTER, Candidate, choose, explain

LOOKUP_FRESH_SECONDS = 2.0  # a create's look-up by name may use a list this recent
MAX_ATTEMPTED = 10_000
REGISTRY_PREFIX = "vk-trio-"  # + 8 hex of the node name + "-" + 16 hex of the credential
REGISTRY_GC_SECONDS = 300.0  # how often unused registry credentials are looked for
REGISTRY_GRACE_SECONDS = 900.0  # a credential used by a create this recently is kept

_log = get_logger("vk_trio.providers.runpod")


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
        self._list_lock = trio.Lock()
        self._housekept = False  # housekeep() ran since the last list
        self._listed: builtins.list[models.Pod] = []  # our pods as the last list showed them
        self._attempted: dict[str, int] = {}  # key → lists begun when we last sent its create
        self._lists = 0  # lists of the account begun so far
        self._recent: tuple[float, int, PodListing] | None = None  # began, #, pods
        self._creating = 0  # creates in flight: log reads wait for them (exits.py)
        self.reader = LogReader(
            self.client, first_timeout=log_first_timeout, idle_timeout=log_idle_timeout
        )
        self.exits = ExitWatch(self._marker_lines)
        self._registries: dict[str, str] = {}  # credential name → RunPod registry id
        self._registry_used: dict[str, float] = {}  # registry id → trio time of its last use
        self._registry_gc_at = -math.inf
        self._registry_prefix = (
            f"{REGISTRY_PREFIX}{hashlib.sha256(node_name.encode()).hexdigest()[:8]}-"
        )
        self.rows = RowFaults(self.name)
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
            # a key this process already sent a create for needs a list begun since then; for
            # any other, a list of the last seconds finds what an earlier process rented
            since = trio.current_time() - LOOKUP_FRESH_SECONDS
            existing = await self._find(spec, since=since, after=self._attempted.get(spec.key))
            if existing is not None:
                return existing
            default_command, wrap = await self._program(spec)
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
                registry=await self._registry(spec, options),
                default_command=default_command,
                nonce=exit_marker.new_nonce() if wrap else None,
            )
            return await self._create(spec, request)

    async def _program(self, spec: InstanceSpec) -> tuple[tuple[str, ...], bool]:
        """(the image's CMD where the pod sets no command, whether to wrap the program).

        A Job is always wrapped: its exit code ends it. An ``Always`` pod is wrapped only where
        that cannot change what runs: it sets ``command``, or its image has no ENTRYPOINT
        (read from the registry); otherwise it runs as written (mapping.py).
        """
        if spec.wants_exit_code:
            return await self._default_command(spec), True
        if spec.command:
            return (), True
        if not spec.image:
            return (), False  # a template's start command: not ours to wrap
        try:
            config = await self.images.read(spec.image, spec.registry_auth)
        except CloudError as exc:
            _log.info("%s: running %s unwrapped (%s)", spec.pod_name, spec.image, exc)
            return (), False
        if config.entrypoint:
            return (), False
        return (() if spec.args else config.cmd), bool(spec.args or config.cmd)

    async def _default_command(self, spec: InstanceSpec) -> tuple[str, ...]:
        """The image's CMD, for a Job that sets no command (the wrapper must know what to run).

        RunPod runs the image's ENTRYPOINT itself, with the wrapper as its arguments; an
        ENTRYPOINT without a CMD leaves the wrapper nothing to run, so such a Job is refused.
        """
        if spec.command or spec.args:
            return ()
        config = await self.images.read(spec.image, spec.registry_auth)
        if config.cmd:
            return config.cmd
        if config.entrypoint:
            raise InvalidSpec(
                f"image {spec.image} has ENTRYPOINT {list(config.entrypoint)} and no CMD; "
                "RunPod cannot replace an ENTRYPOINT, so vk-trio cannot wrap it to read this "
                "Job's exit code: set the container's command"
            )
        raise InvalidSpec(f"image {spec.image} has no default command: set the container's command")

    async def _create(self, spec: InstanceSpec, request: models.CreatePodRequest) -> Instance:
        failure: ProviderUnavailable | None = None
        for attempt in range(self.create_attempts):
            try:
                self._creating += 1
                self._attempted[spec.key] = self._lists
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
                found = await self._find(spec, since=trio.current_time(), after=self._lists)
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

    async def _find(
        self, spec: InstanceSpec, *, since: float, after: int | None = None
    ) -> Instance | None:
        """The pod of ``spec.key``, from a list that began at or after ``since`` (and after
        list number ``after``: one begun after a create we sent); also one we cannot read in
        full: it exists, so renting another would pay twice."""
        name = mapping.instance_name(spec.node_name, spec.key)
        listing = await self._pods_since(since, after=after)
        for pod in listing.pods:
            if pod.name == name and pod.status != "TERMINATED":
                return self._instance(pod)
        for stub, exc in listing.unreadable:
            if stub.name == name and stub.status != "TERMINATED":
                return self._placeholder(stub, exc)
        return None

    async def _pods_since(self, since: float, *, after: int | None = None) -> PodListing:
        """The account's pods, from a list that began at or after ``since`` and after list
        number ``after``: one list serves every create of a burst that looks before it rents
        (v2 cannot filter by name, and a list per create doubled what a burst spends of the
        account's quota)."""
        async with self._list_lock:
            recent = self._recent
            if recent is not None and recent[0] >= since and (after is None or recent[1] > after):
                return recent[2]
            return await self._list_all()

    async def _list_all(self) -> PodListing:
        started, self._lists = trio.current_time(), self._lists + 1
        number = self._lists
        listing = await self.client.list_pods()
        if self._recent is None or self._recent[1] < number:
            self._recent = (started, number, listing)
        return listing

    def _instance(self, pod: models.Pod) -> Instance | None:
        """``mapping.to_instance`` behind a barrier: a pod it cannot read is a placeholder."""
        try:
            exit, restarts, last_exit = self.exits.instance_fields(pod.id)
            instance = mapping.to_instance(
                pod,
                node_name=self.node_name,
                exit=exit,
                restarts=restarts,
                last_exit=last_exit,
            )
        except Exception as exc:  # one pod's odd answer is that pod's problem (rows.py)
            return self._placeholder(models.PodStub(id=pod.id, name=pod.name), exc)
        if instance is not None:
            self.rows.read(pod.id)
        return instance

    def _placeholder(self, stub: models.PodStub, exc: BaseException) -> Instance | None:
        owner = mapping.parse_name(stub.name, self.node_name)
        if owner is None:
            if stub.name.startswith(mapping.NAME_PREFIX):
                self.rows.skipped(stub.id, exc)
            return None
        uid, attempt = owner
        return self.rows.placeholder(
            instance_id=stub.id, node_name=self.node_name, pod_uid=uid, attempt=attempt, exc=exc
        )

    async def _registry(self, spec: InstanceSpec, options: RunPodOptions) -> str | None:
        """The registry credential id: the annotation's, or one made from imagePullSecrets.

        One RunPod credential per (node, credential), named by a hash of both, so a restart
        finds it again and another node's garbage collection never takes it away; it is
        deleted once no pod uses it (``_collect_registries``)."""
        if options.registry_auth_id:
            return options.registry_auth_id
        auth = spec.registry_auth
        if auth is None:
            return None
        digest = hashlib.sha256(
            f"{auth.server}\0{auth.username}\0{auth.password}".encode()
        ).hexdigest()
        name = f"{self._registry_prefix}{digest[:16]}"
        found = self._registries.get(name)
        if found is None:
            found = await self._find_or_create_registry(name, auth)
        self._registry_used[found] = trio.current_time()
        return found

    async def _find_or_create_registry(self, name: str, auth: RegistryAuth) -> str:
        for _ in range(2):
            for registry in await self.client.list_registries():
                if registry.name == name:
                    self._registries[name] = registry.id
                    return registry.id
            try:
                created = await self.client.create_registry(
                    models.CreateRegistryRequest(
                        name=name, username=auth.username, password=auth.password
                    )
                )
            except NoCapacity:  # 400: another create won the race for the name; look again
                continue
            self._registries[name] = created.id
            return created.id
        raise ProviderUnavailable(f"could not create the registry credential {name}")

    async def _collect_registries(self, listing: PodListing) -> None:
        """Delete this node's registry credentials that no pod uses any more.

        At most every ``REGISTRY_GC_SECONDS``; a credential used by a create in the last
        ``REGISTRY_GRACE_SECONDS`` is kept (its pod may not be listed yet), and nothing is
        collected while a pod of the account cannot be read (it may be the one using it).
        RunPod itself refuses to delete a credential a pod uses (400), which is kept too."""
        now = trio.current_time()
        if now < self._registry_gc_at or listing.unreadable or listing.skipped:
            return
        self._registry_gc_at = now + REGISTRY_GC_SECONDS
        in_use = {p.registry for p in listing.pods if p.registry and p.status != "TERMINATED"}
        try:
            registries = await self.client.list_registries()
            for registry in registries:
                recent = now - self._registry_used.get(registry.id, -math.inf)
                if (
                    not registry.name.startswith(self._registry_prefix)
                    or registry.id in in_use
                    or recent < REGISTRY_GRACE_SECONDS
                ):
                    continue
                if await self.client.delete_registry(registry.id):
                    self._registries.pop(registry.name, None)
                    self._registry_used.pop(registry.id, None)
        except CloudError:
            self._registry_gc_at = now  # try again with the next list()

    # --- list and delete ---------------------------------------------------------------------

    async def list(self) -> list[Instance]:
        listing = await self._list_all()
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
        out = [found for pod in pods if (found := self._instance(pod)) is not None]
        for stub, exc in listing.unreadable:
            if stub.status != "TERMINATED":
                placeholder = self._placeholder(stub, exc)
                if placeholder is not None:
                    out.append(placeholder)
        await self._collect_registries(listing)
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
        if len(self._attempted) > 4 * MAX_ATTEMPTED:  # keys of pods long gone: forget the oldest
            for key in sorted(self._attempted, key=self._attempted.__getitem__)[:MAX_ATTEMPTED]:
                del self._attempted[key]

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
