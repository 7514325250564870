"""/healthz, /readyz and /metrics of the daemon (the seeds' liveness and readiness probes).

Ready means: the pod cache has synced, the Node is registered, and the node lease was renewed
recently. Liveness only says the event loop answers. Both are plain text, as the kubelet's are.
Lives at the daemon layer because it reads the state of every component.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vk_trio.httpserver import Request, Response, Router
from vk_trio.metrics import CONTENT_TYPE, Family, render

Check = Callable[[], tuple[bool, str]]


def health_router(
    checks: dict[str, Check], *, metrics: Callable[[], Iterable[Family]] | None = None
) -> Router:
    router = Router()

    if metrics is not None:

        @router.route("GET", "/metrics")
        async def metrics_page(_request: Request) -> Response:
            return Response(headers={"content-type": CONTENT_TYPE}, body=render(metrics()).encode())

    @router.route("GET", "/healthz")
    async def healthz(_request: Request) -> Response:
        return Response.text("ok\n")

    @router.route("GET", "/readyz")
    async def readyz(request: Request) -> Response:
        lines, ready = [], True
        for name, check in checks.items():
            ok, detail = check()
            ready = ready and ok
            lines.append(f"[{'+' if ok else '-'}]{name} {'ok' if ok else 'failed: ' + detail}")
        verbose = request.arg("verbose") is not None
        body = "\n".join(lines) + "\n" if verbose or not ready else "ok\n"
        return Response.text(body, status=200 if ready else 503)

    return router
