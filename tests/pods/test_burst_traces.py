"""burst_traces: what a crash or an older API server left undone is completed, once."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import msgspec

from tests.kube.fakes import StaticAccess
from vk_trio.kube.client import KubeClient
from vk_trio.kube.events import EventRecorder
from vk_trio.kube.models import Job, Pod
from vk_trio.pacing import TokenBucket
from vk_trio.pods.burst_policy import job_view
from vk_trio.pods.burst_traces import BurstStats, Traces
from vk_trio.pods.cache import PodCache


def bound_pod(*, labels: dict[str, str]) -> Pod:
    raw = {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "pod-1",
            "resourceVersion": "5",
            "labels": labels,
            "annotations": {
                "vk-trio.io/offloaded-at": "2026-01-01T00:00:00Z",
                "vk-trio.io/offload-rule": "max-pending-time",
            },
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": "j",
                    "uid": "job-1",
                    "controller": True,
                }
            ],
        },
        "spec": {"nodeName": "vk", "containers": [{"name": "c"}]},
    }
    return msgspec.convert(raw, Pod)


def managed_job(**annotations: str) -> Job:
    raw = {
        "metadata": {
            "name": "j",
            "namespace": "ns",
            "uid": "job-1",
            "annotations": {"runpod.io/managed": "true", **annotations},
        }
    }
    return msgspec.convert(raw, Job)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body: Any = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        if request.url.path.endswith("/status"):
            assert body is not None
            pod = bound_pod(labels=body["metadata"]["labels"])
            pod.metadata.resource_version = "6"
            return httpx2.Response(200, content=msgspec.json.encode(pod))
        return httpx2.Response(200, json={"metadata": {"name": "x"}})


def traces_with(recorder: Recorder) -> tuple[Traces, KubeClient, PodCache]:
    client = KubeClient(StaticAccess(), transport=httpx2.MockTransport(recorder))
    cache = PodCache(lambda uid: None)
    traces = Traces(
        client=client,
        events=EventRecorder(client, component="vk-trio", host="vk"),
        cache=cache,
        limiter=TokenBucket(qps=100, burst=100),
        node_name="vk",
        stats=BurstStats(),
    )
    return traces, client, cache


async def test_a_pod_bound_before_a_crash_gets_its_job_annotated_and_labelled_once() -> None:
    recorder = Recorder()
    traces, client, cache = traces_with(recorder)
    pod = bound_pod(labels={})  # an API server before 1.35 dropped the Binding's labels
    cache.update(pod)
    jobs = {"job-1": job_view(managed_job())}
    seen: list[str] = []
    async with client:
        for _ in range(2):  # a second pass writes nothing more
            await traces.complete([pod], jobs=jobs, ours=set(), annotated=seen.append)
    writes = [(m, path) for m, path, _ in recorder.requests]
    assert writes.count(("PATCH", "/apis/batch/v1/namespaces/ns/jobs/j")) == 1
    assert writes.count(("PATCH", "/api/v1/namespaces/ns/pods/p/status")) == 1
    assert writes.count(("POST", "/api/v1/namespaces/ns/events")) == 1  # Offloaded on the Job
    job_patch = next(b for m, p, b in recorder.requests if p.endswith("/jobs/j"))
    assert job_patch["metadata"]["annotations"]["vk-trio.io/offloaded-to"] == "vk"
    assert job_patch["metadata"]["annotations"]["vk-trio.io/offload-rule"] == "max-pending-time"
    label_patch = next(b for m, p, b in recorder.requests if p.endswith("/status"))
    assert label_patch == {"metadata": {"labels": {"runpod.io/managed": "true"}}}
    assert seen == ["job-1"]
    cached = cache.get("pod-1")
    assert cached is not None and cached.metadata.labels == {"runpod.io/managed": "true"}


async def test_nothing_is_written_when_the_traces_are_complete() -> None:
    recorder = Recorder()
    traces, client, _cache = traces_with(recorder)
    pod = bound_pod(labels={"runpod.io/managed": "true"})
    done = {"job-1": job_view(managed_job(**{"vk-trio.io/offloaded-to": "vk"}))}
    async with client:
        await traces.complete([pod], jobs=done, ours=set(), annotated=lambda uid: None)
    assert recorder.requests == []
