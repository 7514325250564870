"""pods/translate.py: a pod becomes one instance spec, or fails naming the field it cannot run."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vk_trio.kube.models import (
    Container,
    ContainerPort,
    ObjectMeta,
    Pod,
    PodSpec,
    ResourceRequirements,
)
from vk_trio.pods.translate import check_pod, to_instance_spec
from vk_trio.providers.base import InvalidSpec, Port, RegistryAuth

SA_VOLUME: dict[str, Any] = {
    "name": "kube-api-access-x7k2p",
    "projected": {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {
                "configMap": {
                    "name": "kube-root-ca.crt",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {
                "downwardAPI": {
                    "items": [
                        {"fieldRef": {"fieldPath": "metadata.namespace"}, "path": "namespace"}
                    ]
                }
            },
        ],
    },
}


def container(**fields: Any) -> Container:
    return Container(**{"name": "main", "image": "pytorch/pytorch:2.4", **fields})


def pod(*containers: Container, volumes: list[dict[str, Any]] | None = None, **spec: Any) -> Pod:
    return Pod(
        metadata=ObjectMeta(name="train", namespace="ml", uid="uid-1"),
        spec=PodSpec(
            containers=list(containers) or [container()],
            volumes=[msgspec.Raw(msgspec.json.encode(v)) for v in volumes or []],
            **spec,
        ),
    )


def translate(p: Pod, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "node_name": "vk-1",
        "env": {},
        "secret_env_names": frozenset(),
        "registry_auth": None,
        "annotations": {},
        "attempt": 0,
        **overrides,
    }
    return to_instance_spec(p, **args)


def rejection(p: Pod) -> str:
    with pytest.raises(InvalidSpec) as caught:
        check_pod(p)
    with pytest.raises(InvalidSpec):
        translate(p)
    assert caught.value.reason == "Unsupported"
    return caught.value.message


# --- mapping ----------------------------------------------------------------------------------


def test_a_gpu_pod_maps_every_field_the_instance_needs() -> None:
    auth = RegistryAuth(server="ghcr.io", username="u", password="p")
    p = pod(
        container(
            command=["python", "train.py"],
            args=["--epochs", "3"],
            ports=[ContainerPort(container_port=8888, name="jupyter"), ContainerPort(22)],
            resources=ResourceRequirements(
                limits={"nvidia.com/gpu": "2", "ephemeral-storage": "50Gi", "memory": "64Gi"},
                requests={"cpu": "7500m", "memory": "32Gi", "ephemeral-storage": "10G"},
            ),
        ),
        restart_policy="OnFailure",
    )
    spec = translate(
        p,
        env={"TOKEN": "s3cret", "EPOCHS": "3"},
        secret_env_names=frozenset({"TOKEN"}),
        registry_auth=auth,
        annotations={"runpod.io/cloud-type": "SECURE"},
        attempt=2,
    )
    assert (spec.node_name, spec.namespace, spec.pod_name, spec.pod_uid) == (
        "vk-1",
        "ml",
        "train",
        "uid-1",
    )
    assert spec.key == "uid-1.2"
    assert spec.image == "pytorch/pytorch:2.4"
    assert spec.command == ("python", "train.py")
    assert spec.args == ("--epochs", "3")
    assert spec.env == {"TOKEN": "s3cret", "EPOCHS": "3"}
    assert spec.secret_env_names == {"TOKEN"}
    assert spec.ports == (
        Port(number=8888, protocol="tcp", name="jupyter"),
        Port(number=22, protocol="tcp"),
    )
    assert spec.restart_policy == "OnFailure"
    assert spec.registry_auth is auth
    need = spec.need
    assert need.gpu_count == 2
    assert need.cpu_millis == 7500
    assert need.memory_mb == 34360  # the request (32Gi), not the limit
    assert need.disk_gb == pytest.approx(53.687091200)  # the ephemeral-storage limit, 50Gi
    assert need.gpu_memory_gb is None
    assert need.max_price_per_hour is None  # providers read their own annotations
    assert need.annotations == {"runpod.io/cloud-type": "SECURE"}


def test_a_pod_without_resources_asks_for_nothing() -> None:
    need = translate(pod()).need
    assert (need.gpu_count, need.cpu_millis, need.memory_mb, need.disk_gb) == (0, 0, 0, None)


def test_gpu_request_counts_when_there_is_no_limit_and_limits_fill_missing_requests() -> None:
    resources = ResourceRequirements(
        requests={"nvidia.com/gpu": "1", "ephemeral-storage": "20G"},
        limits={"cpu": "2", "memory": "1Gi"},
    )
    need = translate(pod(container(resources=resources))).need
    assert (need.gpu_count, need.cpu_millis, need.memory_mb, need.disk_gb) == (1, 2000, 1074, 20.0)


def test_the_restart_policy_defaults_to_always() -> None:
    assert translate(pod(restart_policy="")).restart_policy == "Always"


def test_the_injected_service_account_volume_and_empty_dirs_are_accepted() -> None:
    shm = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}
    check_pod(pod(volumes=[SA_VOLUME, shm, {"name": "cache", "emptyDir": {}}]))


def test_the_mapping_copies_env_and_annotations() -> None:
    env = {"A": "1"}
    annotations = {"vast.ai/min-reliability": "0.98"}
    spec = translate(pod(), env=env, annotations=annotations)
    env["A"] = "changed"
    annotations["vast.ai/min-reliability"] = "0"
    assert spec.env == {"A": "1"}
    assert spec.need.annotations == {"vast.ai/min-reliability": "0.98"}


# --- rejections -------------------------------------------------------------------------------


def test_a_second_app_container_is_rejected_by_name() -> None:
    message = rejection(pod(container(), container(name="proxy", image="envoy")))
    assert message.startswith("spec.containers[1] (proxy):")
    assert "this pod has 2" in message


def test_init_containers_are_rejected() -> None:
    message = rejection(pod(init_containers=[container(name="setup")]))
    assert message.startswith("spec.initContainers[0] (setup): init containers")


def test_sidecar_init_containers_are_rejected_too() -> None:
    sidecar = container(name="logs", restart_policy="Always")
    message = rejection(pod(init_containers=[sidecar]))
    assert message.startswith("spec.initContainers[0] (logs): sidecar containers")


@pytest.mark.parametrize(
    ("volume", "kind"),
    [
        ({"name": "data", "persistentVolumeClaim": {"claimName": "data"}}, "persistentVolumeClaim"),
        ({"name": "cfg", "configMap": {"name": "cfg"}}, "configMap"),
        ({"name": "creds", "secret": {"secretName": "creds"}}, "secret"),
        ({"name": "host", "hostPath": {"path": "/data"}}, "hostPath"),
        ({"name": "info", "downwardAPI": {"items": []}}, "downwardAPI"),
        ({"name": "mine", "projected": {"sources": [{"secret": {"name": "s"}}]}}, "projected"),
    ],
)
def test_volumes_carrying_data_are_rejected(volume: dict[str, Any], kind: str) -> None:
    message = rejection(pod(volumes=[SA_VOLUME, volume]))
    assert message.startswith(f"spec.volumes[1] ({volume['name']}): {kind} volumes")


def test_a_user_volume_named_like_the_token_volume_is_not_ignored() -> None:
    disguised = {
        "name": "kube-api-access-mine",
        "projected": {"sources": [{"configMap": {"name": "my-config"}}]},
    }
    assert rejection(pod(volumes=[disguised])).startswith("spec.volumes[0] (kube-api-access-mine)")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"image": ""}, "spec.containers[0] (main).image"),
        ({"working_dir": "/work"}, "spec.containers[0] (main).workingDir"),
        ({"restart_policy": "Always"}, "spec.containers[0] (main).restartPolicy"),
        (
            {"ports": [ContainerPort(53, protocol="UDP")]},
            "spec.containers[0] (main).ports[0].protocol",
        ),
        (
            {"resources": ResourceRequirements(limits={"amd.com/gpu": "1"})},
            "spec.containers[0] (main).resources.limits[amd.com/gpu]",
        ),
        (
            {"resources": ResourceRequirements(requests={"memory": "lots"})},
            "spec.containers[0] (main).resources.requests[memory]",
        ),
        (
            {"resources": ResourceRequirements(limits={"nvidia.com/gpu": "500m"})},
            "spec.containers[0] (main).resources.limits[nvidia.com/gpu]",
        ),
        (
            {"resources": ResourceRequirements(requests={"cpu": "-1"})},
            "spec.containers[0] (main).resources.requests[cpu]",
        ),
    ],
)
def test_container_fields_no_instance_has_are_rejected_by_name(
    fields: dict[str, Any], field: str
) -> None:
    assert rejection(pod(container(**fields))).startswith(field + ":")


def test_a_pod_without_containers_is_rejected() -> None:
    empty = Pod(metadata=ObjectMeta(name="x", uid="u"), spec=PodSpec())
    assert rejection(empty).startswith("spec.containers:")


# --- properties -------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@given(st.lists(names, min_size=1, max_size=5, unique=True))
def test_translate_never_silently_drops_a_container(container_names: list[str]) -> None:
    p = pod(*(container(name=name) for name in container_names))
    if len(container_names) == 1:
        assert translate(p).image == "pytorch/pytorch:2.4"
    else:
        assert container_names[1] in rejection(p)


@given(st.integers(0, 64), st.integers(0, 10**6), st.integers(0, 10**6))
def test_whole_resource_amounts_map_exactly(gpus: int, millis: int, mebibytes: int) -> None:
    resources = ResourceRequirements(
        limits={"nvidia.com/gpu": str(gpus)},
        requests={"cpu": f"{millis}m", "memory": f"{mebibytes}Mi"},
    )
    need = translate(pod(container(resources=resources))).need
    assert need.gpu_count == gpus
    assert need.cpu_millis == millis
    assert need.memory_mb * 10**6 >= mebibytes * 2**20 > (need.memory_mb - 1) * 10**6


def test_daemonset_pods_are_refused_with_the_owner_named() -> None:
    from vk_trio.kube.models import ObjectMeta, OwnerReference
    from vk_trio.providers.base import InvalidSpec

    pod = Pod(
        metadata=ObjectMeta(
            name="fluentd-x",
            owner_references=[
                OwnerReference(api_version="apps/v1", kind="DaemonSet", name="fluentd", uid="u")
            ],
        ),
        spec=PodSpec(containers=[Container(name="c", image="fluentd")]),
    )
    with pytest.raises(InvalidSpec, match="DaemonSet fluentd"):
        check_pod(pod)


@pytest.mark.parametrize("resource", ["ephemeral-storage", "nvidia.com/gpu", "cpu", "memory"])
@pytest.mark.parametrize("amount", ["1e400", "1e19"])
def test_an_amount_beyond_any_node_is_refused_naming_the_field_never_an_overflow(
    resource: str, amount: str
) -> None:
    # 1e400 was an OverflowError in gb()/float() and killed the node agent
    big = container(resources=ResourceRequirements(limits={resource: amount}))
    assert f"resources.limits[{resource}]" in rejection(pod(big))
