"""Vast.ai as a vk-trio provider: paced REST client, real offer filters, Job exit codes.

``VastProvider`` implements providers/base.py on Vast.ai's REST API (or any server speaking it,
such as vk_trio/sim/vastai). See provider.py for the contract as Vast.ai keeps it, selection.py
for the ``vast.ai/*`` annotations, translate.py for how a pod becomes a create request.
"""

from vk_trio.providers.vastai.client import DEFAULT_BASE_URL, VastClient
from vk_trio.providers.vastai.provider import NAME, VastProvider

__all__ = ["DEFAULT_BASE_URL", "NAME", "VastClient", "VastProvider"]
