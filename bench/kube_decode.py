"""Decode a 1,000-pod list into our msgspec Structs vs ``json.loads`` into dicts.

Why: the node agent lists and watches every pod on its node; decoding speed and the memory the
decoded objects hold are what a large node costs. The pods are realistic (about 5 KB each with
managedFields, env, probes, tolerations, volumes and full container statuses).

TARGET: decoding into ``PodList`` is >= 3x faster than ``json.loads`` and retains <= 1/2 of its
memory. Both are compared as ratios within one run (machines here are noisy).

Run: ``python -m bench.kube_decode [--pods 1000] [--rounds 15] [--out FILE.json]``
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from vk_trio.kube.models import PodList

TARGET_SPEEDUP = 3.0
TARGET_MEMORY_RATIO = 0.5


def realistic_pod(i: int) -> dict[str, Any]:
    name = f"train-{i:05d}-x7k2p"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": f"train-{i:05d}-",
            "namespace": "ml-jobs",
            "uid": f"6f1c2a3b-0000-4000-8000-{i:012d}",
            "resourceVersion": str(100000 + i),
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "labels": {
                "batch.kubernetes.io/job-name": f"train-{i:05d}",
                "job-name": f"train-{i:05d}",
                "controller-uid": f"aa-{i}",
                "team": "research",
            },
            "annotations": {
                "runpod.io/required-gpu-memory": "24",
                "runpod.io/cloud-type": "SECURE",
                "runpod.io/datacenter-ids": "US-CA-2,EU-RO-1",
            },
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": f"train-{i:05d}",
                    "uid": f"bb-{i}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-11-20T10:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:generateName": {},
                            "f:labels": {f"f:{k}": {} for k in ("job-name", "team")},
                            "f:ownerReferences": {'k:{"uid":"bb"}': {}},
                        },
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"trainer"}': {
                                    ".": {},
                                    "f:env": {f'k:{{"name":"E{j}"}}': {} for j in range(6)},
                                    "f:image": {},
                                    "f:resources": {"f:limits": {"f:nvidia.com/gpu": {}}},
                                }
                            }
                        },
                    },
                },
                {
                    "manager": "vk-trio",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-11-20T10:01:00Z",
                    "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}}},
                },
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "trainer",
                    "image": "ghcr.io/example/trainer:2026.11",
                    "command": ["python", "-m", "train"],
                    "args": ["--epochs", "10", "--batch-size", "64"],
                    "env": [{"name": f"E{j}", "value": f"value-{j}"} for j in range(4)]
                    + [
                        {
                            "name": "WANDB_API_KEY",
                            "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "key"}},
                        },
                        {
                            "name": "POD_NAME",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                        },
                    ],
                    "ports": [{"containerPort": 8888, "protocol": "TCP", "name": "jupyter"}],
                    "resources": {
                        "limits": {"nvidia.com/gpu": "1", "memory": "32Gi"},
                        "requests": {"cpu": "4", "memory": "32Gi"},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/health", "port": "jupyter"},
                        "periodSeconds": 10,
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                    "volumeMounts": [
                        {
                            "name": "kube-api-access-abcde",
                            "readOnly": True,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        }
                    ],
                }
            ],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": "virtual-gpu",
            "nodeSelector": {"type": "virtual-kubelet"},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "virtual-kubelet.io/provider",
                    "operator": "Equal",
                    "value": "runpod",
                    "effect": "NoSchedule",
                },
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "volumes": [
                {
                    "name": "kube-api-access-abcde",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                        ],
                        "defaultMode": 420,
                    },
                }
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": "2026-11-20T10:01:00Z"}
                for t in (
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                )
            ],
            "hostIP": "10.0.0.5",
            "hostIPs": [{"ip": "10.0.0.5"}],
            "podIP": "203.0.113.7",
            "podIPs": [{"ip": "203.0.113.7"}],
            "startTime": "2026-11-20T10:00:01Z",
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": "trainer",
                    "state": {"running": {"startedAt": "2026-11-20T10:01:00Z"}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": 0,
                    "image": "ghcr.io/example/trainer:2026.11",
                    "imageID": "runpod://ghcr.io/example/trainer:2026.11",
                    "containerID": f"runpod://pod{i:08x}",
                    "started": True,
                }
            ],
        },
    }


def pod_list_bytes(count: int) -> bytes:
    document = {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "200000"},
        "items": [realistic_pod(i) for i in range(count)],
    }
    return json.dumps(document).encode()


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def retained_bytes(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    result = fn()
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return current


def run(pods: int, rounds: int) -> dict[str, Any]:
    payload = pod_list_bytes(pods)
    decoder = msgspec.json.Decoder(PodList)
    decoded = decoder.decode(payload)
    assert len(decoded.items) == pods and decoded.items[-1].status.pod_ip == "203.0.113.7"
    # Alternate the two in every round and compare within the round, so a noisy neighbour
    # slows both sides alike; the speedup is the median of the per-round ratios.
    pairs = [
        (
            median_seconds(lambda: json.loads(payload), 1),
            median_seconds(lambda: decoder.decode(payload), 1),
        )
        for _ in range(rounds)
    ]
    json_s = statistics.median(j for j, _ in pairs)
    ours_s = statistics.median(o for _, o in pairs)
    json_mem = retained_bytes(lambda: json.loads(payload))
    ours_mem = retained_bytes(lambda: decoder.decode(payload))
    speedup = statistics.median(j / o for j, o in pairs)
    memory_ratio = ours_mem / json_mem
    return {
        "benchmark": "kube_decode",
        "pods": pods,
        "payload_bytes": len(payload),
        "rounds": rounds,
        "json_loads_ms": round(json_s * 1000, 2),
        "msgspec_podlist_ms": round(ours_s * 1000, 2),
        "speedup": round(speedup, 2),
        "json_loads_retained_mb": round(json_mem / 2**20, 2),
        "msgspec_podlist_retained_mb": round(ours_mem / 2**20, 2),
        "memory_ratio": round(memory_ratio, 3),
        "target_speedup": TARGET_SPEEDUP,
        "target_memory_ratio": TARGET_MEMORY_RATIO,
        "meets_targets": speedup >= TARGET_SPEEDUP and memory_ratio <= TARGET_MEMORY_RATIO,
        "python": sys.version.split()[0],
        "msgspec": msgspec.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--out", type=Path, default=Path("bench/results/kube_decode.json"))
    args = parser.parse_args(argv)
    result = run(args.pods, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
