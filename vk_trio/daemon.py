"""The node agent process: one root nursery, components started in order, a graceful stop.

Start order (each step waits for the previous one to be ready, via ``nursery.start``):
health server → Node registered (NotReady) → node lease renewing → provider open → pod watch
synced → first provider list (recovery: adopt our instances, queue orphans) → pod workers →
node status heartbeat, and only then the Node turns Ready.

Stop: the first SIGTERM/SIGINT stops taking new pod work and gives in-flight reconciles the
grace period to finish, then cancels everything; a second signal cancels at once. Stopping never
deletes a cloud instance: workloads survive an upgrade, and the next start adopts them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import trio

from vk_trio.api.server import KubeletApi
from vk_trio.api.view import AgentView
from vk_trio.clouds import report_clouds, report_strays
from vk_trio.config import DEFAULT_NAMESPACE, Config, parse_address
from vk_trio.errors import ConfigError, KubeError
from vk_trio.health import health_router
from vk_trio.httpserver import Limits, ServerStats, serve
from vk_trio.kube.auth import IN_CLUSTER, Credentials, resolve_credentials
from vk_trio.kube.certs import CertInfo
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import EventRecorder
from vk_trio.kube.leader import LeaderElector
from vk_trio.kube.node_identity import node_user, open_node_client
from vk_trio.kube.resources import PODS
from vk_trio.kube.watch import WatchStats, watch_resource
from vk_trio.logs import get_logger
from vk_trio.node.heartbeat import RENEW_INTERVAL, LeaseStats, run_lease, run_status_heartbeat
from vk_trio.node.registration import NodeRegistrar, NodeState
from vk_trio.observability import agent_families
from vk_trio.pods.admission import Admission, Capacity
from vk_trio.pods.burst import Burst
from vk_trio.pods.burst_traces import BurstStats
from vk_trio.pods.cache import PodCache
from vk_trio.pods.env import KubeObjectSource
from vk_trio.pods.instances import InstanceView
from vk_trio.pods.provisioning import Provisioner
from vk_trio.pods.queue import WorkQueue
from vk_trio.pods.reconciler import Poke, Reconciler
from vk_trio.pods.retained_logs import RetainedLogs
from vk_trio.pods.status_sync import SyncStats, run_status_sync
from vk_trio.providers.base import Provider
from vk_trio.providers.instrumented import InstrumentedProvider
from vk_trio.providers.registry import choose, open_provider, simulated, strays
from vk_trio.providers.router import Router
from vk_trio.sdnotify import notify

POD_WORKERS = 256  # cheap trio tasks; a burst should reach the provider, not queue for a worker
# /healthz, /readyz, /metrics: probes and scrapers need a few connections, but a flood of idle
# ones (2,000 in bench/idle_connections.py) must fit beside them: the head timeout closes them
# after 10 s, and beyond the cap the longest-idle give way (httpserver).
HEALTH_LIMITS = Limits(max_connections=4096, max_body_bytes=0)
_log = get_logger("vk_trio.daemon")


@dataclass
class Agent:
    """Handles on the running components, for health checks, metrics and tests."""

    config: Config
    node: NodeState
    lease: LeaseStats = field(default_factory=LeaseStats)
    watch: WatchStats = field(default_factory=WatchStats)
    sync: SyncStats = field(default_factory=SyncStats)
    queue: WorkQueue = field(default_factory=WorkQueue)
    cache: PodCache | None = None
    reconciler: Reconciler | None = None
    health_port: int | None = None
    # per cloud: (method, outcome) → calls (providers/instrumented.py)
    provider_calls: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    router: Router | None = None  # when the node fronts several clouds (or has a budget)
    kube_requests: dict[str, int] = field(default_factory=dict)
    events: EventRecorder | None = None
    elector: LeaderElector | None = None
    api: KubeletApi | None = None
    health_stats: ServerStats = field(default_factory=ServerStats)
    cluster_ca: bytes | None = None  # the kubeconfig's CA: the kubelet API's default client CA
    credentials: Credentials | None = None
    node_identity: str = ""  # who does the pod work: system:node:<node>, or the given identity
    node_certificate: CertInfo | None = None  # with --node-identity bootstrap: the one in use
    burst: BurstStats = field(default_factory=BurstStats)

    def events_dropped(self) -> int:
        return self.events.dropped if self.events is not None else 0

    def readiness(self) -> dict[str, Callable[[], tuple[bool, str]]]:
        def standby() -> bool:
            return self.elector is not None and not self.elector.state.is_leader

        def synced() -> tuple[bool, str]:
            if standby():
                return True, ""
            ok = self.cache is not None and self.cache.synced.is_set()
            return ok, "pod cache not synced"

        def registered() -> tuple[bool, str]:
            if standby():
                return True, ""
            return bool(self.node.uid) and self.node.ready, "node not registered or not ready"

        def identity() -> tuple[bool, str]:
            if standby():
                return True, ""
            return bool(self.node_identity), (
                "waiting for the node's client certificate (kubectl get csr)"
            )

        def lease() -> tuple[bool, str]:
            if standby():
                return True, ""
            last = self.lease.last_renewed
            fresh = last is not None and trio.current_time() - last < 3 * RENEW_INTERVAL
            return fresh, "node lease not renewed recently"

        return {
            "node-identity": identity,
            "pod-cache": synced,
            "node": registered,
            "lease": lease,
        }


async def run_agent(
    config: Config,
    *,
    provider: Provider | None = None,
    task_status: trio.TaskStatus[Agent] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the node agent until cancelled; ``started`` hands out the Agent once Ready.

    ``provider`` replaces the one ``config.provider`` names (benchmarks, embedding). A provider
    or namespace left unset is chosen here: the provider from the API keys present
    (registry.resolve), the namespace from the ServiceAccount when running in a pod.
    """
    credentials = await resolve_credentials(kubeconfig=config.kubeconfig, context=config.context)
    config, why = choose(config)
    if why:
        _log.info("no --provider given: %s", why)
    config = agent_namespace(config, credentials)
    agent = Agent(config=config, node=NodeState(name=config.node_name))
    agent.cluster_ca = credentials.ca_pem
    agent.credentials = credentials
    if config.state_dir:
        await trio.to_thread.run_sync(_private_dir, Path(config.state_dir))
    async with (
        KubeClient(credentials, qps=config.kube_qps, burst=config.kube_burst) as client,
        trio.open_nursery() as nursery,
    ):
        agent.kube_requests = client.sent
        host, port = parse_address(config.health_server_address)
        router = health_router(agent.readiness(), metrics=lambda: agent_families(agent))
        agent.health_port = await nursery.start(
            lambda task_status: serve(
                router,
                host=host,
                port=port,
                limits=HEALTH_LIMITS,
                stats=agent.health_stats,
                task_status=task_status,
            )
        )
        if not config.leader_elect:
            await _act(agent, client, provider, task_status=task_status)
        elector = agent.elector = LeaderElector(
            client, namespace=config.namespace, name=f"vk-trio-{config.node_name}"
        )
        task_status.started(agent)  # a standby is up: it serves health and waits its turn
        try:
            await elector.run(lambda: _act(agent, client, provider))
        finally:
            await elector.release()


def agent_namespace(config: Config, credentials: Credentials) -> Config:
    """``config`` with its namespace: as given, else the ServiceAccount's (in a pod, from the
    mounted namespace file), else ``DEFAULT_NAMESPACE`` (the seeds' kube-system)."""
    if config.namespace:
        return config
    in_pod = credentials.source == IN_CLUSTER and credentials.namespace
    namespace = credentials.namespace if in_pod else DEFAULT_NAMESPACE
    return msgspec.structs.replace(config, namespace=namespace)


async def _act(
    agent: Agent,
    client: KubeClient,
    given: Provider | None,
    *,
    task_status: trio.TaskStatus[Agent] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Everything only one replica may do: the Node, its lease, the provider, the pods.

    Runs until cancelled (shutdown, or a lost leadership); each term starts from scratch and
    rebuilds its state from the API and the provider, as after a restart.
    """
    config = agent.config
    agent.queue = WorkQueue()
    try:
        async with (
            _node_client(agent, client) as node,
            trio.open_nursery() as nursery,
        ):
            labeller = client if node is not client else None
            registrar = NodeRegistrar(
                node, config, agent.node, simulated=simulated(config), labeller=labeller
            )
            await nursery.start(registrar.keep_registered)
            await nursery.start(
                lambda task_status: run_lease(
                    node, agent.node, stats=agent.lease, task_status=task_status
                )
            )
            async with open_provider(config, nursery, given=given) as chosen:
                provider = _counted(agent, chosen)
                await _run_pods(
                    agent,
                    client=node,
                    service_account=client,
                    provider=provider,
                    registrar=registrar,
                    nursery=nursery,
                    task_status=task_status,
                )
                await _watch_clouds(agent, nursery, given=given)
                await trio.sleep_forever()
    finally:
        agent.node.ready = False


def uses_node_identity(config: Config, credentials: Credentials) -> bool:
    """``--node-identity``: auto is bootstrap in a pod (its ServiceAccount is a credential the
    chart grants, and a node identity confines it), and the kubeconfig's identity as given
    otherwise (an operator's choice, often already a node certificate)."""
    if config.node_identity == "auto":
        return credentials.source == IN_CLUSTER
    return config.node_identity == "bootstrap"


@contextlib.asynccontextmanager
async def _node_client(agent: Agent, client: KubeClient) -> AsyncIterator[KubeClient]:
    """The client of the pod work: ``system:node:<node>`` by TLS bootstrapping, or ``client``."""
    config, credentials = agent.config, agent.credentials
    if credentials is None or not uses_node_identity(config, credentials):
        agent.node_identity = credentials.source if credentials else ""
        yield client
        return
    async with open_node_client(
        client,
        credentials,
        node_name=config.node_name,
        wait=config.node_identity_wait,
        store=Path(config.state_dir) / "node-client" if config.state_dir else None,
        qps=config.kube_qps,
        burst=config.kube_burst,
        on_install=lambda info: setattr(agent, "node_certificate", info),
    ) as node:
        node.sent = client.sent  # one count of API requests for /metrics
        agent.node_identity = node_user(config.node_name)
        _log.info("pod work runs as %s", agent.node_identity)
        yield node


def _counted(agent: Agent, chosen: Provider) -> Provider:
    """Count every call per cloud for /metrics: each cloud of a router, or the one provider."""
    agent.provider_calls = {}
    if isinstance(chosen, Router):
        agent.router = chosen
        for name, cloud in list(chosen.clouds.items()):
            counted = chosen.clouds[name] = InstrumentedProvider(cloud)
            agent.provider_calls[name] = counted.calls
        return chosen
    counted = InstrumentedProvider(chosen)
    agent.provider_calls[chosen.name] = counted.calls
    return counted


async def _watch_clouds(agent: Agent, nursery: trio.Nursery, *, given: Provider | None) -> None:
    """Node condition and Events for the router's clouds; a look at clouds no longer fronted."""
    assert agent.events is not None
    if agent.router is not None:
        await nursery.start(report_clouds, agent.router.health, agent.node, agent.events)
    if given is None and agent.config.provider != "fake":
        found = await strays(agent.config, nursery, os.environ)
        if found:
            fronted = agent.config.provider
            nursery.start_soon(
                functools.partial(report_strays, found, agent.node, agent.events, fronted=fronted)
            )


async def _run_pods(
    agent: Agent,
    *,
    client: KubeClient,
    service_account: KubeClient,
    provider: Provider,
    registrar: NodeRegistrar,
    nursery: trio.Nursery,
    task_status: trio.TaskStatus[Agent],
) -> None:
    """The pod work, as ``client``; ``service_account`` reads and annotates Jobs and binds
    pods to the node (burst): what a node identity may not do."""
    config = agent.config
    try:
        capacity = Capacity.of(
            pods=config.max_pods, cpu=config.cpu, memory=config.memory, gpus=config.gpus
        )
    except ValueError as exc:
        raise ConfigError(f"--cpu/--memory: {exc}") from None
    admission = Admission(capacity)
    cache = agent.cache = PodCache(agent.queue.add, admission=admission)
    view = InstanceView()
    retained = RetainedLogs(
        per_attempt=config.log_retention_bytes,
        total=config.log_retention_total_bytes,
        directory=Path(config.state_dir) / "logs" if config.state_dir else None,
    )
    await trio.to_thread.run_sync(retained.load)
    events = agent.events = EventRecorder(client, component="vk-trio", host=config.node_name)
    await nursery.start(events.run)
    provisioner = Provisioner(
        client=client,
        provider=provider,
        objects=KubeObjectSource(client),
        events=events,
        node_name=config.node_name,
        node_ip=registrar.node_ip,
        jobs=service_account,
        max_disk_gb=config.max_disk_gb,
    )
    reconciler = agent.reconciler = Reconciler(
        client=client,
        provider=provider,
        cache=cache,
        view=view,
        queue=agent.queue,
        events=events,
        provisioner=provisioner,
        node_ip=registrar.node_ip,
        poke=Poke(),
        admission=admission,
        retained=retained,
    )
    await nursery.start(
        lambda task_status: watch_resource(
            client,
            PODS,
            cache.handle,
            field_selector=f"spec.nodeName={config.node_name}",
            stats=agent.watch,
            task_status=task_status,
        )
    )
    retained.prune(set(cache.uids()))  # logs of pods deleted while the agent was down
    await nursery.start(
        lambda task_status: run_status_sync(
            provider=provider,
            view=view,
            cache=cache,
            queue=agent.queue,
            reconciler=reconciler,
            fast_interval=config.fast_interval,
            steady_interval=config.reconcile_interval,
            stats=agent.sync,
            task_status=task_status,
        )
    )
    await nursery.start(
        lambda task_status: agent.queue.run_workers(
            reconciler.sync, count=POD_WORKERS, task_status=task_status
        )
    )
    await nursery.start(run_status_heartbeat, registrar)
    view_of_agent = AgentView(
        node_name=config.node_name,
        cache=cache,
        instances=view,
        records=reconciler.records,
        provider=provider,
        retained=retained,
    )
    agent.api = KubeletApi(
        config, client, view_of_agent, cluster_ca_pem=agent.cluster_ca, node_ip=registrar.node_ip
    )
    # Not awaited: a serving certificate may wait for approval, and pods need not wait for it.
    nursery.start_soon(_run_api, agent.api, registrar)
    agent.node.ready = True
    agent.node.touch()
    if config.offload:  # after Ready, and not awaited: burst never holds up the node's own work
        burst = Burst(
            client=client,
            jobs=service_account,
            config=config,
            cache=cache,
            events=events,
            stats=agent.burst,
        )
        nursery.start_soon(burst.run)
    _log.info("node %s is ready (provider %s)", config.node_name, provider.name)
    task_status.started(agent)


async def run_until_signalled(config: Config) -> int:
    """The ``vk-trio run`` main: the agent under signal handling. Returns the exit code."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            agent: Agent = await nursery.start(run_agent, config)
            notify("READY=1")  # Type=notify units are started once the node is Ready
            async for signum in signals:
                _log.info(
                    "%s: stopping (grace %.0fs)", signal.Signals(signum).name, config.grace_period
                )
                notify("STOPPING=1")
                nursery.start_soon(_graceful_stop, agent, nursery, config.grace_period)
                break
            async for _signum in signals:
                _log.warning("second signal: stopping now")
                nursery.cancel_scope.cancel()
                break
    return 0


async def _graceful_stop(agent: Agent, nursery: trio.Nursery, grace: float) -> None:
    with trio.move_on_after(grace):
        await agent.queue.drain()
    nursery.cancel_scope.cancel()


async def _run_api(api: KubeletApi, registrar: NodeRegistrar) -> None:
    """The kubelet API; once it listens, the Node says on which port (``--kubelet-port 0``)."""

    async with trio.open_nursery() as nursery:
        port = await nursery.start(api.run)
        if port != registrar.kubelet_port:
            registrar.kubelet_port = port  # the next heartbeat carries it if this patch fails
            with contextlib.suppress(KubeError):
                await registrar.patch_status()


def _private_dir(path: Path) -> None:
    """The state directory: created 0700 if missing (systemd's StateDirectory already is)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
