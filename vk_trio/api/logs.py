"""``GET /containerLogs/{namespace}/{pod}/{container}``: what ``kubectl logs`` reads.

Which log, as the kubelet chooses it: the current attempt's while its instance exists (from
``Provider.logs``; ``follow`` streams until the container ends or the client goes away); once the
instance is gone (a completed Job, a container waiting to restart) the log retained when it
ended (pods/retained_logs.py); with ``previous``, the newest retained attempt before the current
one. Options are the kubelet's, validated like the API server validates PodLogOptions:
``tailLines`` (>= 0), ``sinceSeconds`` (>= 1) or ``sinceTime`` (RFC 3339), ``timestamps``
(RFC 3339 with nanoseconds, then a space), ``limitBytes`` (>= 1: the output is cut there, in the
middle of a line if need be), ``follow``, ``previous``.

The exit-code marker of a Job wrapper never reaches the client (providers/exit_marker.py).
A client that goes away closes the response stream, which closes the provider's stream at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta

from vk_trio.api.view import AgentView
from vk_trio.httpserver import Request, Response
from vk_trio.kube.models import Pod
from vk_trio.kube.timefmt import parse_kube_time, rfc3339_nano, utcnow
from vk_trio.logs import get_logger
from vk_trio.pods.retained_logs import Retained
from vk_trio.providers.base import CloudError, InstanceState, LogLine, LogOptions
from vk_trio.providers.exit_marker import looks_like as is_exit_marker

_log = get_logger("vk_trio.api.logs")
_TRUE = ("true", "1", "")
MAX_INT = 2**63 - 1


class BadOptions(ValueError):
    """A log option the kubelet would refuse (answered 400)."""


@dataclass(frozen=True, kw_only=True)
class Options:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since: datetime | None = None


def flag(request: Request, name: str) -> bool:
    value = request.arg(name)
    return value is not None and value.lower() in _TRUE


def _int(request: Request, name: str, *, minimum: int) -> int | None:
    raw = request.arg(name)
    if raw is None:
        return None
    if not raw.lstrip("-").isdigit() or len(raw) > 20:
        raise BadOptions(f"{name}: {raw!r} is not an integer")
    value = int(raw)
    if value < minimum or value > MAX_INT:
        raise BadOptions(f"{name}: must be greater than or equal to {minimum}")
    return value


def parse_options(request: Request, *, now: datetime) -> Options:
    since_seconds = _int(request, "sinceSeconds", minimum=1)
    since_time = request.arg("sinceTime")
    if since_seconds is not None and since_time is not None:
        raise BadOptions("at most one of sinceTime or sinceSeconds may be specified")
    since = None
    if since_seconds is not None:
        since = now - timedelta(seconds=min(since_seconds, 10**10))
    elif since_time is not None:
        try:
            since = parse_kube_time(since_time)
        except ValueError:
            raise BadOptions(f"sinceTime: {since_time!r} is not an RFC 3339 time") from None
    return Options(
        follow=flag(request, "follow"),
        previous=flag(request, "previous"),
        timestamps=flag(request, "timestamps"),
        tail_lines=_int(request, "tailLines", minimum=0),
        limit_bytes=_int(request, "limitBytes", minimum=1),
        since=since,
    )


def select(lines: list[LogLine], opts: Options) -> list[LogLine]:
    """Since, then tail: the kubelet's order. Lines without a timestamp pass ``since``."""
    if opts.since is not None:
        since = opts.since
        lines = [ln for ln in lines if ln.timestamp is None or ln.timestamp >= since]
    if opts.tail_lines is not None:
        lines = lines[len(lines) - opts.tail_lines :] if opts.tail_lines else []
    return lines


def render(line: LogLine, *, timestamps: bool) -> bytes:
    stamp = f"{rfc3339_nano(line.timestamp)} " if timestamps and line.timestamp else ""
    return f"{stamp}{line.text}\n".encode(errors="replace")


async def _limited(lines: AsyncIterator[LogLine], opts: Options) -> AsyncGenerator[bytes]:
    """Rendered lines, markers dropped, cut at ``limit_bytes``."""
    budget = opts.limit_bytes
    async with aclosing(lines) as source:  # type: ignore[type-var]
        async for line in source:
            if is_exit_marker(line.text):
                continue
            data = render(line, timestamps=opts.timestamps)
            if budget is not None:
                data = data[:budget]
                budget -= len(data)
            yield data
            if budget == 0:
                return


async def _replay(lines: list[LogLine]) -> AsyncGenerator[LogLine]:
    for line in lines:
        yield line


def _error(status: int, message: str) -> Response:
    return Response.text(message + "\n", status=status)


async def container_logs(request: Request, agent: AgentView) -> Response:
    namespace, name, container = (request.params[k] for k in ("namespace", "pod", "container"))
    pod = agent.pod(namespace, name)
    if pod is None:
        return _error(404, f'pod "{namespace}/{name}" does not exist')
    names = [c.name for c in pod.spec.containers]
    if container not in names:
        return _error(404, f'container "{container}" not found in pod "{namespace}/{name}"')
    try:
        opts = parse_options(request, now=utcnow())
    except BadOptions as exc:
        return _error(400, str(exc))
    source = _choose(agent, pod, container, opts)
    if isinstance(source, Response):
        return source
    if isinstance(source, Retained):
        lines = select(await agent.retained.read(source), opts)
        body = b"".join([chunk async for chunk in _limited(_replay(lines), opts)])
        return Response(headers={"content-type": "text/plain"}, body=body)
    instance_id = source
    live = _counted(agent, _live(agent, instance_id, opts), quiet=opts.follow)
    stream = _limited(live, opts)
    if opts.follow:
        return Response(headers={"content-type": "text/plain"}, stream=stream)
    try:
        body = b"".join([chunk async for chunk in stream])
    except CloudError as exc:
        return _error(503, f"the provider cannot read the log of {instance_id}: {exc.message}")
    return Response(headers={"content-type": "text/plain"}, body=body)


def _choose(agent: AgentView, pod: Pod, container: str, opts: Options) -> Retained | str | Response:
    """The retained attempt, or the live instance id, the request is about; or a refusal."""
    where = f'pod "{pod.metadata.namespace}/{pod.metadata.name}"'
    current = agent.attempt(pod)
    kept = agent.retained.attempts(pod.metadata.uid, container)
    if opts.previous:
        older = [entry for entry in kept if entry.attempt < current]
        if not older:
            return _error(400, f'previous terminated container "{container}" in {where} not found')
        return older[-1]
    inst = agent.newest_instance(pod)
    showing = (InstanceState.STARTING, InstanceState.RUNNING, InstanceState.EXITED)
    if inst is not None and inst.attempt == current and inst.state in showing:
        return inst.instance_id
    same = [entry for entry in kept if entry.attempt <= current]
    if same:
        return same[-1]
    if inst is not None and inst.state is InstanceState.FAILED:
        return inst.instance_id
    reason = "ContainerCreating"
    for status in pod.status.container_statuses:
        if status.name == container and status.state.waiting is not None:
            reason = status.state.waiting.reason or reason
    return _error(400, f'container "{container}" in {where} is waiting to start: {reason}')


async def _live(agent: AgentView, instance_id: str, opts: Options) -> AsyncGenerator[LogLine]:
    since_seconds = None
    if opts.since is not None:
        since_seconds = max(0.0, (utcnow() - opts.since).total_seconds())
    options = LogOptions(
        tail_lines=opts.tail_lines,
        since_seconds=since_seconds,
        follow=opts.follow,
        timestamps=True,
    )
    async with aclosing(agent.provider.logs(instance_id, options)) as lines:  # type: ignore[type-var]
        async for line in lines:
            yield line


async def _counted(
    agent: AgentView, lines: AsyncGenerator[LogLine], *, quiet: bool
) -> AsyncGenerator[LogLine]:
    """Counts the open upstream streams; with ``quiet`` a stream that fails just ends (a
    followed response has sent its status long ago)."""
    agent.open_log_streams += 1
    try:
        async with aclosing(lines) as source:
            async for line in source:
                yield line
    except CloudError as exc:
        if not quiet:
            raise
        _log.info("log stream of a container ended: %s", exc.message)
    finally:
        agent.open_log_streams -= 1
