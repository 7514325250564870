"""systemd readiness: tell the service manager READY=1 once the node is Ready.

With ``Type=notify`` systemd considers the unit started only when we say so, so ``systemctl
start vk-trio`` returns when the node can take pods (and a dependent unit can rely on it). The
protocol is one datagram to the socket named by ``NOTIFY_SOCKET``; without that variable (not
under systemd) this does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(state: str, *, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. "READY=1", "STOPPING=1"); True if a service manager got it."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True
