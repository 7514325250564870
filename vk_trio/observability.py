"""What /metrics shows: the node agent's state, read from its components at scrape time.

Pods by phase, how long pods take to run (first seen → Running), provider calls per cloud by
method and outcome (429s included as RateLimited), instances and the $/h they cost right now per
cloud, each cloud's state and the budget left (a node with a router), node lease
renewals and failures, pod watch restarts and relists, dropped Events. Every family is built
from counters the components keep anyway, so there is no registry to keep in sync.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from vk_trio.httpserver import ServerStats
from vk_trio.metrics import Family
from vk_trio.providers.base import InstanceState
from vk_trio.providers.health import CloudState

if TYPE_CHECKING:
    from vk_trio.api.server import KubeletApi
    from vk_trio.daemon import Agent


def _spend(agent: Agent, node: dict[str, str], spend: dict[str, float]) -> Family:
    family = Family(
        "vk_trio_spend_dollars_per_hour", "gauge", "What the node's instances cost now, per cloud"
    )
    clouds = agent.router.names if agent.router is not None else agent.config.providers
    for cloud in clouds:
        family.add(round(spend.get(cloud, 0.0), 6), {**node, "provider": cloud})
    return family


def _clouds(agent: Agent, node: dict[str, str]) -> list[Family]:
    """Calls per cloud by method and outcome, 429s, each cloud's state, the budget left."""
    calls = Family(
        "vk_trio_cloud_api_calls_total",
        "counter",
        "Provider calls by method and outcome (ok or the error reason)",
    )
    limited = Family(
        "vk_trio_cloud_rate_limited_total", "counter", "Provider calls rate limited (429)"
    )
    for cloud, counter in sorted(agent.provider_calls.items()):
        for (method, outcome), count in sorted(counter.items()):
            calls.add(count, {**node, "provider": cloud, "method": method, "outcome": outcome})
        rate_limited = sum(c for (_, o), c in counter.items() if o == "RateLimited")
        limited.add(rate_limited, {**node, "provider": cloud})
    families = [calls, limited]
    router = agent.router
    if router is not None:
        states = Family(
            "vk_trio_cloud_state",
            "gauge",
            "1 for each cloud's current state (ok, cooling_down, payment_refused)",
        )
        for cloud, now in router.health.states().items():
            for state in CloudState:
                states.add(int(state is now), {**node, "provider": cloud, "state": state.value})
        families.append(states)
        left = router.budget.left()
        if left is not None:
            families.append(
                Family(
                    "vk_trio_budget_left_dollars_per_hour",
                    "gauge",
                    "What --max-node-price still allows per hour",
                ).add(round(left, 6), node)
            )
    return families


def agent_families(agent: Agent) -> list[Family]:
    node = {"node": agent.config.node_name}
    families: list[Family] = []
    phases: Counter[str] = Counter()
    if agent.cache is not None:
        for pod in agent.cache:
            phases[pod.status.phase or "Pending"] += 1
    pods = Family("vk_trio_pods", "gauge", "Pods bound to this node, by phase")
    for phase in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
        pods.add(phases.get(phase, 0), {**node, "phase": phase})
    families.append(pods)
    reconciler = agent.reconciler
    if reconciler is not None:
        families.append(
            reconciler.provisioning.family(
                "vk_trio_provisioning_seconds",
                "Seconds from a pod first seen by the agent to its instance running",
            )
        )
        live = [i for i in reconciler.view.all() if i.state is not InstanceState.TERMINATING]
        instances = Family("vk_trio_instances", "gauge", "Cloud instances of this node, by state")
        states = Counter(i.state.value for i in reconciler.view.all())
        for state in InstanceState:
            instances.add(states.get(state.value, 0), {**node, "state": state.value})
        families.append(instances)
        spend: dict[str, float] = {}
        for inst in live:
            cloud = inst.provider or agent.config.provider
            spend[cloud] = spend.get(cloud, 0.0) + inst.price_per_hour
        if agent.router is not None:  # the router's books also count creates in flight
            spend = agent.router.budget.spend_by_cloud()
        families.append(_spend(agent, node, spend))
    families.extend(_clouds(agent, node))
    if agent.node_certificate is not None:
        families.append(
            Family(
                "vk_trio_node_client_certificate_expiry_seconds",
                "gauge",
                "Unix time when the node's client certificate (system:node:<node>) expires",
            ).add(agent.node_certificate.not_after.timestamp(), node)
        )
    families.append(
        Family("vk_trio_lease_renewals_total", "counter", "Node lease renewals").add(
            agent.lease.renewals, node
        )
    )
    families.append(
        Family("vk_trio_lease_renew_failures_total", "counter", "Failed node lease renewals").add(
            agent.lease.failures, node
        )
    )
    families.append(
        Family("vk_trio_watch_restarts_total", "counter", "Pod watch reconnects").add(
            agent.watch.restarts, node
        )
    )
    families.append(
        Family("vk_trio_watch_relists_total", "counter", "Pod relists after 410 Gone").add(
            agent.watch.relists_after_gone, node
        )
    )
    families.append(
        Family("vk_trio_provider_list_failures_total", "counter", "Failed provider list calls").add(
            agent.sync.failures, node
        )
    )
    families.append(
        Family("vk_trio_kube_requests_total", "counter", "Kubernetes API requests by method")
    )
    for method, count in sorted(agent.kube_requests.items()):
        families[-1].add(count, {**node, "method": method})
    families.append(
        Family("vk_trio_events_dropped_total", "counter", "Events dropped under backpressure").add(
            agent.events_dropped(), node
        )
    )
    reconciles = agent.reconciler.failures.log.reported if agent.reconciler is not None else 0
    faults = Family(
        "vk_trio_faults_total",
        "counter",
        "Unexpected failures caught, reported and retried (vk_trio/faults.py), by where",
    )
    faults.add(reconciles, {**node, "where": "reconcile"})
    faults.add(agent.sync.faults, {**node, "where": "status_loop"})
    faults.add(agent.watch.handler_faults, {**node, "where": "watch_consumer"})
    families.append(faults)
    families.append(
        Family(
            "vk_trio_unreadable_objects_total", "counter", "Pods the watch could not decode"
        ).add(agent.watch.unreadable, node)
    )
    if agent.config.offload:
        families.extend(_burst_families(agent, node))
    families += server_families("health", agent.health_stats, node)
    if agent.api is not None:
        families += api_families(agent.api, node)
    return families


def server_families(server: str, stats: ServerStats, node: dict[str, str]) -> list[Family]:
    """Connections of one of the agent's HTTP servers ("health" or "kubelet")."""
    labels = {**node, "server": server}
    connections = Family(
        "vk_trio_http_connections", "gauge", "Open connections of the agent's HTTP servers"
    ).add(stats.open, labels)
    closed = Family(
        "vk_trio_http_connections_closed_total",
        "counter",
        "Connections closed by a limit: evicted (idle, to make room), refused (at the cap), "
        "timeout, rejected (too large or not HTTP), accept_error (EMFILE and friends)",
    )
    for reason, value in (
        ("evicted", stats.evicted),
        ("refused", stats.refused),
        ("timeout", stats.timeouts),
        ("rejected", stats.rejected),
        ("accept_error", stats.accept_errors),
    ):
        closed.add(value, {**labels, "reason": reason})
    return [connections, closed]


def api_families(api: KubeletApi, node: dict[str, str]) -> list[Family]:
    requests = Family(
        "vk_trio_kubelet_api_requests_total",
        "counter",
        "Kubelet API requests by endpoint (route pattern) and HTTP status",
    )
    for (endpoint, status), count in sorted(api.stats.requests.items()):
        requests.add(count, {**node, "endpoint": endpoint, "code": str(status)})
    decisions = Family(
        "vk_trio_kubelet_api_auth_total",
        "counter",
        "Kubelet API authentication and authorization outcomes",
    )
    for outcome, count in sorted(api.stats.decisions.items()):
        decisions.add(count, {**node, "outcome": outcome})
    retained = api.agent.retained
    first_line = api.stats.first_line.family(
        "vk_trio_kubelet_api_first_log_line_seconds",
        "A followed log request's arrival to its first line sent",
    )
    families = [
        requests,
        decisions,
        first_line,
        Family(
            "vk_trio_kubelet_api_log_streams", "gauge", "Provider log streams open for clients"
        ).add(api.agent.open_log_streams, node),
        Family("vk_trio_retained_log_bytes", "gauge", "Bytes of ended attempts' logs kept").add(
            retained.size, node
        ),
        Family("vk_trio_retained_logs", "gauge", "Ended container attempts whose log is kept").add(
            len(retained), node
        ),
        Family(
            "vk_trio_retained_logs_evicted_total",
            "counter",
            "Kept logs dropped for the total cap (oldest first)",
        ).add(retained.evicted, node),
        *server_families("kubelet", api.stats.server, node),
    ]
    info = api.tls.info
    if info is not None:
        families.append(
            Family(
                "vk_trio_kubelet_api_certificate_expiry_seconds",
                "gauge",
                "Unix time when the kubelet API's serving certificate expires, by source",
            ).add(info.not_after.timestamp(), {**node, "source": api.tls.source})
        )
    return families


def _burst_families(agent: Agent, node: dict[str, str]) -> list[Family]:
    stats = agent.burst
    return [
        Family("vk_trio_burst_offloaded_total", "counter", "Pods burst bound to this node").add(
            stats.bound, node
        ),
        Family(
            "vk_trio_burst_lost_races_total", "counter", "Bindings answered 409: placed already"
        ).add(stats.lost_races, node),
        Family(
            "vk_trio_burst_not_offloaded_total", "counter", "Pods that could not go, by reason"
        ).add(stats.not_offloaded, node),
        Family("vk_trio_burst_errors_total", "counter", "Failed burst writes").add(
            stats.errors, node
        ),
    ]
