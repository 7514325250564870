"""Instances go through Vast.ai's states, run their command, fail the ways hosts fail, and log."""

from __future__ import annotations

import httpx2
import trio
import trio.testing

from tests.sim.vastai.support import rent, show
from vk_trio.sim.vastai import VastSim, Workload

WRAPPER = (
    '"$@"\ncode=$?\necho "exit-marker code=$code at=$(date +%s)"\nwhile :; do sleep 3600; done'
)


async def statuses(http: httpx2.AsyncClient, instance_id: int, seconds: int) -> list[str | None]:
    seen: list[str | None] = []
    for _ in range(seconds):
        found = await show(http, instance_id)
        status = found["actual_status"] if found else "<null>"
        if not seen or seen[-1] != status:
            seen.append(status)
        await trio.sleep(1)
    return seen


async def test_an_instance_goes_null_created_loading_running_and_maps_ports_when_running(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("app:1", Workload(provision_seconds=3, create_seconds=3, load_seconds=5))
    offer = sim.marketplace.all()[0]
    instance_id = await rent(http, offer.id, env={"-p 8000:8000": "1", "-p 9000:9000/udp": "1"})
    seen = await statuses(http, instance_id, 20)
    assert seen == ["<null>", None, "created", "loading", "running"]
    running = await show(http, instance_id)
    assert running is not None
    assert running["ports"] == {
        "8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(offer.direct_port_start)}],
        "9000/udp": [{"HostIp": "0.0.0.0", "HostPort": str(offer.direct_port_start + 1)}],
    }
    assert running["public_ipaddr"] == offer.public_ipaddr
    assert running["status_msg"].startswith("success, running")
    assert running["uptime_mins"] > 0


async def test_ports_are_absent_until_running(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("app:1", Workload(load_seconds=100))
    instance_id = await rent(http, sim.marketplace.all()[0].id, env={"-p 80:80": "1"})
    await trio.sleep(50)
    loading = await show(http, instance_id)
    assert loading is not None
    assert loading["actual_status"] == "loading"
    assert "ports" not in loading


async def test_a_plain_command_that_ends_leaves_the_container_exited(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("job:1", Workload(run_seconds=30, logs=("one", "two"), exit_code=5))
    instance_id = await rent(http, sim.marketplace.all()[0].id, image="job:1", args=["--x"])
    await trio.sleep(20)
    assert (await show(http, instance_id) or {})["actual_status"] == "running"
    await trio.sleep(30)
    exited = await show(http, instance_id)
    assert exited is not None
    assert exited["actual_status"] == "exited"
    assert "ports" not in exited


async def test_a_wrapped_command_prints_the_marker_with_its_exit_code_and_keeps_running(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("job:1", Workload(run_seconds=30, logs=("one", "two"), exit_code=5))
    args = ["-c", WRAPPER, "vk", "python", "job.py"]
    instance_id = await rent(
        http, sim.marketplace.all()[0].id, image="job:1", onstart="/bin/sh", args=args
    )
    await trio.sleep(300)
    found = await show(http, instance_id)
    assert found is not None
    assert found["actual_status"] == "running"
    instance = sim.instance(instance_id)
    assert instance is not None
    started = instance.created_at + instance.workload.running_after
    assert instance.log_lines(sim.now()) == [
        "one",
        "two",
        f"exit-marker code=5 at={int(started + 30)}",
    ]


async def test_a_bad_image_stays_created_with_an_oci_runtime_error(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("bad:1", Workload(fault="oci_error"))
    instance_id = await rent(http, sim.marketplace.all()[0].id, image="bad:1", onstart="/no/such")
    await trio.sleep(600)
    found = await show(http, instance_id)
    assert found is not None
    assert found["actual_status"] == "created"
    assert "OCI runtime create failed" in found["status_msg"]
    assert "/no/such" in found["status_msg"]


async def test_a_stuck_instance_loads_forever_and_a_lost_host_goes_offline(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.script("slow:1", Workload(fault="stuck_loading"))
    sim.script("flaky:1", Workload(fault="offline", fault_after=60))
    offers = sim.marketplace.all()
    slow = await rent(http, offers[0].id, image="slow:1")
    flaky = await rent(http, offers[1].id, image="flaky:1")
    await trio.sleep(30)
    assert (await show(http, flaky) or {})["actual_status"] == "running"
    await trio.sleep(3600)
    assert (await show(http, slow) or {})["actual_status"] == "loading"
    assert (await show(http, flaky) or {})["actual_status"] == "offline"
    unknown = await rent(http, offers[2].id)
    await trio.sleep(30)
    sim.host_fault(unknown, "unknown")
    assert (await show(http, unknown) or {})["actual_status"] == "unknown"


async def test_logs_are_served_at_a_result_url_that_is_ready_a_little_later(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    sim.logs_delay_seconds = 1.0
    sim.script("chatty:1", Workload(logs=tuple(f"line {i}" for i in range(10))))
    instance_id = await rent(http, sim.marketplace.all()[0].id, image="chatty:1")
    await trio.sleep(60)
    asked = await http.put(f"/api/v0/instances/request_logs/{instance_id}/", json={"tail": "3"})
    url = asked.json()["result_url"]
    assert url.startswith(sim.url)
    async with httpx2.AsyncClient(trust_env=False) as anonymous:  # presigned: no credentials
        assert (await anonymous.get(url)).status_code == 404
        await trio.sleep(1.5)
        ready = await anonymous.get(url)
    assert ready.status_code == 200
    assert ready.text == "line 7\nline 8\nline 9\n"
    grep = await http.put(
        f"/api/v0/instances/request_logs/{instance_id}/", json={"filter": "line [24]"}
    )
    await trio.sleep(1.5)
    assert (await http.get(grep.json()["result_url"])).text == "line 2\nline 4\n"
    daemon = await http.put(
        f"/api/v0/instances/request_logs/{instance_id}/", json={"daemon_logs": "true"}
    )
    await trio.sleep(1.5)
    assert "daemon" in (await http.get(daemon.json()["result_url"])).text


async def test_stop_and_start_keep_the_instance_and_its_storage(
    sim: VastSim, http: httpx2.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    instance_id = await rent(http, sim.marketplace.all()[0].id)
    await trio.sleep(30)
    await http.put(f"/api/v0/instances/{instance_id}/", json={"state": "stopped"})
    stopped = await show(http, instance_id)
    assert stopped is not None
    assert (stopped["actual_status"], stopped["intended_status"], stopped["cur_state"]) == (
        "stopped",
        "stopped",
        "stopped",
    )
    await http.put(f"/api/v0/instances/{instance_id}/", json={"state": "running", "label": "again"})
    await trio.sleep(30)
    running = await show(http, instance_id)
    assert running is not None
    assert (running["actual_status"], running["label"]) == ("running", "again")
