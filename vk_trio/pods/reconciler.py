"""One reconcile of one pod: look at the pod and its instance, make one move toward agreement.

Level-triggered: ``sync(uid)`` reads the desired state (the pod in the cache) and the actual
state (the instance view from the last provider list, plus what we created since) and acts.
It never trusts an event alone, so missed events, restarts and crashes converge anyway. The
work queue guarantees one ``sync`` per pod at a time; every path that has to come back later
(a retry, a restart backoff, a deletion in progress, a deadline) schedules itself.

Money is data: every path that ends a pod (finished, failed, deleted, force-deleted, deadline)
deletes its instances, and an instance whose pod no longer exists is deleted by status_sync.
Every rental and termination is logged at info level (pod, instance, GPU, $/h, billed time), so
an operator can follow the money in the daemon's own log.

Fault isolation: ``sync`` never lets an ``Exception`` out; pods/failures.py retries it and,
for anything but a KubeError or CloudError, names it on the pod (Event and condition). The
other pods never notice; ``trio.Cancelled`` and other BaseExceptions pass through untouched.

Admission: a pod the node's capacity cannot hold (pods/admission.py) is Failed the way the
kubelet rejects it (``OutOfnvidia.com/gpu``...), before anything is rented.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import trio

from vk_trio.errors import Conflict, NotFound
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import EventRecorder
from vk_trio.kube.models import Pod
from vk_trio.kube.resources import PODS
from vk_trio.kube.timefmt import utcnow
from vk_trio.logs import forget_pod, get_logger
from vk_trio.metrics import Histogram
from vk_trio.pods import audit, lifecycle
from vk_trio.pods.admission import REJECTED_PREFIX, Admission
from vk_trio.pods.attempts import choose_current, count_in_place
from vk_trio.pods.cache import PodCache
from vk_trio.pods.failures import Failures
from vk_trio.pods.instances import InstanceView
from vk_trio.pods.log_capture import keep_log
from vk_trio.pods.provisioning import Provisioner
from vk_trio.pods.queue import WorkQueue
from vk_trio.pods.record import PodRecord, Waiting
from vk_trio.pods.recovery import ATTEMPT_ANNOTATION, record_from_pod
from vk_trio.pods.retained_logs import RetainedLogs
from vk_trio.pods.status import pod_status, status_patch
from vk_trio.providers.base import Instance, InstanceState, Provider

DELETE_POLL = 1.0  # while waiting for an instance to be gone
PROVISIONING_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)
ALIVE = (InstanceState.PROVISIONING, InstanceState.STARTING, InstanceState.RUNNING)
CONTAINER_EXISTS = (InstanceState.STARTING, InstanceState.RUNNING, InstanceState.EXITED)

_log = get_logger("vk_trio.pods.reconciler")


@dataclass
class Poke:
    """Lets the reconciler ask the status loop for an early provider list."""

    wanted: trio.Event = field(default_factory=trio.Event)

    def __call__(self) -> None:
        self.wanted.set()


class Reconciler:
    def __init__(
        self,
        *,
        client: KubeClient,
        provider: Provider,
        cache: PodCache,
        view: InstanceView,
        queue: WorkQueue,
        events: EventRecorder,
        provisioner: Provisioner,
        node_ip: str,
        poke: Poke,
        admission: Admission | None = None,
        retained: RetainedLogs | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.cache = cache
        self.view = view
        self.queue = queue
        self.events = events
        self.provisioner = provisioner
        self.node_ip = node_ip
        self.poke = poke
        self.admission = admission
        self.retained = retained  # ended attempts' logs, for kubectl logs (api/)
        self.records: dict[str, PodRecord] = {}
        self.failures = Failures(
            queue=queue, events=events, records=self.records, write_status=self._write_status
        )
        # first-seen → first Running, per pod (the user's "how long until my GPU runs")
        self.provisioning = Histogram(PROVISIONING_BUCKETS)

    def awaiting_exit(self) -> bool:
        """Is a Job-like pod (restartPolicy Never/OnFailure) running? Its end must be noticed
        soon: the instance bills until the agent sees the exit and deletes it."""
        for uid, record in self.records.items():
            pod = self.cache.get(uid)
            if pod is None or lifecycle.is_terminal_phase(pod.status.phase):
                continue
            if pod.spec.restart_policy != "Always" and record.instance is not None:
                return True
        return False

    def transitioning(self) -> bool:
        """Is any pod on its way somewhere (so the status loop should poll fast)?"""
        for uid, record in self.records.items():
            pod = self.cache.get(uid)
            if pod is None or pod.metadata.deletion_timestamp is not None:
                return True
            if lifecycle.is_terminal_phase(pod.status.phase):
                continue
            inst = record.instance
            if inst is None and record.retry_pending:
                continue  # waiting for capacity (or a fix): nothing to see until its own retry
            if inst is None or inst.state is not InstanceState.RUNNING or not inst.ready:
                return True
        return bool(self.view.pod_uids() and not self.records)

    async def sync(self, uid: str) -> None:
        """The queue's worker: never raises an Exception; whatever failed is retried later."""
        pod = self.cache.get(uid)
        held = self.records.get(uid)
        if held is not None:
            held.fault = None  # this attempt's outcome decides the condition
        try:
            if pod is None:
                await self._sync_gone(uid)
            elif pod.metadata.deletion_timestamp is not None:
                await self._sync_deletion(pod)
            else:
                await self._sync_active(pod)
        except Exception as exc:  # never Cancelled: that is no Exception (faults.py)
            await self.failures.failed(uid, pod, exc)
        else:
            self.failures.succeeded(uid)

    # --- pods that are gone from the API ---------------------------------------------------

    async def _sync_gone(self, uid: str) -> None:
        """Force-deleted (or finished and deleted): no instance may outlive it."""
        unreadable = self.cache.unreadable(uid)
        if unreadable is not None:  # it exists, we just cannot read it: hands off its instance
            name = f"{unreadable.namespace}/{unreadable.name}"
            _log.debug("pod %s (%s) cannot be decoded; waiting for a readable version", name, uid)
            return
        alive = await self._delete_instances(self.view.for_pod(uid))
        if self.retained is not None:
            self.retained.drop_pod(uid)
        if alive:
            self.queue.add_after(uid, DELETE_POLL)
        else:
            self.records.pop(uid, None)
            forget_pod(uid)

    async def _delete_instances(self, instances: list[Instance]) -> bool:
        """Ask the provider to delete each; True while any is still listed."""
        still_listed = False
        for inst in instances:
            if inst.state is not InstanceState.TERMINATING and self.view.may_delete(inst):
                await self.provider.delete(inst.instance_id)
                self.view.note_deleted(inst)
                audit.terminating(inst, self.cache.get(inst.pod_uid))
            still_listed = True
        if still_listed:
            self.poke()
        return still_listed

    async def _retire(
        self, pod: Pod, instances: list[Instance], *, keep_logs: list[Instance] | None = None
    ) -> None:
        """Delete instances of a pod that stays: each one's log is kept first (``keep_logs``,
        default all), so kubectl logs works after the instance is gone."""
        for inst in instances if keep_logs is None else keep_logs:
            if self.retained is not None:
                await keep_log(self.provider, self.retained, pod, inst)
        await self._delete_instances(instances)

    # --- deletion requested (deletionTimestamp set) --------------------------------------------

    async def _sync_deletion(self, pod: Pod) -> None:
        uid = pod.metadata.uid
        record = self._record(pod)
        instances = self.view.for_pod(uid)
        if instances and not record.killing:
            record.killing = True
            ids = ", ".join(i.instance_id for i in instances)
            await self.events.normal(pod, "Killing", f"Stopping container; terminating {ids}")
        alive = await self._delete_instances(instances)
        deadline = pod.metadata.deletion_timestamp
        if alive and deadline is not None and utcnow() < deadline:
            self.queue.add_after(uid, DELETE_POLL)
            return
        # NotFound: already gone; Conflict: a new pod with the same name, not ours to delete
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(
                PODS,
                pod.metadata.name,
                namespace=pod.metadata.namespace,
                grace_period_seconds=0,
                uid=uid,
            )
        if alive:  # grace expired first: keep deleting the instance after the pod is gone
            self.queue.add_after(uid, DELETE_POLL)

    # --- the pod should run ----------------------------------------------------------------

    async def _sync_active(self, pod: Pod) -> None:
        uid = pod.metadata.uid
        record = self._record(pod)
        now = utcnow()
        if lifecycle.is_terminal_phase(pod.status.phase):
            await self._retire(pod, self.view.for_pod(uid))  # a finished pod pays nothing
            return
        if self.admission is not None and not self.admission.decided(uid):
            self.admission.admit([pod])  # the watch's admission failed for it: decide it here
        rejection = self.admission.rejection(uid) if self.admission is not None else None
        if rejection is not None and record.failure is None and record.instance is None:
            record.failure = Waiting(
                reason=rejection.reason, message=REJECTED_PREFIX + rejection.message
            )
            record.waiting = None
            await self.events.warning(pod, rejection.reason, rejection.message)
        if record.final is None and record.failure is None:
            await self._advance(pod, record, now)
        await self._write_status(pod, record, now)
        if record.final is not None or record.failure is not None:
            # after the status: the user sees the end at once; keeping the log (bounded)
            # then delays only the delete
            await self._retire(pod, self.view.for_pod(uid))

    async def _advance(self, pod: Pod, record: PodRecord, now: datetime) -> None:
        uid = pod.metadata.uid
        remaining = lifecycle.deadline_remaining(pod, start=record.start_time, now=now)
        if remaining is not None and remaining <= 0:
            limit = pod.spec.active_deadline_seconds
            record.failure = Waiting(
                reason="DeadlineExceeded",
                message=f"Pod was active on the node longer than the specified deadline ({limit}s)",
            )
            if record.instance is not None and record.instance.state in ALIVE:
                record.final = lifecycle.lost(record.instance, now=now)
            await self.events.warning(pod, "DeadlineExceeded", record.failure.message)
            return
        if remaining is not None:
            self.queue.add_after(uid, remaining + 0.1)
        instances = self.view.for_pod(uid)
        current = choose_current(instances, record)
        # leftovers of a restart, and duplicates of this attempt (a create whose answer was
        # lost and that a marketplace then carried out twice): one instance per pod, ever
        extra = [i for i in instances if current is None or i.instance_id != current.instance_id]
        if extra:
            older = [i for i in extra if current is None or i.attempt < current.attempt]
            await self._retire(pod, extra, keep_logs=older)
        if current is None:
            await self._no_instance(pod, record, now)
            return
        record.attempt = max(
            record.attempt, current.attempt
        )  # adopted after a restart of the agent
        record.instance = current
        backoff = count_in_place(pod, record, current, now=now)
        if backoff is not None:
            await self.events.warning(pod, "BackOff", backoff)
        record.lost_id = ""
        if not self.view.is_pending(current.instance_id):
            record.seen_listed = True
        if current.state in CONTAINER_EXISTS:
            await self._announce_created(pod, record, current)
        if current.state is InstanceState.RUNNING:
            record.waiting = None
            record.backoff_until = None
            if record.announced != f"started:{current.instance_id}":
                record.announced = f"started:{current.instance_id}"
                if record.attempt == 0 and record.seen_at is not None:
                    self.provisioning.observe(trio.current_time() - record.seen_at)
                await self.events.normal(
                    pod, "Started", f"Started container on {current.instance_id}"
                )
        elif current.state in (InstanceState.EXITED, InstanceState.FAILED):
            await self._ended(pod, record, current, now)
        elif current.state is not InstanceState.TERMINATING:
            record.waiting = Waiting(reason="ContainerCreating", message=current.message)

    async def _announce_created(self, pod: Pod, record: PodRecord, inst: Instance) -> None:
        """The kubelet's Created, once per attempt, when the instance has its container."""
        iid = inst.instance_id
        if record.announced in (f"created:{iid}", f"started:{iid}"):
            return
        record.announced = f"created:{iid}"
        name = lifecycle.container_name(pod)
        await self.events.normal(pod, "Created", f"Created container {name} on {iid}")

    async def _no_instance(self, pod: Pod, record: PodRecord, now: datetime) -> None:
        uid = pod.metadata.uid
        held = record.instance
        if held is not None and held.attempt == record.attempt and record.seen_listed:
            record.final = lifecycle.lost(held, now=now)
        elif held is None and record.lost_id:  # it was running before our restart, now gone
            record.final = lifecycle.lost_unseen(
                record.lost_id, now=now, provider=record.lost_provider
            )
        if record.final is not None:
            record.failure = Waiting(reason="InstanceLost", message=record.final.message)
            await self.events.warning(pod, "Failed", record.final.message)
            return
        if record.backoff_until is not None and trio.current_time() < record.backoff_until:
            self.queue.add_after(uid, record.backoff_until - trio.current_time())
            return
        record.backoff_until = None
        outcome = await self.provisioner.provision(pod, record, wanted=self._wants(uid))
        record.retry_pending = outcome.instance is None and outcome.retry_in is not None
        if outcome.instance is not None:
            self.view.note_created(outcome.instance)
            record.instance = outcome.instance
            record.in_place = (outcome.instance.instance_id, 0)
            record.seen_listed = False
            self.poke()
        elif outcome.retry_in is not None:
            self.queue.add_after(uid, outcome.retry_in)
        else:
            self.queue.add(uid)  # aborted (the pod went away) or failed: look at it again

    def _wants(self, uid: str) -> Callable[[], bool]:
        """Asked before each create after a wait: is the pod still there, and not deleted?"""

        def still_wanted() -> bool:
            pod = self.cache.get(uid)
            record = self.records.get(uid)
            if pod is None or record is None or record.final or record.failure:
                return False
            left = lifecycle.deadline_remaining(pod, start=record.start_time, now=utcnow())
            return (
                pod.metadata.deletion_timestamp is None
                and not lifecycle.is_terminal_phase(pod.status.phase)
                and (left is None or left > 0)
            )

        return still_wanted

    async def _ended(self, pod: Pod, record: PodRecord, inst: Instance, now: datetime) -> None:
        ended = lifecycle.terminated_from(inst, now=now)
        if not lifecycle.should_restart(pod.spec.restart_policy, ended.exit_code):
            record.final = ended
            await self.events.normal(
                pod,
                "Completed" if ended.exit_code == 0 else "Failed",
                f"container exited with code {ended.exit_code}; terminating {inst.instance_id}",
            )
            return
        record.crash_streak = 1 if lifecycle.ran_long(ended) else record.crash_streak + 1
        delay = lifecycle.crashloop_delay(record.crash_streak)
        record.last_terminated = ended
        record.attempt += 1
        record.restarts += 1
        record.instance = None
        record.seen_listed = False
        record.backoff_until = trio.current_time() + delay
        name = lifecycle.container_name(pod)
        record.waiting = Waiting(
            reason="CrashLoopBackOff",
            message=(
                f"back-off {delay:.0f}s restarting failed container={name} pod={pod.metadata.name}"
            ),
        )
        await self._retire(pod, [inst])
        await self.events.warning(pod, "BackOff", record.waiting.message)
        self.queue.add_after(pod.metadata.uid, delay)

    # --- writing what we know --------------------------------------------------------------

    def _record(self, pod: Pod) -> PodRecord:
        uid = pod.metadata.uid
        record = self.records.get(uid)
        if record is None:
            record = self.records[uid] = record_from_pod(pod, now=utcnow())
            record.seen_at = trio.current_time()
        return record

    async def _write_status(self, pod: Pod, record: PodRecord, now: datetime) -> None:
        """One PATCH of pods/status carrying what changed: the status, and the instance's
        annotations (pods/status accepts metadata.annotations, which saves a request per pod)."""
        new = pod_status(pod, record, now=now, host_ip=self.node_ip, provider=self.provider.name)
        patch = status_patch(pod.status, new)
        wanted = dict(record.instance.annotations) if record.instance is not None else {}
        if record.restarts != record.attempt:  # restarts in place: recovery needs the attempt
            wanted[ATTEMPT_ANNOTATION] = str(record.attempt)
        stale = {k: v for k, v in wanted.items() if pod.metadata.annotations.get(k) != v}
        if stale:
            patch = {**(patch or {}), "metadata": {"annotations": stale}}
        if patch is not None:
            updated = await self.client.patch(
                PODS,
                pod.metadata.name,
                patch,
                namespace=pod.metadata.namespace,
                subresource="status",
            )
            self.cache.update(updated)
