"""The simulated account: pods, registry credentials, templates, stock and billing, with v2 rules.

Routes (routes.py) validate requests against the OpenAPI document and then call in here for the
rules that live "at the handler layer" in the real API: exactly one of ``gpu``/``cpu`` (400),
mutually exclusive CUDA constraints and mounts (400), unknown templates (404), no capacity (the
measured 400 wording), actions not valid for the pod's status (409). Errors are raised as
``ApiError`` and turned into RFC 9457 problem bodies by the routes.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

from vk_trio.sim.registry import find_script
from vk_trio.sim.runpod.catalog import SECURE, Catalog
from vk_trio.sim.runpod.ledger import STORAGE_PER_GB_HOUR, Ledger
from vk_trio.sim.runpod.model import SimClock, SimPod, Timings
from vk_trio.sim.runpod.workloads import DEFAULT_WORKLOAD, Workload

NO_CAPACITY = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
CPU_PRICE_PER_VCPU = 0.03
CONTAINER_FIELDS = ("image", "args", "env", "ports", "disk", "registry")


class ApiError(Exception):
    def __init__(self, status: int, detail: str, *, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


@dataclass(kw_only=True)
class Registry:
    id: str
    name: str
    username: str
    password: str


@dataclass(kw_only=True)
class Template:
    id: str
    image: str
    args: str = ""
    env: dict[str, str] = field(default_factory=dict)
    ports: list[str] = field(default_factory=list)
    disk: int = 20


class Account:
    """Everything one RunPod account holds, on one clock."""

    def __init__(self, *, clock: SimClock, catalog: Catalog, timings: Timings, seed: int) -> None:
        self.clock = clock
        self.catalog = catalog
        self.timings = timings
        self.ledger = Ledger(clock.now)
        self.rng = random.Random(seed)
        self.pods: dict[str, SimPod] = {}
        self.gone: dict[str, SimPod] = {}  # terminated, kept for tests to inspect
        self.registries: dict[str, Registry] = {}
        self.templates: dict[str, Template] = {}
        self.workloads: dict[str, Workload] = {}
        self.forbidden: set[tuple[str, str | None]] = set()  # (gpu id, dc or None) → 403
        self.payment_required = False

    def new_id(self, length: int = 14) -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            candidate = "".join(self.rng.choice(alphabet) for _ in range(length))
            if candidate not in self.pods and candidate not in self.gone:
                return candidate

    def workload_for(self, image: str) -> Workload:
        return self.scripted(image) or DEFAULT_WORKLOAD

    def scripted(self, image: str) -> Workload | None:
        """The script of ``image`` (exact, or any tag of its repository); None: unscripted."""
        return find_script(self.workloads, image)

    # --- pods ------------------------------------------------------------------------------

    def live(self, now: float) -> list[SimPod]:
        for pod in self.pods.values():
            pod.advance(now)
        return list(self.pods.values())

    def get(self, pod_id: str, now: float) -> SimPod:
        pod = self.pods.get(pod_id)
        if pod is None:
            raise ApiError(404, "pod not found")
        pod.advance(now)
        return pod

    def create(self, body: dict[str, Any], now: float) -> SimPod:
        gpu, cpu = body.get("gpu"), body.get("cpu")
        if (gpu is None) == (cpu is None):
            raise ApiError(400, "exactly one of gpu or cpu must be set")
        if gpu and gpu.get("allowedCudaVersions") and gpu.get("minCudaVersion"):
            raise ApiError(400, "allowedCudaVersions and minCudaVersion are mutually exclusive")
        mounts = body.get("mounts") or {}
        if "persistent" in mounts and "network" in mounts:
            raise ApiError(400, "mounts.persistent and mounts.network are mutually exclusive")
        if cpu and "persistent" in mounts:
            raise ApiError(400, "mounts.persistent is not supported on CPU pods")
        config = self._container_config(body)
        registry = config["registry"]
        if registry is not None and registry not in self.registries:
            raise ApiError(400, f"container registry credential {registry} not found")
        if self.payment_required:
            raise ApiError(402, "insufficient balance to deploy this pod")
        cloud = body.get("cloud", SECURE)
        wanted = list(body.get("dataCenterIds") or [])
        unknown = [dc for dc in wanted if dc not in self.catalog.datacenters]
        if unknown:
            raise ApiError(400, f"unknown data center ids: {', '.join(unknown)}")
        if gpu:
            gpu_id, count = gpu["id"], int(gpu.get("count", 1))
            gpu_type = self.catalog.gpus.get(gpu_id)
            if gpu_type is None:
                raise ApiError(400, f"unknown GPU type: {gpu_id}")
            if (gpu_id, None) in self.forbidden or any(
                (gpu_id, dc) in self.forbidden for dc in wanted
            ):
                raise ApiError(403, "access denied")
            dc = None
            if count <= gpu_type.max_count(cloud):
                dc = self.catalog.take(gpu_id, cloud, count, wanted)
            if dc is None:
                raise ApiError(400, NO_CAPACITY)
            price = gpu_type.price(cloud)
        else:
            assert cpu is not None
            gpu_id, count = "", 0
            dc = wanted[0] if wanted else next(iter(self.catalog.datacenters))
            price = CPU_PRICE_PER_VCPU * int(cpu["vcpuCount"])
        workload = self.workload_for(config["image"])
        pull_ok = True
        if workload.registry_username is not None:
            cred = self.registries.get(registry or "")
            pull_ok = cred is not None and cred.username == workload.registry_username
        pod = SimPod(
            id=self.new_id(),
            name=body["name"],
            mounts=mounts,
            cloud=cloud,
            datacenter=dc,
            gpu_id=gpu_id,
            gpu_count=count,
            price_per_gpu=price,
            workload=workload,
            timings=self.timings,
            created=now,
            pull_ok=pull_ok,
            rng=random.Random(self.rng.random()),
            cuda_version=None if cpu else "12.8",
            cpu=None if not cpu else {**cpu, "memory": 4 * int(cpu["vcpuCount"])},
            **config,
        )
        self.pods[pod.id] = pod
        pod.boot(now)
        self.ledger.open(pod.id, "compute", self._compute_rate(pod), at=now)
        return pod

    def _container_config(self, body: dict[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {
            "image": "",
            "args": "",
            "env": {},
            "ports": [],
            "disk": 20,
            "registry": None,
        }
        template_id = body.get("templateId")
        if template_id is not None:
            template = self.templates.get(template_id)
            if template is None:
                raise ApiError(404, f"template {template_id} not found")
            config.update(
                image=template.image,
                args=template.args,
                env=dict(template.env),
                ports=list(template.ports),
                disk=template.disk,
            )
        for key in CONTAINER_FIELDS:
            if key in body:
                config[key] = {**config["env"], **body[key]} if key == "env" else body[key]
        return config

    def _compute_rate(self, pod: SimPod) -> float:
        return pod.rate_per_hour()

    def update(self, pod: SimPod, body: dict[str, Any], now: float) -> SimPod:
        mounts = body.get("mounts") or {}
        if mounts.get("network") == []:
            raise ApiError(400, "clearing mounts is not supported")
        for kind in ("persistent", "network"):
            if kind in mounts and kind not in pod.mounts:
                raise ApiError(400, f"cannot add a {kind} mount after create")
        registry = body.get("registry")
        if registry is not None and registry not in self.registries:
            raise ApiError(400, f"container registry credential {registry} not found")
        changed = any(key in body and body[key] != getattr(pod, key) for key in CONTAINER_FIELDS)
        for key in ("name", "locked", *CONTAINER_FIELDS):
            if key in body:
                setattr(pod, key, body[key])
        if mounts:
            pod.mounts = {**pod.mounts, **mounts}
        if changed:
            pod.workload = self.workload_for(pod.image)
            pod.reset(now)
        return pod

    def act(self, pod: SimPod, action: str, now: float) -> None:
        if action not in pod.to_json(now, self.clock)["actions"]:
            raise ApiError(409, f"action {action} is not valid for a pod in status {pod.status()}")
        if action == "stop":
            if pod.locked:
                raise ApiError(409, "pod is locked")
            self._release(pod)
            pod.stop(now)
            self.ledger.open(pod.id, "storage", pod.disk_gb() * STORAGE_PER_GB_HOUR, at=now)
        elif action == "start":
            if pod.gpu_count:
                got = self.catalog.take(pod.gpu_id, pod.cloud, pod.gpu_count, [pod.datacenter])
                if got is None:
                    raise ApiError(400, NO_CAPACITY)
            pod.start(now)
            self.ledger.open(pod.id, "compute", self._compute_rate(pod), at=now)
        elif action == "restart":
            pod.restart(now)
        else:
            self.terminate(pod, now)

    def terminate(self, pod: SimPod, now: float) -> None:
        if pod.holds_gpus():
            self._release(pod)
        pod.terminate(now)
        self.ledger.close(pod.id, at=now)
        self.gone[pod.id] = self.pods.pop(pod.id)

    def _release(self, pod: SimPod) -> None:
        if pod.gpu_count:
            self.catalog.give_back(pod.gpu_id, pod.datacenter, pod.cloud, pod.gpu_count)

    # --- registries ----------------------------------------------------------------------

    def create_registry(self, body: dict[str, Any]) -> Registry:
        if any(r.name == body["name"] for r in self.registries.values()):
            raise ApiError(400, f"a registry credential named {body['name']} already exists")
        registry = Registry(
            id=self.new_id(8),
            name=body["name"],
            username=body["username"],
            password=body["password"],
        )
        self.registries[registry.id] = registry
        return registry

    def delete_registry(self, registry_id: str) -> None:
        if registry_id not in self.registries:
            raise ApiError(404, "registry not found")
        if any(pod.registry == registry_id for pod in self.pods.values()):
            raise ApiError(400, "registry credential is in use by a pod")
        del self.registries[registry_id]
