"""The money-moving lines of the daemon's log: every rental and every termination, at info.

An operator reading ``journalctl -u vk-trio`` must be able to follow what the node spends
without the Kubernetes API: which pod rented which instance (GPU, place, $/h), and when each
instance was terminated and about how long it billed. Failures and retries are logged where
they happen (pods/provisioning.py); these two lines are the ledger.
"""

from __future__ import annotations

from vk_trio.kube.models import Pod
from vk_trio.kube.timefmt import utcnow
from vk_trio.logs import pod_logger
from vk_trio.providers.base import Instance


def describe(instance: Instance) -> str:
    """``rented instance i-1 1x RTX 4090 in EU-RO-1 at $0.340/h`` (also the Scheduled Event)."""
    parts = [f"instance {instance.instance_id}"]
    if instance.gpu_type:
        parts.append(f"{instance.gpu_count or 1}x {instance.gpu_type}")
    if instance.location:
        parts.append(f"in {instance.location}")
    if instance.price_per_hour:
        parts.append(f"at ${instance.price_per_hour:.3f}/h")
    return "rented " + " ".join(parts)


def rented(instance: Instance, pod: Pod) -> None:
    meta = pod.metadata
    pod_logger(meta.namespace, meta.name, meta.uid).info(
        "%s (attempt %d)", describe(instance), instance.attempt
    )


def terminating(instance: Instance, pod: Pod | None) -> None:
    meta = pod.metadata if pod is not None else None
    log = (
        pod_logger(meta.namespace, meta.name, instance.pod_uid) if meta else pod_logger("", "", "")
    )
    billed = ""
    since = instance.created_at or instance.started_at
    if since is not None:
        billed = f", billed about {max(0, int((utcnow() - since).total_seconds()))} s"
    gpu = f"{instance.gpu_count or 1}x {instance.gpu_type} " if instance.gpu_type else ""
    log.info(
        "terminating %sinstance %s of pod uid %s ($%.3f/h%s)",
        gpu,
        instance.instance_id,
        instance.pod_uid,
        instance.price_per_hour,
        billed,
    )
