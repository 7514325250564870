"""Vast.ai's states as instance states: terminal ones fail, ready needs the ports, IP is public."""

from __future__ import annotations

from typing import Any

import pytest

from vk_trio.errors import InvalidInput
from vk_trio.providers.base import Exit, InstanceState
from vk_trio.providers.exit_marker import ExitMarker
from vk_trio.providers.vastai.status import ANNOTATION_PREFIX, decode_row, instance_from
from vk_trio.providers.vastai.translate import Owner, wrapper

OWNER = Owner(node_tag="n", pod_uid="uid", attempt=2, job=False)
JOB = Owner(node_tag="n", pod_uid="uid", attempt=0, job=True)
NOW = 1_800_000_000.0
OCI = 'OCI runtime create failed: runc create failed: exec: "/x": executable file not found'


def row(**fields: Any) -> dict[str, Any]:
    base = {
        "id": 42,
        "label": "vk-trio/n/uid.2",
        "actual_status": "running",
        "intended_status": "running",
        "status_msg": "success, running app_1/args",
        "image_uuid": "app:1",
        "image_args": [],
        "extra_env": [["A", "1"], ["-p 8000:8000", "1"]],
        "public_ipaddr": "203.0.113.7 ",
        "ports": {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "41234"}]},
        "machine_id": 8,
        "gpu_name": "RTX 4090",
        "num_gpus": 1,
        "dph_total": 0.3104,
        "geolocation": "Texas, US",
        "start_date": NOW - 600,
        "duration": 600.0,
        "uptime_mins": 5.0,
    }
    return base | fields


WRAPPER = wrapper("0123456789abcdef", "Never")


def convert(  # type: ignore[no-untyped-def]
    raw: dict[str, Any], owner: Owner = OWNER, marker: ExitMarker | None = None, **more: Any
):
    return instance_from(
        decode_row(raw),
        owner,
        node_name="node-n",
        marker=marker,
        wrapped=bool(raw.get("image_args")),
        loading_timeout=1200.0,
        clock=lambda: NOW,
        **more,
    )


def test_running_with_every_port_mapped_is_ready_on_the_public_ip() -> None:
    instance = convert(row())
    assert (instance.state, instance.ready) == (InstanceState.RUNNING, True)
    assert instance.public_ip == "203.0.113.7"
    assert (instance.pod_uid, instance.attempt, instance.node_name) == ("uid", 2, "node-n")
    assert instance.started_at is not None and instance.started_at.timestamp() == NOW - 300
    assert instance.annotations == {
        ANNOTATION_PREFIX + "instance-id": "42",
        ANNOTATION_PREFIX + "machine-id": "8",
        ANNOTATION_PREFIX + "gpu": "1x RTX 4090",
        ANNOTATION_PREFIX + "geolocation": "Texas, US",
        ANNOTATION_PREFIX + "price-per-hour": "0.3104",
        ANNOTATION_PREFIX + "port-8000-tcp": "203.0.113.7:41234",
    }


def test_running_before_the_ports_are_mapped_is_not_ready() -> None:
    instance = convert(row(ports=None))
    assert (instance.state, instance.ready) == (InstanceState.RUNNING, False)
    assert not convert(row(ports={"8000/tcp": None})).ready


@pytest.mark.parametrize(
    ("status", "message", "state"),
    [
        (None, None, InstanceState.PROVISIONING),
        ("created", None, InstanceState.PROVISIONING),
        ("loading", "pulling", InstanceState.STARTING),
        ("created", OCI, InstanceState.FAILED),
        ("loading", "pull access denied for x", InstanceState.FAILED),
        ("exited", "exited", InstanceState.FAILED),
        ("offline", None, InstanceState.FAILED),
        ("unknown", None, InstanceState.FAILED),
        ("frozen", None, InstanceState.FAILED),
        ("stopped", "stopped", InstanceState.FAILED),
    ],
)
def test_vast_states_map_and_terminal_ones_fail_with_the_status_message(
    status: str | None, message: str | None, state: InstanceState
) -> None:
    instance = convert(row(actual_status=status, status_msg=message, ports=None, uptime_mins=None))
    assert instance.state is state
    assert not instance.ready
    if state is InstanceState.FAILED and message:
        assert message in instance.message


def test_an_instance_loading_for_too_long_fails() -> None:
    fresh = convert(row(actual_status="loading", start_date=NOW - 60, duration=60.0))
    stuck = convert(row(actual_status="loading", start_date=NOW - 3600, duration=3600.0))
    assert fresh.state is InstanceState.STARTING
    assert stuck.state is InstanceState.FAILED
    assert "60 minutes" in stuck.message


def test_a_job_with_its_marker_exited_with_the_real_code() -> None:
    raw = row(image_args=["-c", WRAPPER, "vk-trio", "x"])
    instance = convert(raw, JOB, ExitMarker(code=3, at=NOW - 10))
    assert (instance.state, instance.exit_code, instance.ready) == (InstanceState.EXITED, 3, False)
    assert instance.finished_at is not None and instance.finished_at.timestamp() == NOW - 10
    assert instance.started_at is not None and instance.started_at <= instance.finished_at


def test_a_wrapped_job_still_running_without_marker_is_running() -> None:
    raw = row(image_args=["-c", WRAPPER, "vk-trio", "x"])
    assert convert(raw, JOB).state is InstanceState.RUNNING


def test_an_unwrapped_job_that_exited_is_exited_without_a_code() -> None:
    instance = convert(row(actual_status="exited", ports=None), JOB)
    assert (instance.state, instance.exit_code) == (InstanceState.EXITED, None)


def test_a_container_that_ran_and_exited_started_when_it_was_seen_running() -> None:
    """Defect 2: a container that ran 60 s and exited read as "never started" (exit 128,
    ContainerCannotRun), because only rows running now had a start time."""
    seen_running = NOW - 60
    instance = convert(
        row(actual_status="exited", ports=None), OWNER, first_seen_running=seen_running
    )
    assert instance.started_at is not None
    assert instance.started_at.timestamp() == seen_running
    lost = convert(row(actual_status="offline", ports=None), OWNER, first_seen_running=NOW - 5)
    assert lost.state is InstanceState.FAILED and lost.started_at is not None


def test_restarts_in_place_are_reported() -> None:
    raw = row(image_args=["-c", WRAPPER, "vk-trio", "x"])
    instance = convert(raw, OWNER, restarts=2, last_exit=Exit(code=1))
    assert (instance.state, instance.restarts) == (InstanceState.RUNNING, 2)
    assert instance.last_exit == Exit(code=1)


def test_a_row_we_cannot_read_is_an_error_not_a_missing_instance() -> None:
    with pytest.raises(InvalidInput, match=r"\$\.id"):
        decode_row(row(id="forty-two"))


@pytest.mark.parametrize(
    "fields",
    [
        {"start_date": "NaN"},  # strict=False would read it as a float NaN
        {"start_date": 1e300},  # fromtimestamp would overflow
        {"duration": -5},
        {"num_gpus": [1]},
        {"dph_total": "inf"},
        {"status_msg": "x" * 10_000},
        {"ports": {"80/tcp": [{"HostPort": 70000}]}},
    ],
)
def test_values_out_of_range_are_refused_as_clean_errors(fields: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        decode_row(row(**fields))


def test_usage_is_what_vast_reports_and_nothing_it_does_not() -> None:
    """cpu_util is a fraction of cpu_cores_effective, mem_usage MiB, gpu_util a fraction for
    every GPU with gpu_ram as its size; GPU memory in use is not reported, so it is absent."""
    running = convert(
        row(cpu_util=0.5, cpu_cores_effective=8.0, mem_usage=2048.0, gpu_util=0.9, gpu_ram=24564)
    )
    usage = running.usage
    assert usage is not None
    assert usage.cpu_cores == 4.0
    assert usage.memory_bytes == 2048 * 1024 * 1024
    assert usage.at.timestamp() == NOW
    (gpu,) = usage.gpus
    assert (gpu.duty_cycle, gpu.memory_total_bytes, gpu.memory_used_bytes) == (
        90.0,
        24564 * 1024 * 1024,
        None,
    )
    assert convert(row()).usage is None  # nothing reported: nothing invented
    odd = convert(row(cpu_util=7.0, cpu_cores_effective=8.0, mem_usage=float("nan"), gpu_util=None))
    assert odd.usage is None  # out of range or not a number: left out
    loading = convert(row(actual_status="loading", cpu_util=0.5, cpu_cores_effective=8.0))
    assert loading.usage is None
