"""What a failed reconcile of one pod leads to: a retry, and for a fault, a report on the pod.

``Reconciler.sync`` catches every ``Exception`` of a pod's work (never ``trio.Cancelled``: that
is no Exception, see vk_trio/faults.py) and hands it here:

* a KubeError or CloudError, alone or grouped by a nursery, is routine: one warning line and a
  retry (the server's Retry-After, else ``ROUTINE_RETRY``);
* anything else is a *fault* of this pod's work: logged once with its traceback (an
  ``InvalidInput`` without one: its message says it all), retried with ``FAULT_RETRY``
  backoff, and named on the pod in a Warning Event ``ReconcileError`` and the condition
  ``vk-trio.io/Reconciled=False`` (pods/status.py), which turns True again with the next
  reconcile that succeeds. Recording may fail too (the fault may be in writing the status):
  then the log has it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from vk_trio import faults
from vk_trio.errors import KubeError, VkError
from vk_trio.kube.events import EventRecorder
from vk_trio.kube.models import Pod
from vk_trio.kube.timefmt import utcnow
from vk_trio.logs import ContextAdapter, pod_logger, scrub
from vk_trio.pacing import Backoff
from vk_trio.pods.queue import WorkQueue
from vk_trio.pods.record import PodRecord, Waiting
from vk_trio.providers.base import CloudError

ROUTINE_RETRY = 2.0  # a KubeError or CloudError without a Retry-After
FAULT_RETRY = Backoff(initial=2.0, factor=2.0, maximum=300.0)
FAULT_REASON = "ReconcileError"

WriteStatus = Callable[[Pod, PodRecord, datetime], Awaitable[None]]


class Failures:
    """Retries and reports for the pods of one reconciler."""

    def __init__(
        self,
        *,
        queue: WorkQueue,
        events: EventRecorder,
        records: dict[str, PodRecord],
        write_status: WriteStatus,
    ) -> None:
        self.queue = queue
        self.events = events
        self.records = records
        self.write_status = write_status
        self.retry = FAULT_RETRY
        self.log = faults.FaultLog()
        self._streaks: dict[str, int] = {}  # uid → faults in a row (drives the backoff)

    def succeeded(self, uid: str) -> None:
        if self._streaks.pop(uid, None) is not None:
            self.log.clear(uid)

    async def failed(self, uid: str, pod: Pod | None, exc: Exception) -> None:
        log = _logger_for(uid, pod)
        if faults.only(exc, (KubeError, CloudError)):
            first = faults.first(exc)
            log.warning("reconcile failed, retrying: %s", first)
            self.queue.add_after(uid, getattr(first, "retry_after", None) or ROUTINE_RETRY)
            return
        streak = self._streaks.get(uid, 0)
        self._streaks[uid] = streak + 1
        self.queue.add_after(uid, self.retry.delay(streak))
        clean = faults.only(exc, VkError)
        self.log.report(uid, exc, log=log, what="reconcile", traceback=not clean)
        if pod is not None:
            await self._tell(uid, pod, exc, log)

    async def _tell(self, uid: str, pod: Pod, exc: Exception, log: ContextAdapter) -> None:
        message = scrub(f"reconcile failed: {faults.describe(exc)}", pod_uid=uid)
        try:
            await self.events.warning(pod, FAULT_REASON, message)
            record = self.records.get(uid)
            if record is not None and pod.metadata.deletion_timestamp is None:
                record.fault = Waiting(reason=FAULT_REASON, message=message)
                await self.write_status(pod, record, utcnow())
        except Exception as again:  # the fault may be in writing itself; the log has it
            log.debug("could not record the failure on the pod: %s", faults.describe(again))


def _logger_for(uid: str, pod: Pod | None) -> ContextAdapter:
    if pod is None:
        return pod_logger("", "", uid)
    return pod_logger(pod.metadata.namespace, pod.metadata.name, uid)
