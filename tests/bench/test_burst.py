"""bench/burst.py keeps working: a small run binds every pending Job and counts its writes.

The figures themselves are the benchmark's business (bench/README.md); this only proves that
the run goes end to end on the real control plane and that its counts mean what they say.
"""

from __future__ import annotations

import pytest

from bench import burst
from tests.controlplane.launcher import ControlPlane

pytestmark = pytest.mark.controlplane


async def test_a_small_run_binds_every_job_with_one_binding_and_one_job_patch_each(
    controlplane: ControlPlane,
) -> None:
    result = await burst.run(controlplane, jobs=12, qps=100, burst=200)
    assert result["jobs"] == 12 and result["to_bound_s"] > 0
    assert result["burst_writes"]["binding"] == 12 + result["lost_races"]
    assert result["burst_writes"]["job"] == 12
    assert result["burst_writes"]["event"] == 24  # Offloaded on the pod and on the Job
    assert result["burst_writes_per_job"] == 4.0
