"""The seeds' example images (sim/seeds.py), scripted for the simulated Vast.ai.

Seed 003's Deployment runs ``ozzuworld/june-multi-gpu``: two HTTP services on ports 8000 and
8001 that run until the pod is deleted. Seed 000's GPU Job runs ``my-gpu-image:latest`` with no
command: its CMD (a training script) runs and ends with exit code 0, and vk-trio reads that CMD
from the image's registry config (served by the simulator, sim/registry.py) to wrap it for the
exit code. Seed 001's ``nvidia-smi -L`` in ``nvidia/cuda`` prints one line and ends. Boots are a
few seconds, not Vast.ai's minutes, so a demo ends while the reader is watching.
"""

from __future__ import annotations

from dataclasses import replace

from vk_trio.sim import seeds
from vk_trio.sim.vastai.workloads import Workload

QUICK = Workload(provision_seconds=1.0, create_seconds=1.0, load_seconds=2.0, entrypoint=())

SPEECH = replace(QUICK, cmd=seeds.SPEECH_CMD, logs=seeds.SPEECH_LINES)

TRAINING = replace(
    QUICK,
    cmd=seeds.TRAINING_CMD,
    logs=seeds.TRAINING_LINES,
    run_seconds=seeds.TRAINING_SECONDS,
    exit_code=0,
)

NVIDIA_SMI = replace(
    QUICK,
    cmd=seeds.CUDA_CMD,
    logs=seeds.NVIDIA_SMI_LINES,
    run_seconds=seeds.NVIDIA_SMI_SECONDS,
    exit_code=0,
)


def seed_workloads() -> dict[str, Workload]:
    """Image repository → script, for ``VastSim.script``."""
    return {
        seeds.SPEECH_IMAGE: SPEECH,
        seeds.SEED_JOB_IMAGE: TRAINING,
        seeds.CUDA_IMAGE: NVIDIA_SMI,
    }
