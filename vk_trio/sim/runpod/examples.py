"""The seeds' example images, scripted, so their Job and pod run to the end on the simulator.

Seed 000's GPU Job runs ``my-gpu-image:latest`` with no command: the image's own CMD (here a
training script) is what runs, and vk-trio reads it from the image's registry config. Seed
001's pod runs ``nvidia-smi -L`` in ``nvidia/cuda``. ``vk-trio demo``, the embedded simulator of
``vk-trio run`` and the control-plane tests all use these scripts, so what the README shows is
what the tests check. The scripts are short (seconds) on purpose: a demo should end while the
reader is still watching.
"""

from __future__ import annotations

from vk_trio.sim.runpod.workloads import Workload

SEED_JOB_IMAGE = "my-gpu-image"  # seed 000: `image: my-gpu-image:latest`, no command
CUDA_IMAGE = "nvidia/cuda"  # seed 001: `nvidia/cuda:11.7.1-base-ubuntu22.04`, `nvidia-smi -L`

TRAINING = Workload(
    boot_seconds=2.0,
    cmd=("python", "train.py"),
    lines=(
        "loading dataset: 50000 samples",
        "epoch 1/4 loss=1.923",
        "epoch 2/4 loss=1.174",
        "epoch 3/4 loss=0.741",
        "epoch 4/4 loss=0.518",
        "saved model to /workspace/model.pt",
    ),
    line_interval=1.5,
    duration=8.0,
    exit_code=0,
)

NVIDIA_SMI = Workload(
    boot_seconds=1.0,
    cmd=("/bin/bash",),
    lines=("GPU 0: NVIDIA GPU (simulated) (UUID: GPU-5f1c2a9e-0000-4000-8000-000000000000)",),
    duration=0.5,
    exit_code=0,
)


def seed_workloads() -> dict[str, Workload]:
    """Image repository → script, for ``RunPodSim.script_workload``."""
    return {SEED_JOB_IMAGE: TRAINING, CUDA_IMAGE: NVIDIA_SMI}
