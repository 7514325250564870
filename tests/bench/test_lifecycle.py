"""bench/lifecycle.py keeps working: a small run measures an agent process of its own.

The figures themselves are the benchmark's business (bench/README.md); this only proves that
the run goes end to end on the real control plane and that its figures mean what they say.
"""

from __future__ import annotations

import pytest

from bench import lifecycle
from tests.controlplane.launcher import ControlPlane

pytestmark = pytest.mark.controlplane


async def test_a_small_run_reports_the_agent_process_figures_and_leaves_no_instance(
    controlplane: ControlPlane,
) -> None:
    result = await lifecycle.run(controlplane, pods=20, big=0, qps=100, burst=200)
    assert result["pods"] == 20
    assert 0 < result["create_s"] <= result["to_running_s"]
    assert 0 <= result["create_latency_p50_ms"] <= result["create_latency_p99_ms"]
    assert result["agent_requests_to_running"]["PATCH"] >= 20  # one status write per pod
    assert 1 <= result["steady_provider_calls_per_interval"] <= 2  # a window may hold a boundary
    assert result["live_instances_two_fast_intervals_later"] == 0
    # the agent's own process: a Python process with trio, httpx2 and msgspec loaded, not this
    # test runner's (which holds a control plane client, pytest and every test module)
    assert 20 < result["rss_mb_idle"] < 150 and 20 < result["rss_mb_at_1000"] < 150


async def test_a_small_two_cloud_run_lists_each_cloud_once_an_interval_and_uses_both(
    controlplane: ControlPlane,
) -> None:
    result = await lifecycle.run(controlplane, pods=20, big=0, qps=100, burst=200, clouds=2)
    assert result["clouds"] == 2
    assert result["instances_per_cloud"] == {"runpod": 10, "vastai": 10}  # the first fills up
    steady = result["list_calls_per_cloud_per_interval"]
    assert set(steady) == {"runpod", "vastai"} and all(1 <= n <= 2 for n in steady.values())
    assert result["live_instances_two_fast_intervals_later"] == 0
