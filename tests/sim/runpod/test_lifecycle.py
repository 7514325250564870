"""Pods in the simulator live the way RunPod pods do (measured), on trio's virtual clock."""

from __future__ import annotations

import shlex
from typing import Any

import httpx2
import pytest
import trio
import trio.testing

from tests.sim.runpod.support import GPU, client_for, pod_body
from vk_trio.sim.runpod import NO_CAPACITY, Phase, RunPodSim, Template, Timings, Workload
from vk_trio.sim.runpod.ledger import RUNNING_DISK_PER_GB_HOUR

WRAPPER = '"$@"; code=$?; echo "exit-marker $code"; exec sleep infinity'


async def _get(client: httpx2.AsyncClient, pod_id: str) -> dict[str, Any]:
    answer = await client.get(f"/v2/pods/{pod_id}")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def test_pod_goes_provisioning_starting_running_and_ports_come_later(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.timings = Timings(provisioning=2, starting=3, ports_delay=4)
    async with client_for(sim) as client:
        pod = (await client.post("/v2/pods", json=pod_body())).json()
        assert (pod["status"], pod["runtime"], pod["startedAt"]) == ("PROVISIONING", None, None)
        await trio.sleep(2.5)
        assert (await _get(client, pod["id"]))["status"] == "STARTING"
        await trio.sleep(3)
        early = await _get(client, pod["id"])
        assert early["status"] == "RUNNING"
        assert early["runtime"] is None  # RUNNING before runtime and ports (measured)
        assert early["ssh"]["direct"] is None
        await trio.sleep(4)
        running = await _get(client, pod["id"])
    ports = {p["private"]: p for p in running["runtime"]["ports"]}
    assert ports[22]["type"] == "tcp" and isinstance(ports[22]["public"], int)
    assert ports[8888] == {"private": 8888, "public": None, "type": "http", "ip": "100.65.0.2"}
    assert running["ssh"]["direct"]["port"] == ports[22]["public"]
    assert running["actions"] == ["stop", "restart", "terminate"]


async def test_running_early_reports_running_from_the_create_on(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.timings = Timings(running_early=True)
    async with client_for(sim) as client:
        pod = (await client.post("/v2/pods", json=pod_body())).json()
    assert (pod["status"], pod["runtime"]) == ("RUNNING", None)


async def test_an_exited_container_is_restarted_unless_the_pod_is_stopped(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("crash/app", Workload(lines=("hello",), duration=5, exit_code=2))
    async with client_for(sim) as client:
        pod_id = (await client.post("/v2/pods", json=pod_body(image="crash/app:7"))).json()["id"]
        await trio.sleep(60)
        restarted = sim.pod(pod_id).restarts
        assert restarted >= 5
        assert sim.pod(pod_id).phase is Phase.RUNNING
        assert (await _get(client, pod_id))["runtime"]["uptime"] < 6  # uptime resets
        assert (await client.post(f"/v2/pods/{pod_id}/action", json={"action": "stop"})).is_success
        await trio.sleep(60)
    assert sim.pod(pod_id).restarts == restarted
    assert sim.pod(pod_id).phase is Phase.EXITED
    lines = [e.line for e in sim.logs(pod_id) if e.source == "container"]
    assert lines.count("hello") == restarted + 1


async def test_a_shell_wrapper_prints_the_scripted_exit_code_then_idles(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload(
        "job/train", Workload(lines=("epoch 1", "epoch 2"), duration=20, exit_code=3)
    )
    args = shlex.join(["sh", "-c", WRAPPER, "wrapper", "python", "train.py"])
    async with client_for(sim) as client:
        pod_id = (
            await client.post("/v2/pods", json=pod_body(image="job/train", args=args))
        ).json()["id"]
        await trio.sleep(600)
        pod = await _get(client, pod_id)
    assert pod["status"] == "RUNNING"
    assert sim.pod(pod_id).restarts == 0
    lines = [e.line for e in sim.logs(pod_id) if e.source == "container"]
    assert lines == ["epoch 1", "epoch 2", "exit-marker 3"]


async def test_an_image_entrypoint_swallows_the_wrapper_and_the_pod_restarts(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    workload = Workload(lines=("run",), duration=5, exit_code=1, entrypoint=("/entry.sh",))
    sim.script_workload("job/entry", workload)
    args = shlex.join(["sh", "-c", WRAPPER, "wrapper", "python", "train.py"])
    async with client_for(sim) as client:
        pod_id = (
            await client.post("/v2/pods", json=pod_body(image="job/entry", args=args))
        ).json()["id"]
        await trio.sleep(60)
    assert sim.pod(pod_id).restarts > 0
    assert not any("exit-marker" in e.line for e in sim.logs(pod_id))


async def test_no_stock_gives_the_measured_400_and_stock_is_per_gpu_dc_and_cloud(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.clear_stock()
    sim.set_stock(GPU, "EU-RO-1", "COMMUNITY", 1)
    async with client_for(sim) as client:
        secure = await client.post("/v2/pods", json=pod_body(dataCenterIds=["EU-RO-1"]))
        assert secure.status_code == 400
        assert secure.json() == {"title": "Bad Request", "status": 400, "detail": NO_CAPACITY}
        community = await client.post(
            "/v2/pods", json=pod_body(cloud="COMMUNITY", dataCenterIds=["US-TX-3", "EU-RO-1"])
        )
        assert community.status_code == 201
        assert community.json()["dataCenterId"] == "EU-RO-1"
        disk = 20 * RUNNING_DISK_PER_GB_HOUR  # the default container disk bills while running
        assert community.json()["cost"] == pytest.approx(0.34 + disk, abs=1e-4)
        second = await client.post("/v2/pods", json=pod_body(cloud="COMMUNITY"))
        assert second.status_code == 400
        catalog = await client.get(
            "/v2/catalog/gpus",
            params={"include": "AVAILABILITY", "product": "POD", "cloud": "COMMUNITY"},
        )
        gpu = next(g for g in catalog.json()["gpus"] if g["id"] == GPU)
        assert gpu["availability"] == "NONE"
        assert "dataCenters" not in gpu
        await client.delete(f"/v2/pods/{community.json()['id']}")  # gives the GPU back
        assert (await client.post("/v2/pods", json=pod_body(cloud="COMMUNITY"))).status_code == 201


async def test_templates_fill_the_container_and_unknown_ones_are_404(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.add_template(Template(id="tpl1", image="tpl/image:1", env={"A": "1"}, ports=["22/tcp"]))
    body = pod_body(templateId="tpl1", env={"B": "2"})
    del body["image"], body["ports"]
    async with client_for(sim) as client:
        pod = (await client.post("/v2/pods", json=body)).json()
        missing = await client.post("/v2/pods", json=pod_body(templateId="nope"))
    assert (pod["image"], pod["env"], pod["ports"], pod["template"]) == (
        "tpl/image:1",
        {"A": "1", "B": "2"},
        ["22/tcp"],
        None,
    )
    assert missing.status_code == 404


async def test_a_private_image_without_matching_credentials_goes_to_error(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script_workload("private/app", Workload(registry_username="robot"))
    async with client_for(sim) as client:
        cred = await client.post(
            "/v2/registries", json={"name": "ok", "username": "robot", "password": "pw"}
        )
        denied = (await client.post("/v2/pods", json=pod_body(image="private/app"))).json()
        pulled = (
            await client.post(
                "/v2/pods", json=pod_body(image="private/app", registry=cred.json()["id"])
            )
        ).json()
        await trio.sleep(30)
        assert (await _get(client, denied["id"]))["status"] == "ERROR"
        assert (await _get(client, denied["id"]))["actions"] == ["start", "terminate"]
        assert (await _get(client, pulled["id"]))["status"] == "RUNNING"
        in_use = await client.delete(f"/v2/registries/{cred.json()['id']}")
    assert in_use.status_code == 400


async def test_patching_the_image_resets_the_container(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    async with client_for(sim) as client:
        pod_id = (await client.post("/v2/pods", json=pod_body())).json()["id"]
        await trio.sleep(30)
        patched = (await client.patch(f"/v2/pods/{pod_id}", json={"image": "other:2"})).json()
        assert (patched["status"], patched["image"], patched["runtime"]) == (
            "STARTING",
            "other:2",
            None,
        )
        await trio.sleep(30)
        assert (await _get(client, pod_id))["status"] == "RUNNING"


async def test_ledger_bills_compute_then_storage_and_nothing_after_terminate(
    sim: RunPodSim, autojump_clock: trio.testing.MockClock
) -> None:
    async with client_for(sim) as client:
        pod_id = (await client.post("/v2/pods", json=pod_body())).json()["id"]
        await trio.sleep(3600)
        hour = 0.74 + 20 * RUNNING_DISK_PER_GB_HOUR  # one hour of the GPU and the 20 GB disk
        assert sim.cost(pod_id) == pytest.approx(hour, rel=1e-6)
        assert sim.billing() == [pod_id]
        await client.post(f"/v2/pods/{pod_id}/action", json={"action": "stop"})
        await trio.sleep(3600)
        stopped_hour = sim.cost(pod_id) - hour
        assert 0 < stopped_hour < 0.01  # a stopped pod still pays for its disk
        assert sim.billing() == [pod_id]
        await client.delete(f"/v2/pods/{pod_id}")
        total = sim.cost(pod_id)
        await trio.sleep(7200)
    assert sim.cost(pod_id) == total
    assert sim.billing() == []
    assert sim.ledger.rate() == 0
