"""A container's environment, resolved the way the kubelet resolves it, for a cloud instance.

A cloud GPU instance gets a flat ``NAME=value`` list when it is created and nothing after, so
every reference in ``env``/``envFrom`` must be turned into a value here, before ``create``. The
rules are the kubelet's (``makeEnvironmentVariables`` in ``pkg/kubelet/kubelet_pods.go``), not
the virtual-kubelet library's, which drops ``resourceFieldRef`` silently and fails pods that ask
for ``status.podIP`` (virtual-kubelet#451):

1. ``envFrom`` in order (ConfigMap/Secret, ``prefix``; later sources override earlier ones);
2. ``env`` in order, overriding ``envFrom``: ``value`` with ``$(VAR)`` expansion against what is
   defined so far and the service variables (pods/expansion.py); ``configMapKeyRef`` /
   ``secretKeyRef`` honouring ``optional``; ``fieldRef``; ``resourceFieldRef`` (with divisor,
   rounded up; a missing limit means the node's allocatable);
3. service-link variables (``<SVC>_SERVICE_HOST`` ...) for names not already set.

Where we differ from the kubelet, on purpose:

* ``status.podIP``/``podIPs`` resolve to ``pod_ip`` as passed by the caller. The kubelet knows
  the sandbox IP before the container starts; a cloud instance gets its address only after it
  exists, when its environment is already fixed. So the value is whatever the caller knows at
  creation (usually ``""``), and an ``EnvWarning`` (``PodIPUnknown``) says so, rather than an
  error that would leave the pod Pending forever. ``status.hostIP``/``hostIPs`` are ``host_ip``.
* ``envFrom`` keys that are not C-style names (``[-._a-zA-Z][-._a-zA-Z0-9]*``) are skipped with
  ``InvalidEnvironmentVariableNames`` as the kubelet did before relaxed name validation: these
  names travel through cloud APIs and shells we do not control.
* Optional misses produce an ``EnvWarning`` for an Event (the kubelet is silent); mandatory
  misses raise ``MissingReference`` so the caller can set ``CreateContainerConfigError``, record
  an Event and retry later. Errors other than "not found" propagate, as in the kubelet.

Secret values never appear in an exception, a warning or a repr. ``ResolvedEnv.secret_names``
lists every variable whose value came from a Secret, directly or through ``$(VAR)``.

This module reads objects and keeps the books; the computations themselves (expansion, fieldRef,
resourceFieldRef, service-link variables) are pure functions in pods/expansion.py.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import trio

from vk_trio.errors import NotFound, VkError
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import (
    ConfigMap,
    Container,
    EnvFromSource,
    EnvVar,
    ObjectFieldSelector,
    Pod,
    Secret,
    Service,
)
from vk_trio.kube.resources import CONFIGMAPS, SECRETS, SERVICES
from vk_trio.pods.expansion import (
    POD_IP_PATHS,
    expand,
    field_path_value,
    has_cluster_ip,
    resource_value,
    service_link_variables,
)

MASTER_SERVICE_NAMESPACE = "default"
MASTER_SERVICE_NAME = "kubernetes"  # its variables are added even when service links are off
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")

# --- errors and warnings ------------------------------------------------------------------------


class EnvError(VkError):
    """The environment cannot be resolved now; the container waits with ``reason``."""

    reason = "CreateContainerConfigError"


class MissingReference(EnvError):
    """A mandatory ConfigMap/Secret, or a key in it, does not exist (yet): retry later.

    ``key`` is ``None`` when the whole object is missing. ``event_reason`` is the Event reason
    (``MandatorySecretNotFound``, ``MandatoryConfigMapKeyNotFound`` ...).
    """

    def __init__(
        self, *, kind: str, namespace: str, name: str, key: str | None, env_var: str | None
    ) -> None:
        self.kind = kind  # "Secret" or "ConfigMap"
        self.namespace = namespace
        self.name = name
        self.key = key
        self.env_var = env_var  # None for envFrom
        where = f"{kind} {namespace}/{name}"
        what = f"{where} not found" if key is None else f"key {key!r} not found in {where}"
        user = f"env var {env_var}" if env_var else "envFrom"
        super().__init__(f"{what} (needed by {user})")

    @property
    def event_reason(self) -> str:
        return f"Mandatory{self.kind}{'' if self.key is None else 'Key'}NotFound"


class InvalidEnvSource(EnvError):
    """A reference the kubelet would also refuse: an unknown fieldPath, resource or container,
    a malformed quantity, Secret data that is not base64. Retrying only helps after an edit."""


@dataclass(frozen=True)
class EnvWarning:
    """Something worth a Warning Event on the pod; never carries a value."""

    reason: str
    message: str


@dataclass(frozen=True)
class ResolvedEnv:
    """A container's final environment. ``repr`` shows names only, never values."""

    values: dict[str, str]
    secret_names: frozenset[str]
    warnings: list[EnvWarning]

    def redacted(self) -> dict[str, str]:
        """``values`` with every secret-derived value replaced, for logs and debugging."""
        return {k: "<redacted>" if k in self.secret_names else v for k, v in self.values.items()}

    def __repr__(self) -> str:
        return (
            f"ResolvedEnv(names={list(self.values)!r}, "
            f"secret_names={sorted(self.secret_names)!r}, warnings={self.warnings!r})"
        )


# --- where ConfigMaps, Secrets and Services come from -------------------------------------------


class ObjectSource(Protocol):
    """Reads the objects env resolution needs; ``None`` means "does not exist"."""

    async def get_secret(self, namespace: str, name: str) -> Secret | None: ...

    async def get_config_map(self, namespace: str, name: str) -> ConfigMap | None: ...

    async def list_services(self, namespace: str) -> list[Service]: ...


class KubeObjectSource:
    """``ObjectSource`` over the API: one GET per object, one LIST per namespace's Services.

    No informers: a node agent that watches every Secret in the cluster is a memory and RBAC
    problem (virtual-kubelet#1311, liqo#2436). NotFound becomes ``None``; other errors propagate.
    Secrets and ConfigMaps are always read fresh (a pod waiting for one must see it appear);
    a namespace's Services are reused for ``services_ttl`` seconds, because service links only
    matter at create time and a burst of 1,000 pods in one namespace must not LIST them 1,000
    times.
    """

    def __init__(self, client: KubeClient, *, services_ttl: float = 30.0) -> None:
        self._client = client
        self._services_ttl = services_ttl
        self._services: dict[str, tuple[float, list[Service]]] = {}
        self._listing: dict[str, trio.Lock] = {}  # one LIST in flight per namespace

    async def get_secret(self, namespace: str, name: str) -> Secret | None:
        try:
            return await self._client.get(SECRETS, name, namespace=namespace)
        except NotFound:
            return None

    async def get_config_map(self, namespace: str, name: str) -> ConfigMap | None:
        try:
            return await self._client.get(CONFIGMAPS, name, namespace=namespace)
        except NotFound:
            return None

    async def list_services(self, namespace: str) -> list[Service]:
        async with self._listing.setdefault(namespace, trio.Lock()):
            now = trio.current_time()
            cached = self._services.get(namespace)
            if cached is not None and now - cached[0] < self._services_ttl:
                return cached[1]
            services = (await self._client.list(SERVICES, namespace=namespace)).items
            self._services[namespace] = (now, services)
            return services


class MemoizedSource:
    """Fetches each object at most once. ``resolve_env`` wraps its source in one unless it is
    one already, so pass the same ``MemoizedSource`` for every container of a pod to share it."""

    def __init__(self, source: ObjectSource) -> None:
        self._source = source
        self._secrets: dict[tuple[str, str], Secret | None] = {}
        self._config_maps: dict[tuple[str, str], ConfigMap | None] = {}
        self._services: dict[str, list[Service]] = {}

    async def get_secret(self, namespace: str, name: str) -> Secret | None:
        if (namespace, name) not in self._secrets:
            self._secrets[namespace, name] = await self._source.get_secret(namespace, name)
        return self._secrets[namespace, name]

    async def get_config_map(self, namespace: str, name: str) -> ConfigMap | None:
        if (namespace, name) not in self._config_maps:
            found = await self._source.get_config_map(namespace, name)
            self._config_maps[namespace, name] = found
        return self._config_maps[namespace, name]

    async def list_services(self, namespace: str) -> list[Service]:
        if namespace not in self._services:
            self._services[namespace] = await self._source.list_services(namespace)
        return self._services[namespace]


# --- resolution ---------------------------------------------------------------------------------


async def resolve_env(
    pod: Pod,
    container: Container,
    *,
    source: ObjectSource,
    pod_ip: str = "",
    host_ip: str = "",
    node_allocatable: Mapping[str, str] | None = None,
) -> ResolvedEnv:
    """Resolve ``container``'s environment (see the module docstring for the rules).

    Raises:
        MissingReference: a mandatory ConfigMap/Secret or key is missing (retry later).
        InvalidEnvSource: a reference that can never resolve (unsupported field or resource).
        KubeError: reading an object failed for another reason than "not found".
    """
    memo = source if isinstance(source, MemoizedSource) else MemoizedSource(source)
    run = _Resolution(pod, memo, pod_ip=pod_ip, host_ip=host_ip)
    service_env = await _service_env(memo, pod)
    for env_from in container.env_from:
        await run.add_env_from(env_from)
    allocatable = node_allocatable or {}
    for var in container.env:
        await run.add_env_var(var, container, service_env, allocatable)
    for name, value in service_env.items():
        run.values.setdefault(name, value)
    return ResolvedEnv(values=run.values, secret_names=frozenset(run.secret), warnings=run.warnings)


class _Resolution:
    """The state of one container's resolution: values so far, which are secret, warnings."""

    def __init__(self, pod: Pod, memo: MemoizedSource, *, pod_ip: str, host_ip: str) -> None:
        self.pod, self.memo, self.pod_ip, self.host_ip = pod, memo, pod_ip, host_ip
        self.namespace = pod.metadata.namespace
        self.values: dict[str, str] = {}
        self.secret: set[str] = set()
        self.warnings: list[EnvWarning] = []

    def set(self, name: str, value: str, *, secret: bool) -> None:
        self.values[name] = value
        (self.secret.add if secret else self.secret.discard)(name)

    def warn(self, reason: str, message: str) -> None:
        self.warnings.append(EnvWarning(reason, message))

    async def add_env_from(self, env_from: EnvFromSource) -> None:
        secret: Secret | None = None
        if env_from.config_map_ref is not None:
            kind, ref = "ConfigMap", env_from.config_map_ref
            cm = await self.memo.get_config_map(self.namespace, ref.name)
            data = None if cm is None else cm.data
        elif env_from.secret_ref is not None:
            kind, ref = "Secret", env_from.secret_ref
            secret = await self.memo.get_secret(self.namespace, ref.name)
            data = None if secret is None else secret.data
        else:
            return  # no source the API server knows of; the kubelet ignores it too
        if data is None:
            self.missing(kind, ref.name, None, None, optional=bool(ref.optional))
            return
        invalid: list[str] = []
        for key in sorted(data):
            name = env_from.prefix + key
            if not _ENV_NAME.fullmatch(name) or name == "." or name.startswith(".."):
                invalid.append(name)
            elif secret is not None:
                self.set(name, self.decode(secret, ref.name, key), secret=True)
            else:
                self.set(name, data[key], secret=False)
        if invalid:
            self.warn(
                "InvalidEnvironmentVariableNames",
                f"Keys [{', '.join(invalid)}] from the EnvFrom {kind} {self.namespace}/"
                f"{ref.name} were skipped since they are invalid environment variable names.",
            )

    async def add_env_var(
        self,
        var: EnvVar,
        container: Container,
        service_env: Mapping[str, str],
        allocatable: Mapping[str, str],
    ) -> None:
        source = var.value_from
        if var.value or source is None:
            used: list[str] = []

            def lookup(name: str) -> str | None:
                found = self.values.get(name, service_env.get(name))
                if found is not None:
                    used.append(name)
                return found

            value = expand(var.value or "", lookup)
            self.set(var.name, value, secret=any(name in self.secret for name in used))
        elif source.field_ref is not None:
            self.set(var.name, self.field_value(var.name, source.field_ref), secret=False)
        elif source.resource_field_ref is not None:
            ref = source.resource_field_ref
            try:
                value = resource_value(ref, self.pod, container, allocatable)
            except ValueError as exc:
                raise InvalidEnvSource(f"env var {var.name}: {exc}") from None
            self.set(var.name, value, secret=False)
        elif (ref_ := source.config_map_key_ref) is not None:
            cm = await self.memo.get_config_map(self.namespace, ref_.name)
            found = None if cm is None else cm.data.get(ref_.key)
            if found is None:
                key = None if cm is None else ref_.key
                self.missing("ConfigMap", ref_.name, key, var.name, optional=bool(ref_.optional))
            else:
                self.set(var.name, found, secret=False)
        elif (ref_ := source.secret_key_ref) is not None:
            secret = await self.memo.get_secret(self.namespace, ref_.name)
            if secret is None or ref_.key not in secret.data:
                key = None if secret is None else ref_.key
                self.missing("Secret", ref_.name, key, var.name, optional=bool(ref_.optional))
            else:
                self.set(var.name, self.decode(secret, ref_.name, ref_.key), secret=True)
        else:
            raise InvalidEnvSource(f"env var {var.name}: valueFrom has no source vk-trio supports")

    def missing(
        self, kind: str, name: str, key: str | None, env_var: str | None, *, optional: bool
    ) -> None:
        if not optional:
            raise MissingReference(
                kind=kind, namespace=self.namespace, name=name, key=key, env_var=env_var
            )
        what = f"{kind} {self.namespace}/{name}"
        if key is not None:
            what = f"key {key!r} of {what}"
        skipped = f"env var {env_var}" if env_var else "envFrom"
        reason = f"Optional{kind}{'' if key is None else 'Key'}NotFound"
        self.warn(reason, f"{what} not found; optional, so {skipped} is skipped")

    def decode(self, secret: Secret, name: str, key: str) -> str:
        """Secret data is base64 on the wire; a value is decoded here and never echoed."""
        try:
            raw = base64.b64decode(secret.data[key], validate=True)
        except (binascii.Error, ValueError):
            where = f"key {key!r} of Secret {self.namespace}/{name}"
            raise InvalidEnvSource(f"{where} is not valid base64") from None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            where = f"key {key!r} of Secret {self.namespace}/{name}"
            self.warn("SecretValueNotUTF8", f"{where} is not UTF-8; bad bytes were replaced")
            return raw.decode(errors="replace")

    def field_value(self, var_name: str, ref: ObjectFieldSelector) -> str:
        if ref.api_version not in ("", "v1"):
            raise InvalidEnvSource(
                f"env var {var_name}: fieldRef apiVersion {ref.api_version!r} is not supported"
            )
        try:
            value = field_path_value(
                self.pod, ref.field_path, pod_ip=self.pod_ip, host_ip=self.host_ip
            )
        except ValueError as exc:
            raise InvalidEnvSource(f"env var {var_name}: {exc}") from None
        if ref.field_path in POD_IP_PATHS and not value:
            self.warn(
                "PodIPUnknown",
                f"env var {var_name} asks for {ref.field_path}, which is not known before the "
                "cloud instance exists; it is set to an empty string",
            )
        return value


async def _service_env(memo: MemoizedSource, pod: Pod) -> dict[str, str]:
    """The kubelet's ``getServiceEnvVarMap``: the pod namespace's Services when service links
    are on (the default), and ``default/kubernetes`` always. A Service of the pod's namespace
    that is also called ``kubernetes`` wins over the master one, as in the kubelet."""
    chosen: dict[str, Service] = {}
    if pod.spec.enable_service_links is not False:
        for svc in await memo.list_services(pod.metadata.namespace):
            if has_cluster_ip(svc):
                chosen[svc.metadata.name] = svc
    if MASTER_SERVICE_NAME not in chosen:
        for svc in await memo.list_services(MASTER_SERVICE_NAMESPACE):
            if svc.metadata.name == MASTER_SERVICE_NAME and has_cluster_ip(svc):
                chosen[MASTER_SERVICE_NAME] = svc
    return service_link_variables(chosen[name] for name in sorted(chosen))
