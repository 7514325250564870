"""Where each Kubernetes resource lives in the REST API, and which model decodes it.

A ``Resource`` knows its API prefix, plural name, whether it is namespaced and the msgspec model
of its objects, so the client can build paths and decode typed answers without string juggling
at call sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote

from vk_trio.kube import models

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Resource(Generic[T]):
    prefix: str  # "api/v1" or "apis/<group>/<version>"
    plural: str
    namespaced: bool
    model: type[T]
    kind: str

    @property
    def api_version(self) -> str:
        return self.prefix.removeprefix("apis/").removeprefix("api/")

    def path(
        self, *, namespace: str | None = None, name: str | None = None, subresource: str = ""
    ) -> str:
        parts = [self.prefix]
        if self.namespaced and namespace:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/" + "/".join(parts)


PODS = Resource("api/v1", "pods", True, models.Pod, "Pod")
NODES = Resource("api/v1", "nodes", False, models.Node, "Node")
EVENTS = Resource("api/v1", "events", True, models.Event, "Event")
SECRETS = Resource("api/v1", "secrets", True, models.Secret, "Secret")
CONFIGMAPS = Resource("api/v1", "configmaps", True, models.ConfigMap, "ConfigMap")
SERVICES = Resource("api/v1", "services", True, models.Service, "Service")
LEASES = Resource("apis/coordination.k8s.io/v1", "leases", True, models.Lease, "Lease")
JOBS = Resource("apis/batch/v1", "jobs", True, models.Job, "Job")
