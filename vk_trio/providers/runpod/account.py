"""The RunPod account's pods as this node's instances: shared lists, look-ups by name, reading.

Why one list serves many: a create must look for its pod by name before every create and retry,
because a create can answer 500 (or time out) after RunPod created the pod, and RunPod bills it.
REST v2 cannot filter pods by name, so every look-up is a list of the whole account; a list per
create doubled what a burst of creates spends of the account's quota. So a look-up may use a
list that began recently enough (and, for a key this process already sent a create for, one
that began after that create was sent), and concurrent look-ups wait for one list.

Why reading has a barrier: one pod of odd shape must not stop the node's list (providers/
rows.py). A pod that cannot be read in full but whose name says whose it is becomes a
placeholder, so its pod is never rented twice and it can still be deleted.
"""

from __future__ import annotations

import trio

from vk_trio.providers.base import Instance, InstanceSpec
from vk_trio.providers.rows import RowFaults
from vk_trio.providers.runpod import mapping, models
from vk_trio.providers.runpod.client import PodListing, RunPodClient
from vk_trio.providers.runpod.exits import ExitWatch

LOOKUP_FRESH_SECONDS = 2.0  # a create's look-up by name may use a list this recent
MAX_ATTEMPTED = 10_000


class Account:
    """Lists of one RunPod account, counted, and its pods read as one node's ``Instance``s."""

    def __init__(
        self, client: RunPodClient, *, node_name: str, exits: ExitWatch, rows: RowFaults
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.exits = exits
        self.rows = rows
        self.lists = 0  # lists of the account begun so far
        self._lock = trio.Lock()
        self._attempted: dict[str, int] = {}  # key → lists begun when we last sent its create
        self._recent: tuple[float, int, PodListing] | None = None  # began, #, pods

    async def list(self) -> PodListing:
        """A new list of the account's pods (it serves the look-ups that may use it)."""
        started, self.lists = trio.current_time(), self.lists + 1
        number = self.lists
        listing = await self.client.list_pods()
        if self._recent is None or self._recent[1] < number:
            self._recent = (started, number, listing)
        return listing

    async def _since(self, since: float, *, after: int | None = None) -> PodListing:
        """The account's pods, from a list that began at or after ``since`` and after list
        number ``after``: one list serves every create of a burst that looks before it rents."""
        async with self._lock:
            recent = self._recent
            if recent is not None and recent[0] >= since and (after is None or recent[1] > after):
                return recent[2]
            return await self.list()

    def sending(self, key: str) -> None:
        """A create of ``key`` is about to be sent: its look-ups from now on need a later list."""
        self._attempted[key] = self.lists

    def prune(self) -> None:
        """Past ``4 * MAX_ATTEMPTED`` keys (pods long gone, mostly), forget the oldest sent."""
        if len(self._attempted) > 4 * MAX_ATTEMPTED:
            for key in sorted(self._attempted, key=self._attempted.__getitem__)[:MAX_ATTEMPTED]:
                del self._attempted[key]

    async def before_create(self, spec: InstanceSpec) -> Instance | None:
        """The pod of ``spec.key`` if one exists: a key this process already sent a create for
        needs a list begun since then; for any other, a list of the last seconds finds what an
        earlier process rented."""
        since = trio.current_time() - LOOKUP_FRESH_SECONDS
        return await self._find(spec, since=since, after=self._attempted.get(spec.key))

    async def after_failed_create(self, spec: InstanceSpec) -> Instance | None:
        """The pod of ``spec.key`` if the create that failed made it after all: a new list."""
        return await self._find(spec, since=trio.current_time(), after=self.lists)

    async def _find(
        self, spec: InstanceSpec, *, since: float, after: int | None = None
    ) -> Instance | None:
        """The pod of ``spec.key``, from a list that began at or after ``since`` (and after
        list number ``after``: one begun after a create we sent); also one we cannot read in
        full: it exists, so renting another would pay twice."""
        name = mapping.instance_name(spec.node_name, spec.key)
        listing = await self._since(since, after=after)
        for pod in listing.pods:
            if pod.name == name and pod.status != "TERMINATED":
                return self.instance(pod)
        for stub, exc in listing.unreadable:
            if stub.name == name and stub.status != "TERMINATED":
                return self.placeholder(stub, exc)
        return None

    def instance(self, pod: models.Pod) -> Instance | None:
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
            return self.placeholder(models.PodStub(id=pod.id, name=pod.name), exc)
        if instance is not None:
            self.rows.read(pod.id)
        return instance

    def placeholder(self, stub: models.PodStub, exc: BaseException) -> Instance | None:
        """A pod of this node that cannot be read in full (None: its name is not this node's)."""
        owner = mapping.parse_name(stub.name, self.node_name)
        if owner is None:
            if stub.name.startswith(mapping.NAME_PREFIX):
                self.rows.skipped(stub.id, exc)
            return None
        uid, attempt = owner
        return self.rows.placeholder(
            instance_id=stub.id, node_name=self.node_name, pod_uid=uid, attempt=attempt, exc=exc
        )
