"""Renting the instance for a pod: gather its inputs, translate, place, and say what happened.

Everything a create needs from the API besides the pod itself is fetched here, on demand, for
this pod only (never a cluster-wide Secret/ConfigMap watch): the owning Job's annotations, the
resolved environment, and the registry credential from imagePullSecrets. Every way this can
fail is turned into what the user should see (a waiting reason, an Event, a condition) and
when to try again; nothing is dropped after N tries. Those reads and the provider's rate-limit
turns take time, so the pod is asked again (``wanted``) after them and before every create: a
pod deleted meanwhile rents nothing. Rentals, failures and retries are logged at info level.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from vk_trio import imageref
from vk_trio.errors import KubeError, NotFound
from vk_trio.imageref import InvalidImageName
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import EventRecorder
from vk_trio.kube.models import Pod, Secret
from vk_trio.kube.resources import JOBS, SECRETS
from vk_trio.logs import pod_logger, redact_for_pod, scrub
from vk_trio.pacing import Backoff
from vk_trio.pods import audit
from vk_trio.pods.env import EnvError, MissingReference, ObjectSource, resolve_env
from vk_trio.pods.pull_secrets import pull_credential
from vk_trio.pods.record import PodRecord, Terminated, Waiting
from vk_trio.pods.translate import check_pod, to_instance_spec
from vk_trio.providers.base import (
    CloudError,
    CreateAborted,
    Instance,
    InstanceSpec,
    InvalidAnnotation,
    InvalidSpec,
    NoCapacity,
    PaymentRequired,
    Provider,
    ProviderAuthFailed,
    RegistryAuth,
)
from vk_trio.providers.placement import place

RETRY = Backoff(initial=2.0, factor=2.0, maximum=60.0)
SLOW_RETRY = 300.0  # an account problem or a bad annotation: a human has to act first
CREATING = "ContainerCreating"
MAX_MESSAGE = 2048  # characters of a cloud's error shown in the pod's status


@dataclass(frozen=True)
class Outcome:
    """What a provisioning attempt did: an instance, or when to try again (seconds)."""

    instance: Instance | None = None
    retry_in: float | None = None


class Provisioner:
    def __init__(
        self,
        *,
        client: KubeClient,
        provider: Provider,
        objects: ObjectSource,
        events: EventRecorder,
        node_name: str,
        node_ip: str,
        jobs: KubeClient | None = None,
        max_disk_gb: float | None = None,
    ) -> None:
        self.max_disk_gb = max_disk_gb
        self.client = client
        self.jobs = jobs or client  # the node identity may not read Jobs: the ServiceAccount
        self.provider = provider
        self.objects = objects
        self.events = events
        self.node_name = node_name
        self.node_ip = node_ip

    async def job_annotations(self, pod: Pod) -> dict[str, str]:
        """The owning Job's annotations (seed 001's fallback); the pod's own win."""
        for owner in pod.metadata.owner_references:
            if owner.kind == "Job" and owner.api_version.startswith("batch/"):
                try:
                    job = await self.jobs.get(JOBS, owner.name, namespace=pod.metadata.namespace)
                except NotFound:
                    return {}
                if job.metadata.uid == owner.uid:
                    return dict(job.metadata.annotations)
        return {}

    async def registry_auth(self, pod: Pod, image: str) -> RegistryAuth | None:
        """The credential for ``image`` from the pod's imagePullSecrets; a Secret that is
        missing or cannot be read is skipped with a Warning Event, as the kubelet does."""
        secrets: list[Secret] = []
        for ref in pod.spec.image_pull_secrets:
            try:
                secrets.append(
                    await self.client.get(SECRETS, ref.name, namespace=pod.metadata.namespace)
                )
            except NotFound:
                await self.events.warning(
                    pod,
                    "FailedToRetrieveImagePullSecret",
                    f"imagePullSecret {ref.name!r} not found; pulling {image} without it",
                )
        lookup = pull_credential(image, secrets)
        for name, why in lookup.unreadable:
            await self.events.warning(
                pod,
                "FailedToRetrieveImagePullSecret",
                f"imagePullSecret {name!r} cannot be read ({why}); pulling {image} without it",
            )
        return lookup.auth

    async def build_spec(self, pod: Pod, record: PodRecord) -> InstanceSpec:
        check_pod(pod)
        container = pod.spec.containers[0]
        imageref.parse(container.image)  # InvalidImageName: the pod waits for a fixed image
        annotations = {**await self.job_annotations(pod), **pod.metadata.annotations}
        env = await resolve_env(pod, container, source=self.objects, host_ip=self.node_ip)
        auth = await self.registry_auth(pod, container.image)
        # a safety net: no secret value is ever passed to a log call or an Event, and should a
        # cloud echo one back in an error, this pod's lines and Events scrub it
        secrets = [env.values[name] for name in env.secret_names]
        redact_for_pod(pod.metadata.uid, [*secrets, auth.password if auth else None])
        for warning in env.warnings:
            await self.events.warning(pod, warning.reason, warning.message)
        spec = to_instance_spec(
            pod,
            node_name=self.node_name,
            env=env.values,
            secret_env_names=env.secret_names,
            registry_auth=auth,
            annotations=annotations,
            attempt=record.attempt,
        )
        disk = spec.need.disk_gb
        if self.max_disk_gb is not None and disk is not None and disk > self.max_disk_gb:
            raise InvalidSpec(
                f"spec.containers[0] ({container.name}).resources[ephemeral-storage]: "
                f"{disk:g} GB is more disk than this node rents for one pod ({self.max_disk_gb:g}"
                " GB, --max-disk-gb)"
            )
        return spec

    async def provision(
        self, pod: Pod, record: PodRecord, *, wanted: Callable[[], bool] | None = None
    ) -> Outcome:
        """One attempt to rent the pod's instance; updates ``record`` with what the user sees.
        ``wanted``: is the pod still waiting for it (asked before each create)? An attempt
        abandoned because it is not returns an empty ``Outcome``."""
        log = pod_logger(pod.metadata.namespace, pod.metadata.name, pod.metadata.uid)
        try:
            spec = await self.build_spec(pod, record)
            if wanted is not None:
                spec = dataclasses.replace(spec, still_wanted=wanted)
            self.provider.check(spec)
        except InvalidSpec as exc:
            return await self._fail(pod, record, exc.reason, exc.message)
        except InvalidAnnotation as exc:
            record.problem = Waiting(reason=exc.reason, message=exc.message)
            record.waiting = Waiting(reason=CREATING, message=f"waiting: {exc.message}")
            await self.events.warning(pod, exc.reason, exc.message)
            return self._slow_retry(log, record)
        except InvalidImageName as exc:  # the kubelet's InvalidImageName: the image can be fixed
            record.waiting = Waiting(reason="InvalidImageName", message=str(exc))
            await self.events.warning(pod, "InspectFailed", f"Failed to parse the image: {exc}")
            return self._slow_retry(log, record)
        except MissingReference as exc:
            record.waiting = Waiting(reason=exc.reason, message=str(exc))
            await self.events.warning(pod, "Failed", f"Error: {exc}")
            return self._retry(record, log=log, why=str(exc))
        except EnvError as exc:
            record.waiting = Waiting(reason=exc.reason, message=str(exc))
            await self.events.warning(pod, "Failed", f"Error: {exc}")
            return self._slow_retry(log, record)
        except KubeError as exc:
            record.waiting = Waiting(reason=CREATING, message=f"reading the pod's inputs: {exc}")
            return self._retry(record, log=log, why=f"reading the pod's inputs: {exc}")
        record.problem = None
        record.waiting = Waiting(reason=CREATING)
        try:
            instance = await place(self.provider, spec)
        except CreateAborted as exc:
            log.info("not renting: %s", exc.message)
            return Outcome()
        except InvalidSpec as exc:
            return await self._fail(pod, record, exc.reason, exc.message)
        except InvalidAnnotation as exc:
            record.problem = Waiting(reason=exc.reason, message=exc.message)
            await self.events.warning(pod, exc.reason, exc.message)
            return self._slow_retry(log, record)
        except (PaymentRequired, ProviderAuthFailed) as exc:
            record.waiting = Waiting(reason=CREATING, message=_said(pod, exc))
            await self.events.warning(pod, exc.reason, exc.message)
            return self._slow_retry(log, record)
        except NoCapacity as exc:
            record.problem = Waiting(reason=exc.reason, message=exc.message)  # ProviderReady
            record.waiting = Waiting(
                reason=CREATING, message=f"waiting for capacity: {_said(pod, exc, reason=False)}"
            )
            await self.events.warning(pod, exc.reason, exc.message)
            return self._retry(record, log=log, why=f"{exc.reason}: {exc.message}")
        except CloudError as exc:
            record.waiting = Waiting(reason=CREATING, message=_said(pod, exc))
            await self.events.warning(pod, exc.reason, exc.message)
            why = f"{exc.reason}: {exc.message}"
            return self._retry(record, retry_after=exc.retry_after, log=log, why=why)
        record.failures = 0
        audit.rented(instance, pod)
        await self.events.normal(pod, "Scheduled", audit.describe(instance))
        return Outcome(instance=instance)

    def _slow_retry(self, log: logging.LoggerAdapter[logging.Logger], record: PodRecord) -> Outcome:
        """A problem only a human can fix: look again in ``SLOW_RETRY`` seconds."""
        problem = record.problem or record.waiting
        what = f"{problem.reason}: {problem.message}" if problem is not None else "no reason"
        log.info("waiting for a fix (%s); looking again in %.0f s", what, SLOW_RETRY)
        return Outcome(retry_in=SLOW_RETRY)

    def _retry(
        self,
        record: PodRecord,
        *,
        retry_after: float | None = None,
        log: logging.LoggerAdapter[logging.Logger] | None = None,
        why: str = "",
    ) -> Outcome:
        delay = RETRY.delay(record.failures, retry_after=retry_after)
        record.failures += 1
        if log is not None:
            log.info("could not rent (%s); retrying in %.0f s", why, delay)
        return Outcome(retry_in=delay)

    async def _fail(self, pod: Pod, record: PodRecord, reason: str, message: str) -> Outcome:
        """The pod can never run here: Failed with a reason that names the field."""
        log = pod_logger(pod.metadata.namespace, pod.metadata.name, pod.metadata.uid)
        log.info("cannot run here, failing the pod: %s: %s", reason, message)
        message = scrub(message, pod_uid=pod.metadata.uid)[:MAX_MESSAGE]
        record.failure = Waiting(reason=reason, message=message)
        record.final = Terminated(exit_code=1, reason="ContainerCannotRun", message=message)
        record.waiting = None
        await self.events.warning(pod, "Failed", f"{reason}: {message}")
        return Outcome()


def _said(pod: Pod, exc: CloudError, *, reason: bool = True) -> str:
    """A cloud's error as the pod's status shows it: this pod's secrets scrubbed (a cloud may
    echo a request back), and short."""
    text = f"{exc.reason}: {exc.message}" if reason else exc.message
    return scrub(text, pod_uid=pod.metadata.uid)[:MAX_MESSAGE]
