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

import functools
import os
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import trio

from vk_trio.clouds import report_clouds, report_strays
from vk_trio.config import DEFAULT_NAMESPACE, Config, parse_address
from vk_trio.health import health_router
from vk_trio.httpserver import serve
from vk_trio.kube.auth import IN_CLUSTER, Credentials, resolve_credentials
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import EventRecorder
from vk_trio.kube.leader import LeaderElector
from vk_trio.kube.resources import PODS
from vk_trio.kube.watch import WatchStats, watch_resource
from vk_trio.logs import get_logger
from vk_trio.node.heartbeat import RENEW_INTERVAL, LeaseStats, run_lease, run_status_heartbeat
from vk_trio.node.registration import NodeRegistrar, NodeState
from vk_trio.observability import agent_families
from vk_trio.pods.cache import PodCache
from vk_trio.pods.env import KubeObjectSource
from vk_trio.pods.instances import InstanceView
from vk_trio.pods.provisioning import Provisioner
from vk_trio.pods.queue import WorkQueue
from vk_trio.pods.reconciler import Poke, Reconciler
from vk_trio.pods.status_sync import SyncStats, run_status_sync
from vk_trio.providers.base import Provider
from vk_trio.providers.instrumented import InstrumentedProvider
from vk_trio.providers.registry import choose, open_provider, simulated, strays
from vk_trio.providers.router import Router
from vk_trio.sdnotify import notify

POD_WORKERS = 256  # cheap trio tasks; a burst should reach the provider, not queue for a worker
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

        def lease() -> tuple[bool, str]:
            if standby():
                return True, ""
            last = self.lease.last_renewed
            fresh = last is not None and trio.current_time() - last < 3 * RENEW_INTERVAL
            return fresh, "node lease not renewed recently"

        return {"pod-cache": synced, "node": registered, "lease": lease}


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
    async with (
        KubeClient(credentials, qps=config.kube_qps, burst=config.kube_burst) as client,
        trio.open_nursery() as nursery,
    ):
        agent.kube_requests = client.sent
        host, port = parse_address(config.health_server_address)
        router = health_router(agent.readiness(), metrics=lambda: agent_families(agent))
        agent.health_port = await nursery.start(
            lambda task_status: serve(router, host=host, port=port, task_status=task_status)
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
        async with trio.open_nursery() as nursery:
            registrar = NodeRegistrar(client, config, agent.node, simulated=simulated(config))
            await nursery.start(registrar.keep_registered)
            await nursery.start(
                lambda task_status: run_lease(
                    client, agent.node, stats=agent.lease, task_status=task_status
                )
            )
            async with open_provider(config, nursery, given=given) as chosen:
                provider = _counted(agent, chosen)
                await _run_pods(
                    agent,
                    client=client,
                    provider=provider,
                    registrar=registrar,
                    nursery=nursery,
                    task_status=task_status,
                )
                await _watch_clouds(agent, nursery, given=given)
                await trio.sleep_forever()
    finally:
        agent.node.ready = False


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
    provider: Provider,
    registrar: NodeRegistrar,
    nursery: trio.Nursery,
    task_status: trio.TaskStatus[Agent],
) -> None:
    config = agent.config
    cache = agent.cache = PodCache(agent.queue.add)
    view = InstanceView()
    events = agent.events = EventRecorder(client, component="vk-trio", host=config.node_name)
    await nursery.start(events.run)
    provisioner = Provisioner(
        client=client,
        provider=provider,
        objects=KubeObjectSource(client),
        events=events,
        node_name=config.node_name,
        node_ip=registrar.node_ip,
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
    agent.node.ready = True
    agent.node.touch()
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
