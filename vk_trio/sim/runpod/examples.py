"""The seeds' example images (sim/seeds.py), scripted for the simulated RunPod.

Seed 000's GPU Job runs ``my-gpu-image:latest`` with no command: the image's own CMD (a
training script) is what runs, and vk-trio reads it from the image's registry config. Seed
001's pod runs ``nvidia-smi -L`` in ``nvidia/cuda``. Seed 003's speech service runs until it is
deleted.
"""

from __future__ import annotations

from vk_trio.sim import seeds
from vk_trio.sim.runpod.workloads import Workload

SEED_JOB_IMAGE = seeds.SEED_JOB_IMAGE
CUDA_IMAGE = seeds.CUDA_IMAGE

TRAINING = Workload(
    boot_seconds=2.0,
    cmd=seeds.TRAINING_CMD,
    lines=seeds.TRAINING_LINES,
    line_interval=1.5,
    duration=seeds.TRAINING_SECONDS,
    exit_code=0,
)

NVIDIA_SMI = Workload(
    boot_seconds=1.0,
    cmd=seeds.CUDA_CMD,
    lines=seeds.NVIDIA_SMI_LINES,
    duration=seeds.NVIDIA_SMI_SECONDS,
    exit_code=0,
)

SPEECH = Workload(boot_seconds=2.0, cmd=seeds.SPEECH_CMD, lines=seeds.SPEECH_LINES)


def seed_workloads() -> dict[str, Workload]:
    """Image repository → script, for ``RunPodSim.script_workload``."""
    return {SEED_JOB_IMAGE: TRAINING, CUDA_IMAGE: NVIDIA_SMI, seeds.SPEECH_IMAGE: SPEECH}
