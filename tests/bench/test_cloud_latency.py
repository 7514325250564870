"""bench/cloud_latency.py keeps working: a small burst through each simulated cloud, with its
response times and rate limits, reports figures that mean what they say.

The figures themselves are the benchmark's business (bench/README.md); this proves that a run
goes end to end on the real control plane, that the agent keeps several creates in flight
against a slow cloud, and that nothing is left billing afterwards.
"""

from __future__ import annotations

import pytest

from bench import cloud_latency
from tests.controlplane.launcher import ControlPlane

pytestmark = pytest.mark.controlplane


async def test_a_small_runpod_burst_keeps_creates_in_flight_and_leaves_nothing_billing(
    controlplane: ControlPlane,
) -> None:
    cloud = cloud_latency.RunPodCloud(30, minute_quota=None)
    result = await cloud_latency.run(controlplane, cloud, pods=30, limit=300)
    assert "gave_up_after_s" not in result
    assert result["creates_in_flight"]["max"] >= 4  # one at a time was the bug
    assert result["requests"]["createPod 201"] == 30
    assert 0 < result["floor"]["floor_s"] <= result["to_running_s"]
    stages = result["stages"]
    assert 1.0 <= stages["create_response"]["p50"] <= 3.0  # the cloud's latency, measured
    assert stages["ready_to_pod_ready"]["p50"] >= 0
    assert result["instances_left"] == 0


async def test_a_small_vastai_burst_needs_few_searches_and_leaves_nothing_billing(
    controlplane: ControlPlane,
) -> None:
    cloud = cloud_latency.VastCloud(6)
    result = await cloud_latency.run(controlplane, cloud, pods=6, limit=300)
    assert "gave_up_after_s" not in result
    assert result["requests"]["createInstance 200"] == 6
    assert result["requests"].get("searchOffers 200", 0) <= 2  # one search served them
    assert result["instances_left"] == 0
