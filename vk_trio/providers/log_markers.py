"""Is a log line vk-trio's own bookkeeping (a Job wrapper's exit-code marker) rather than the
user's output? One answer for every place that shows or keeps logs.

The providers already drop their marker from ``Provider.logs``; this is the net behind them for
the kubelet API and the retained logs, so a marker never reaches ``kubectl logs`` whichever
provider or wrapper version wrote it. Pure: no trio, no I/O.
"""

from __future__ import annotations

import re

# RunPod's wrapper prints "vk-trio:exit-code=N"; Vast.ai's "vk-trio-exit key=K code=N at=T".
# A later wrapper adds a per-attempt nonce; both shapes below still match its lines.
_MARKER = re.compile(r"^\s*(?:vk-trio:exit-code=\S*|vk-trio-exit key=\S+ code=\S+.*)\s*$")


def is_exit_marker(line: str) -> bool:
    """True for a line that only a vk-trio Job wrapper prints, and that is not for the user."""
    return len(line) < 4096 and _MARKER.match(line) is not None
