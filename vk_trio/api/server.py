"""The kubelet API on ``--kubelet-address``:``--kubelet-port`` (HTTPS, 10250): what the API server
calls for ``kubectl logs`` and metrics-server for ``kubectl top``.

Every request is authenticated and authorised first (auth.py; 401/403 as the kubelet answers),
then routed: ``/containerLogs`` (logs.py), ``/pods``, ``/runningpods/``, ``/healthz``,
``/stats/summary`` and ``/metrics/resource`` (stats.py); exec, attach, portForward and run answer
501 naming the capability that will bring them. The server runs in its own nursery with the
bounded httpserver (connection cap, timeouts, header limit) and at most ``MAX_STREAMS_PER_USER``
followed logs per caller, so a flood of requests cannot stall the pod workers; requests are
counted by endpoint and status for /metrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import trio

from vk_trio.api.auth import Denied, Guard
from vk_trio.api.logs import container_logs, flag
from vk_trio.api.stats import resource_metrics, summary
from vk_trio.api.tls import ServingTls, load_client_ca
from vk_trio.api.view import LIVE, AgentView
from vk_trio.config import Config
from vk_trio.errors import ConfigError
from vk_trio.httpserver import Handler, Limits, Request, Response, Router, ServerStats, serve
from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import Pod
from vk_trio.logs import get_logger
from vk_trio.metrics import CONTENT_TYPE, Histogram, render

_log = get_logger("vk_trio.api")

MAX_STREAMS_PER_USER = 512
LIMITS = Limits(max_connections=4096, max_body_bytes=64 * 1024)
NOT_YET = (
    "{what} is not supported by vk-trio yet: a pod of this node runs on a cloud GPU instance, "
    "and streaming into it (exec, attach, port-forward) is a separate capability that has not "
    "landed. kubectl logs works."
)
STREAMING_ROUTES = (
    ("exec", "/exec/{namespace}/{pod}/{container}"),
    ("exec", "/exec/{namespace}/{pod}/{uid}/{container}"),
    ("attach", "/attach/{namespace}/{pod}/{container}"),
    ("attach", "/attach/{namespace}/{pod}/{uid}/{container}"),
    ("port-forward", "/portForward/{namespace}/{pod}"),
    ("port-forward", "/portForward/{namespace}/{pod}/{uid}"),
    ("run", "/run/{namespace}/{pod}/{container}"),
    ("run", "/run/{namespace}/{pod}/{uid}/{container}"),
)


FIRST_LINE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class ApiStats:
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (endpoint, status)
    decisions: Counter[str] = field(default_factory=Counter)  # allowed, forbidden, ...
    server: ServerStats = field(default_factory=ServerStats)
    # a followed log: the request's arrival to its first line sent (what the API server waits)
    first_line: Histogram = field(default_factory=lambda: Histogram(FIRST_LINE_BUCKETS))


class KubeletApi:
    def __init__(
        self,
        config: Config,
        client: KubeClient,
        agent: AgentView,
        *,
        cluster_ca_pem: bytes | None,
        node_ip: str,
    ) -> None:
        self.config = config
        self.client = client
        self.agent = agent
        self.stats = ApiStats()
        ca_file = Path(config.client_ca_file) if config.client_ca_file else None
        self.tls = ServingTls(
            client_ca_pem=load_client_ca(ca_file, cluster_ca_pem), client_ca_file=ca_file
        )
        if self.tls.client_ca_pem is None:
            _log.warning(
                "kubelet API: no client CA (the cluster CA is the system store): client "
                "certificates are not accepted, only bearer tokens; give --client-ca-file"
            )
        self.sans = (node_ip,)
        self.guard = Guard(client, node_name=config.node_name, on_decision=self._decided)
        self.router = self._routes()
        self.port: int | None = None
        self.ready = trio.Event()
        self._streams: Counter[str] = Counter()

    def _decided(self, outcome: str) -> None:
        self.stats.decisions[outcome] += 1

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        config = self.config
        async with trio.open_nursery() as nursery:
            if config.tls_cert_file and config.tls_key_file:
                await nursery.start(
                    self.tls.watch_files, Path(config.tls_cert_file), Path(config.tls_key_file)
                )
            elif config.serving_cert == "self-signed":
                self.tls.install_self_signed(node_name=config.node_name, sans=self.sans)
            else:
                store = Path(config.state_dir) / "pki" if config.state_dir else None
                keeper = self.tls.keeper(
                    self.client, node_name=config.node_name, sans=self.sans, store=store
                )
                await nursery.start(keeper.run)
            self.port = await nursery.start(self._serve)
            _log.info(
                "kubelet API listening on %s:%d (certificate: %s)",
                config.kubelet_address,
                self.port,
                self.tls.source,
            )
            self.ready.set()
            task_status.started(self.port)

    async def _serve(self, *, task_status: trio.TaskStatus[int]) -> None:
        try:
            await self._listen(task_status=task_status)
        except OSError as exc:  # the port is taken, or the address is not ours
            where = f"{self.config.kubelet_address}:{self.config.kubelet_port}"
            raise ConfigError(f"--kubelet-port: cannot listen on {where}: {exc.strerror}") from None

    async def _listen(self, *, task_status: trio.TaskStatus[int]) -> None:
        await serve(
            self.handle,
            host=self.config.kubelet_address,
            port=self.config.kubelet_port,
            tls=self.tls.context,
            limits=LIMITS,
            stats=self.stats.server,
            task_status=task_status,
        )

    async def handle(self, request: Request) -> Response:
        response = await self._handle(request)
        endpoint = request.route or "other"
        self.stats.requests[(endpoint, response.status)] += 1
        return response

    async def _handle(self, request: Request) -> Response:
        verdict = await self.guard.check(request)
        if isinstance(verdict, Denied):
            return verdict.response
        handler = self.router.match(request)
        if handler is None:
            status = 405 if request.route else 404
            return Response.text("404 page not found\n" if status == 404 else "", status=status)
        if request.route.startswith("/containerLogs") and flag(request, "follow"):
            return await self._follow(request, verdict.user)
        return await handler(request)

    async def _follow(self, request: Request, user: str) -> Response:
        arrived = trio.current_time()
        if self._streams[user] >= MAX_STREAMS_PER_USER:
            return Response.text(
                f"too many concurrent log streams for {user} (at most {MAX_STREAMS_PER_USER})\n",
                status=429,
            )
        self._streams[user] += 1
        try:
            response = await container_logs(request, self.agent)
        except BaseException:
            self._streams[user] -= 1
            raise
        if response.stream is None:
            self._streams[user] -= 1
            return response
        inner = response.stream

        async def counted() -> AsyncGenerator[bytes]:
            first = True
            try:
                async for chunk in inner:
                    if first:
                        first = False
                        self.stats.first_line.observe(trio.current_time() - arrived)
                    yield chunk
            finally:
                self._streams[user] -= 1
                aclose = getattr(inner, "aclose", None)
                if aclose is not None:
                    with trio.CancelScope(shield=True):
                        await aclose()

        response.stream = counted()
        return response

    def _routes(self) -> Router:
        router = Router()
        agent = self.agent

        @router.route("GET", "/containerLogs/{namespace}/{pod}/{container}")
        async def logs(request: Request) -> Response:
            return await container_logs(request, agent)

        @router.route("GET", "/healthz")
        async def healthz(_request: Request) -> Response:
            return Response.text("ok")

        @router.route("GET", "/pods")
        async def pods(_request: Request) -> Response:
            return _pod_list(list(agent.cache))

        @router.route("GET", "/runningpods/")
        async def running(_request: Request) -> Response:
            live = []
            for pod in agent.cache:
                inst = agent.newest_instance(pod)
                if inst is not None and inst.state in LIVE:
                    live.append(pod)
            return _pod_list(live, minimal=True)

        @router.route("GET", "/stats/summary")
        async def stats_summary(_request: Request) -> Response:
            return Response.json(summary(agent))

        @router.route("GET", "/metrics/resource")
        async def metrics_resource(_request: Request) -> Response:
            body = render(resource_metrics(agent)).encode()
            return Response(headers={"content-type": CONTENT_TYPE}, body=body)

        for what, pattern in STREAMING_ROUTES:
            for method in ("GET", "POST"):
                router.add(method, pattern, _not_yet(what))
        return router


def _not_yet(what: str) -> Handler:
    async def answer(_request: Request) -> Response:
        return Response.text(NOT_YET.format(what=what) + "\n", status=501)

    return answer


def _pod_list(pods: list[Pod], *, minimal: bool = False) -> Response:
    items: list[object] = []
    for pod in pods:
        if minimal:
            meta = pod.metadata
            items.append(
                {
                    "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
                    "spec": {
                        "containers": [
                            {"name": c.name, "image": c.image} for c in pod.spec.containers
                        ]
                    },
                }
            )
        else:
            items.append(pod)  # msgspec encodes the model (and its Raw volumes) as it came
    body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
    return Response.json(msgspec.json.encode(body))
