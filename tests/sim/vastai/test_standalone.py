"""``python -m vk_trio.sim.vastai`` serves the same API (and its registry mirror) as a separate
process."""

from __future__ import annotations

import subprocess
import sys

import httpx2
import trio


async def test_the_standalone_simulator_serves_offers_and_instances() -> None:
    command = [sys.executable, "-m", "vk_trio.sim.vastai", "--port", "0", "--api-key", "k1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:  # noqa: ASYNC220
        try:
            assert process.stdout is not None
            line = await trio.to_thread.run_sync(process.stdout.readline)
            url = line.strip().rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:")
            mirror = await trio.to_thread.run_sync(process.stdout.readline)
            assert mirror.strip() == f"image registry mirror on {url}/registry"
            auth = {"authorization": "Bearer k1"}
            async with httpx2.AsyncClient(base_url=url, headers=auth, trust_env=False) as http:
                offers = (await http.post("/api/v0/bundles/", json={"limit": 2})).json()["offers"]
                created = await http.put(
                    f"/api/v0/asks/{offers[0]['id']}/", json={"image": "x", "cancel_unavail": True}
                )
                listed = (await http.get("/api/v1/instances/")).json()
        finally:
            process.terminate()
    assert len(offers) == 2
    assert created.json()["success"] is True
    assert [row["id"] for row in listed["instances"]] == [created.json()["new_contract"]]
