"""One unreadable row of a cloud's instance list is that instance's problem, not the node's.

A provider's ``list()`` reads every instance of the node in one answer. If one row has a field
of a shape we do not expect (a text where a number was, a value out of range), failing the whole
list would stop the node: no status for any pod, no orphan cleanup, and a restart meets the same
row again. So providers read each row behind a barrier (vk_trio/faults.py):

* a row whose instance id and owner (pod UID, attempt) are still known becomes a placeholder
  ``Instance`` with ``unreadable=True``: the node keeps what it last knew of that instance, never
  rents a second one for the pod, and can still delete it when the pod goes;
* a row whose owner cannot be known is skipped (an instance we cannot prove is ours is never
  touched, as the contract says);
* each is logged once per instance (with the traceback when the error is not a clean
  ``InvalidInput``), and again only when the failure changes.
"""

from __future__ import annotations

import logging

from vk_trio.errors import VkError
from vk_trio.faults import FaultLog, describe
from vk_trio.logs import get_logger
from vk_trio.providers.base import Instance, InstanceState


class RowFaults:
    """The rows of one provider's lists that could not be read, reported once each."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.log = FaultLog()
        self.unreadable = 0  # rows that could not be read, in total (for tests and metrics)
        self.logger = get_logger(f"vk_trio.providers.{provider}")

    def _report(self, key: str, exc: BaseException, what: str) -> None:
        self.unreadable += 1
        if isinstance(exc, VkError):  # a clean refusal: its message says it all
            self.log.report(
                key, exc, log=self.logger, what=what, level=logging.WARNING, traceback=False
            )
        else:
            self.log.report(key, exc, log=self.logger, what=what)

    def placeholder(
        self,
        *,
        instance_id: str,
        node_name: str,
        pod_uid: str,
        attempt: int,
        exc: BaseException,
    ) -> Instance:
        """Stand-in for a row whose owner is known and whose rest could not be read."""
        self._report(
            instance_id, exc, f"reading {self.provider} instance {instance_id} (pod {pod_uid})"
        )
        return Instance(
            instance_id=instance_id,
            node_name=node_name,
            pod_uid=pod_uid,
            attempt=attempt,
            state=InstanceState.PROVISIONING,
            message=f"{self.provider}'s answer for this instance cannot be read: {describe(exc)}",
            unreadable=True,
        )

    def skipped(self, row: str, exc: BaseException) -> None:
        """A row that cannot even be told to be ours: left alone, and said once."""
        self._report(f"row:{row}", exc, f"reading a {self.provider} instance row ({row})")

    def read(self, instance_id: str) -> None:
        """The instance was read fine again: its next failure is news."""
        self.log.clear(instance_id)
