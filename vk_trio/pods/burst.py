"""Burst: pending GPU Jobs of the cluster overflow onto this virtual node (seed 002, in the agent).

Users with local GPU nodes want the cloud only as overflow. With ``--offload``, the agent watches
the Jobs (through kube/watch.py), the pods no node has yet (field selector ``spec.nodeName=``)
and its own Node, and after every change, and at least every ``--reconcile-interval`` (sooner
when the time rule is due), makes one decision pass (pods/burst_policy.py says which Jobs go and
why; pods/burst_fit.py makes the scheduler's checks for this node). A pod that goes is *bound*
to the virtual node through the Binding subresource, as the scheduler would, and from then on it
is a pod like any other on the node: same lifecycle, logs, billing. No second representation.

Its writes have a token bucket of their own, at the client's QPS and burst: like the
kube-scheduler's own client budget, so that binding a burst of pods does not queue behind the
status writes of the pods already bound (and the reverse). What a decision writes
(bench/burst.py counts it): the Binding, which also sets the pod's label
(``runpod.io/managed=true`` for seed 002's ``kubectl get pods -l``) and the annotations
``vk-trio.io/offloaded-at`` and ``vk-trio.io/offload-rule``; one merge patch of the Job's
annotations (``offloaded-at``, ``offloaded-to``, ``offload-rule``) the first time a Job goes;
an ``Offloaded`` Event on the pod and on the Job. A pod that cannot go gets ``NotOffloaded`` on
both, once per reason. Nothing else is written; a pass that decides nothing writes nothing.

Crash safety: the Binding is atomic and carries the annotations, so a pod bound to this node is
its own record of the decision. Each pass looks at the node's pods (the pod cache) and completes
what a crash between two writes left undone: the Job annotation (so later pods follow), and the
label on clusters older than 1.35, whose Bindings do not carry labels (written through
``pods/status``, which the agent may already patch). A pod is never bound twice: the API server
refuses a second Binding with 409, which is also how several virtual nodes running burst at once
settle a race, and how a pod the scheduler placed first stays where it is. Only the leader runs
this (it starts inside the daemon's leader term).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import trio

from vk_trio import faults
from vk_trio.config import Config
from vk_trio.errors import KubeError
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import WARNING, EventRecorder, pod_reference
from vk_trio.kube.models import Job, Node, Pod
from vk_trio.kube.resources import JOBS, NODES
from vk_trio.kube.scheduling import UNBOUND, UNBOUND_PODS, Bound, UnboundPod, bind
from vk_trio.kube.timefmt import kube_time, utcnow
from vk_trio.kube.watch import Changed, Synced, watch_resource
from vk_trio.logs import get_logger
from vk_trio.pacing import TokenBucket
from vk_trio.pods.burst_fit import Misfit, Room, misfit, node_settled_ready, pod_gpus, room_on
from vk_trio.pods.burst_policy import (
    OFFLOAD_RULE,
    OFFLOADED_AT,
    Decision,
    JobView,
    job_view,
    plan,
    pods_of_jobs,
)
from vk_trio.pods.burst_traces import BurstStats, Traces
from vk_trio.pods.cache import PodCache

COALESCE = 0.05  # seconds: let a burst of watch events land before a pass
RESERVATION_TTL = 60.0  # a pod we bound counts against capacity until the pod watch shows it
SYNC_WARNING = 30.0  # seconds without the first lists before burst says so
# The agent starts burst as it marks itself Ready; the Node object shows it a heartbeat later,
# and the lifecycle controller lifts its not-ready taint after that. Until then (at most this
# long) no pass runs, so no pending pod is told "not Ready" or "does not tolerate the taint
# node.kubernetes.io/not-ready" at every start. A node still not Ready after it is a real
# reason, and said.
READY_GRACE = 30.0
WRITERS = 64  # concurrent writes of one pass (the client's QPS paces them anyway)
_log = get_logger("vk_trio.pods.burst")


class Burst:
    """The controller; ``run`` until cancelled (the daemon starts it once the node is Ready)."""

    def __init__(
        self,
        *,
        client: KubeClient,
        config: Config,
        cache: PodCache,
        events: EventRecorder,
        stats: BurstStats | None = None,
        jobs: KubeClient | None = None,
    ) -> None:
        self.client = client  # its own Node (a node identity may watch it)
        # Jobs, pods bound to no node, Bindings: a node identity may not (the Node authorizer
        # lets a node list only its own pods), so with one this is the ServiceAccount
        self.jobs_client = jobs or client
        self.node_name = config.node_name
        self.threshold = config.pending_job_threshold
        self.max_pending = config.max_pending_time
        self.interval = config.reconcile_interval
        self.own_taint = config.taint_parts()
        self.limiter = TokenBucket(qps=config.kube_qps, burst=config.kube_burst)
        self.cache = cache
        self.events = events
        self.stats = stats if stats is not None else BurstStats()
        self._faults = faults.FaultLog()
        self.node: Node | None = None
        self.jobs: dict[str, JobView] = {}
        self.unbound: dict[str, UnboundPod] = {}
        self.synced = trio.Event()
        self.node_ready = trio.Event()  # the Node object has shown Ready once
        self._wake = trio.Event()
        self._next_check: float | None = None
        self._reserved: dict[str, tuple[Fraction, float]] = {}  # bound by us, not yet cached
        self._settled: dict[str, float] = {}  # 409/404: leave alone until the watch catches up
        self.traces = Traces(
            client=client,
            jobs=self.jobs_client,
            events=events,
            cache=cache,
            limiter=self.limiter,
            node_name=self.node_name,
            stats=self.stats,
        )

    # --- inputs: three watches -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._warn_unless_synced)
            await nursery.start(self._watch_node)
            for watch in (self._watch_jobs, self._watch_unbound):
                await nursery.start(watch)
            self.synced.set()
            task_status.started()
            _log.info(
                "burst: offloading managed Jobs to %s (threshold %d, max pending %gs)",
                self.node_name,
                self.threshold,
                self.max_pending,
            )
            with trio.move_on_after(READY_GRACE):
                await self.node_ready.wait()
            await self._loop()

    def poke(self) -> None:
        self._wake.set()

    async def _warn_unless_synced(self) -> None:
        """The watches retry for ever; a missing permission must at least be said."""
        while True:
            with trio.move_on_after(SYNC_WARNING):
                await self.synced.wait()
                return
            _log.warning(
                "burst: Jobs, unbound pods or node %s not listed yet: does the agent's RBAC "
                "grant jobs list/watch (the chart's offload: true)?",
                self.node_name,
            )

    async def _watch_node(self, *, task_status: trio.TaskStatus[None]) -> None:
        async def on_node(event: Synced[Node] | Changed[Node]) -> None:
            if isinstance(event, Synced):
                self.node = event.items[0] if event.items else None
            else:
                self.node = None if event.type == "DELETED" else event.object
            if self.node is not None and node_settled_ready(self.node):
                self.node_ready.set()
            self.poke()

        selector = f"metadata.name={self.node_name}"
        await watch_resource(
            self.client, NODES, on_node, field_selector=selector, task_status=task_status
        )

    async def _watch_jobs(self, *, task_status: trio.TaskStatus[None]) -> None:
        async def on_job(event: Synced[Job] | Changed[Job]) -> None:
            if isinstance(event, Synced):
                self.jobs = {j.metadata.uid: job_view(j) for j in event.items}
            elif event.type == "DELETED":
                self.jobs.pop(event.object.metadata.uid, None)
            else:
                self.jobs[event.object.metadata.uid] = job_view(event.object)
            self.poke()

        await watch_resource(self.jobs_client, JOBS, on_job, task_status=task_status)

    async def _watch_unbound(self, *, task_status: trio.TaskStatus[None]) -> None:
        async def on_pod(event: Synced[UnboundPod] | Changed[UnboundPod]) -> None:
            if isinstance(event, Synced):
                self.unbound = {p.metadata.uid: p for p in event.items}
            elif event.type == "DELETED":  # deleted, or bound: it left the selector
                self.unbound.pop(event.object.metadata.uid, None)
            else:
                self.unbound[event.object.metadata.uid] = event.object
            self.poke()

        await watch_resource(
            self.jobs_client, UNBOUND_PODS, on_pod, field_selector=UNBOUND, task_status=task_status
        )

    # --- the decision pass -----------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            wait = (
                self.interval if self._next_check is None else min(self.interval, self._next_check)
            )
            with trio.move_on_after(max(wait, COALESCE)):
                await self._wake.wait()
            self._wake = trio.Event()
            await trio.sleep(COALESCE)
            try:
                await self.decide_once()
                self._faults.clear("pass")
            except Exception as exc:  # never Cancelled (faults.py): the next pass comes anyway
                self.stats.errors += 1
                self._faults.failed(
                    "pass", exc, log=_log, what="burst: a decision pass", routine=KubeError
                )

    async def decide_once(self) -> None:
        """One pass: complete unfinished traces, then offload what the rules say."""
        self.stats.passes += 1
        node = self.node
        if node is None:
            return
        bound_here = list(self.cache)
        self._forget(bound_here)
        await self.traces.complete(
            bound_here, jobs=self.jobs, ours=self._reserved, annotated=self._annotated
        )
        await self.traces.job_problems(list(self.jobs.values()))
        reserved = (gpus for gpus, _ in self._reserved.values())
        room = room_on(node, bound_here, reserved=reserved)
        candidates = [p for uid, p in self.unbound.items() if uid not in self._busy()]
        chosen = plan(
            self.jobs,
            pods_of_jobs(candidates),
            node=self.node_name,
            now=utcnow(),
            threshold=self.threshold,
            max_pending=self.max_pending,
        )
        self._next_check = chosen.next_check
        moves: list[tuple[Decision, UnboundPod]] = []
        misfits: list[tuple[Decision, UnboundPod, Misfit]] = []
        for decision in chosen.now:
            room = self._fit(decision, node, room, moves, misfits)
        quota = chosen.quota
        for decision in chosen.by_threshold:
            if quota <= 0:
                break
            before = len(moves)
            room = self._fit(decision, node, room, moves, misfits)
            quota -= len(moves) > before
        async with trio.open_nursery() as nursery:
            limit = trio.CapacityLimiter(WRITERS)
            for decision, pod in moves:
                nursery.start_soon(self._offload, decision, pod, limit)
        for decision, pod, why in misfits:
            await self.traces.misfit(decision, pod, why)
        await self._annotate_jobs([d for d, _ in moves])

    def _fit(
        self,
        decision: Decision,
        node: Node,
        room: Room,
        moves: list[tuple[Decision, UnboundPod]],
        misfits: list[tuple[Decision, UnboundPod, Misfit]],
    ) -> Room:
        for pod in decision.pods:
            why = misfit(pod, node, room, own_taint=self.own_taint)
            if why is None:
                moves.append((decision, pod))
                room = room.minus(pod_gpus(pod))
            else:
                misfits.append((decision, pod, why))
        return room

    def _busy(self) -> set[str]:
        return set(self._reserved) | set(self._settled)

    def _forget(self, bound_here: list[Pod]) -> None:
        """Drop reservations the pod cache now shows, and memories of objects that are gone."""
        now = trio.current_time()
        cached = {p.metadata.uid for p in bound_here}
        self._reserved = {
            uid: (gpus, at)
            for uid, (gpus, at) in self._reserved.items()
            if uid not in cached and now - at < RESERVATION_TTL
        }
        self._settled = {
            uid: at
            for uid, at in self._settled.items()
            if uid in self.unbound and now - at < RESERVATION_TTL
        }
        alive = set(self.unbound) | cached | set(self.jobs)
        self.traces.forget(alive=alive, jobs=self.jobs.keys(), cached=cached)

    # --- writes --------------------------------------------------------------------------

    async def _offload(
        self, decision: Decision, pod: UnboundPod, limit: trio.CapacityLimiter
    ) -> None:
        meta, job = pod.metadata, decision.job
        async with limit:
            try:
                self.stats.wrote("binding")
                result = await bind(
                    self.jobs_client,
                    pod,
                    node=self.node_name,
                    labels=dict.fromkeys(job.managed_by, "true"),
                    annotations={
                        OFFLOADED_AT: kube_time(utcnow()),
                        OFFLOAD_RULE: decision.rule.value,
                    },
                    limiter=self.limiter,
                )
            except KubeError as exc:
                self.stats.errors += 1
                _log.warning("burst: binding %s/%s failed: %s", meta.namespace, meta.name, exc)
                await self.traces.say(
                    pod_reference(pod), WARNING, "OffloadFailed", f"binding failed: {exc}"
                )
                return
        if result is not Bound.NOW:
            self._settled[meta.uid] = trio.current_time()
            if result is Bound.ALREADY:
                self.stats.lost_races += 1
            else:
                self.stats.gone += 1
            return
        self.stats.bound += 1
        self._reserved[meta.uid] = (pod_gpus(pod), trio.current_time())
        waited = "" if decision.waited is None else f" after {decision.waited:.0f}s pending"
        _log.info(
            "burst: offloaded %s/%s of Job %s (%s)%s",
            meta.namespace,
            meta.name,
            job.name,
            decision.rule.value,
            waited,
        )
        await self.traces.offloaded(decision, pod, waited)

    async def _annotate_jobs(self, decisions: list[Decision]) -> None:
        jobs = {d.job.uid: d for d in decisions if d.job.offloaded_to != self.node_name}
        async with trio.open_nursery() as nursery:
            for decision in jobs.values():
                if any(p.metadata.uid in self._reserved for p in decision.pods):
                    nursery.start_soon(self._annotate_job, decision.job, decision.rule.value)

    async def _annotate_job(self, job: JobView, rule: str) -> None:
        if await self.traces.annotate_job(job, rule):
            self._annotated(job.uid)

    def _annotated(self, job_uid: str) -> None:
        current = self.jobs.get(job_uid)
        if current is not None:  # follow at once, before the watch echoes the patch
            self.jobs[job_uid] = replace(current, offloaded_to=self.node_name)
