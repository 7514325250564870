"""What the seeds' example images do, once, for every simulated cloud that scripts them.

The READMEs our users come from run a few images: seed 000's GPU Job (``my-gpu-image:latest``,
no command: its CMD trains a model), seed 001's ``nvidia-smi -L`` in ``nvidia/cuda``, seed 003's
combined speech-to-text and text-to-speech service (``ozzuworld/june-multi-gpu``, ports 8000 and
8001, runs until deleted). ``vk-trio demo``, the embedded simulators of ``vk-trio run`` and the
control-plane tests all script these images, so what the READMEs show is what the tests check.
Each simulated cloud has its own ``Workload`` type (their timing models differ); the words and
lines are here so they are the same everywhere. The runs are short (seconds) on purpose: a demo
should end while the reader is still watching.
"""

from __future__ import annotations

SEED_JOB_IMAGE = "my-gpu-image"  # seed 000: `image: my-gpu-image:latest`, no command
TRAINING_CMD = ("python", "train.py")
TRAINING_LINES = (
    "loading dataset: 50000 samples",
    "epoch 1/4 loss=1.923",
    "epoch 2/4 loss=1.174",
    "epoch 3/4 loss=0.741",
    "epoch 4/4 loss=0.518",
    "saved model to /workspace/model.pt",
)
TRAINING_SECONDS = 8.0

CUDA_IMAGE = "nvidia/cuda"  # seed 001: `nvidia/cuda:11.7.1-base-ubuntu22.04`, `nvidia-smi -L`
CUDA_CMD = ("/bin/bash",)
NVIDIA_SMI_LINES = (
    "GPU 0: NVIDIA GPU (simulated) (UUID: GPU-5f1c2a9e-0000-4000-8000-000000000000)",
)
NVIDIA_SMI_SECONDS = 0.5

SPEECH_IMAGE = "ozzuworld/june-multi-gpu"  # seed 003's Deployment: STT + TTS, 8000 and 8001
SPEECH_CMD = ("python", "-m", "june.serve")
SPEECH_PORTS = (8000, 8001)
SPEECH_LINES = (
    "loading whisper model (float16, cuda)",
    "loading TTS model",
    "TTS API listening on 0.0.0.0:8000",
    "STT API listening on 0.0.0.0:8001",
)
