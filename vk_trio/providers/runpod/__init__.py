"""RunPod (REST v2) behind the provider contract; see provider.py."""

from vk_trio.providers.runpod.client import DEFAULT_BASE_URL, RunPodClient
from vk_trio.providers.runpod.provider import RunPodProvider

__all__ = ["DEFAULT_BASE_URL", "RunPodClient", "RunPodProvider"]
