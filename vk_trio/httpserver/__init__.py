"""A small HTTP/1.1 server on trio and h11, for everything vk-trio serves.

vk-trio serves HTTP in a few places: /healthz, /readyz and /metrics of the daemon, the kubelet
API (HTTPS, client certificates, streamed logs), and the simulated clouds (vk_trio/sim) that
stand in for RunPod and Vast.ai. None of these justifies a web framework in a single-file daemon,
and h11 already arrives with httpx2, so this package gives them one server: a router of
(method, path pattern) → async handler (messages.py), and a bounded accept loop and connection
handler (server.py: header, body, time and connection limits; EMFILE back-off; streamed
responses cancelled when the client goes away; TLS with a context that may change per
connection). docs/architecture.md says why this and not hypercorn.

It sits at the bottom layer (beside config, errors, logs) and imports nothing else of the agent,
so the simulators can use it too.
"""

from vk_trio.httpserver.messages import Handler, PeerSubject, Request, Response, Router
from vk_trio.httpserver.server import Limits, ServerStats, TlsSource, serve

__all__ = [
    "Handler",
    "Limits",
    "PeerSubject",
    "Request",
    "Response",
    "Router",
    "ServerStats",
    "TlsSource",
    "serve",
]
