"""How busy a simulated container is: the utilisation figures both simulated clouds report.

Real instances report live utilisation (RunPod's ``runtime.cpu/memory/gpus``, Vast.ai's
``cpu_util``, ``mem_usage``, ``gpu_util``); a simulated one follows a fixed, deterministic curve
of its running time so tests can assert on it: CPU between 40 % and 60 % of its cores (a
one-minute cycle), memory rising to 30 % of its allowance over the first minute, GPUs at 85 %
busy with 40 % of their memory in use.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Busy:
    cpu: float  # fraction of the instance's cores
    memory: float  # fraction of its memory
    gpu: float  # fraction of time busy
    gpu_memory: float  # fraction of GPU memory in use


def busy(seconds_running: float) -> Busy:
    seconds = max(0.0, seconds_running)
    phase = (seconds % 60.0) / 60.0
    return Busy(
        cpu=0.4 + 0.2 * abs(1 - 2 * phase),
        memory=0.3 * min(1.0, 0.2 + seconds / 60.0),
        gpu=0.85,
        gpu_memory=0.4,
    )
