"""RunPod registry credentials made from a pod's imagePullSecrets, and collected when unused.

RunPod pulls a private image only with a registry credential stored in the account and named
by id in the create request (``containerRegistryAuthId``). A pod may name one itself
(``runpod.io/container-registry-auth-id``); otherwise the credential its imagePullSecrets
resolved to (``InstanceSpec.registry_auth``) is stored for it.

Why the bookkeeping: a credential in the account is a secret that outlives its pod, so each one
belongs to one (node, credential) pair, named ``vk-trio-<node hash>-<credential hash>``. A
restart finds its credentials again by name instead of storing duplicates, another node's
collection never takes away this node's, and a credential is deleted once no pod of the account
uses it. Creates race for a name: RunPod refuses the second (400), which then looks again.
"""

from __future__ import annotations

import hashlib
import math

import trio

from vk_trio.providers.base import (
    CloudError,
    InstanceSpec,
    NoCapacity,
    ProviderUnavailable,
    RegistryAuth,
)
from vk_trio.providers.runpod import models
from vk_trio.providers.runpod.annotations import RunPodOptions
from vk_trio.providers.runpod.client import PodListing, RunPodClient

REGISTRY_PREFIX = "vk-trio-"  # + 8 hex of the node name + "-" + 16 hex of the credential
REGISTRY_GC_SECONDS = 300.0  # how often unused registry credentials are looked for
REGISTRY_GRACE_SECONDS = 900.0  # a credential used by a create this recently is kept


class RegistryCredentials:
    """This node's registry credentials in one RunPod account."""

    def __init__(self, client: RunPodClient, node_name: str) -> None:
        self.client = client
        node = hashlib.sha256(node_name.encode()).hexdigest()[:8]
        self.prefix = f"{REGISTRY_PREFIX}{node}-"
        self._ids: dict[str, str] = {}  # credential name → RunPod registry id
        self._used: dict[str, float] = {}  # registry id → trio time of its last use
        self._collect_at = -math.inf

    async def for_pod(self, spec: InstanceSpec, options: RunPodOptions) -> str | None:
        """The registry credential id: the annotation's, or one made from imagePullSecrets."""
        if options.registry_auth_id:
            return options.registry_auth_id
        auth = spec.registry_auth
        if auth is None:
            return None
        digest = hashlib.sha256(
            f"{auth.server}\0{auth.username}\0{auth.password}".encode()
        ).hexdigest()
        name = f"{self.prefix}{digest[:16]}"
        found = self._ids.get(name)
        if found is None:
            found = await self._find_or_create(name, auth)
        self._used[found] = trio.current_time()
        return found

    async def _find_or_create(self, name: str, auth: RegistryAuth) -> str:
        for _ in range(2):
            for registry in await self.client.list_registries():
                if registry.name == name:
                    self._ids[name] = registry.id
                    return registry.id
            try:
                created = await self.client.create_registry(
                    models.CreateRegistryRequest(
                        name=name, username=auth.username, password=auth.password
                    )
                )
            except NoCapacity:  # 400: another create won the race for the name; look again
                continue
            self._ids[name] = created.id
            return created.id
        raise ProviderUnavailable(f"could not create the registry credential {name}")

    async def collect(self, listing: PodListing) -> None:
        """Delete this node's registry credentials that no pod uses any more.

        At most every ``REGISTRY_GC_SECONDS``; a credential used by a create in the last
        ``REGISTRY_GRACE_SECONDS`` is kept (its pod may not be listed yet), and nothing is
        collected while a pod of the account cannot be read (it may be the one using it).
        RunPod itself refuses to delete a credential a pod uses (400), which is kept too."""
        now = trio.current_time()
        if now < self._collect_at or listing.unreadable or listing.skipped:
            return
        self._collect_at = now + REGISTRY_GC_SECONDS
        in_use = {p.registry for p in listing.pods if p.registry and p.status != "TERMINATED"}
        try:
            registries = await self.client.list_registries()
            for registry in registries:
                recent = now - self._used.get(registry.id, -math.inf)
                if (
                    not registry.name.startswith(self.prefix)
                    or registry.id in in_use
                    or recent < REGISTRY_GRACE_SECONDS
                ):
                    continue
                if await self.client.delete_registry(registry.id):
                    self._ids.pop(registry.name, None)
                    self._used.pop(registry.id, None)
        except CloudError:
            self._collect_at = now  # try again with the next list()
