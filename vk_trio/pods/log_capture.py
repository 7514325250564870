"""Keep an ending attempt's log before its instance is deleted (pods/retained_logs.py says why).

The read is bounded (``CAPTURE_SECONDS``): money first, so a slow or broken log endpoint delays
a delete by that much at most, and a log that cannot be read is not kept (the deletion goes on).
Only the newest ``per_attempt`` bytes are held while reading, whatever the container printed.
"""

from __future__ import annotations

from collections import deque
from contextlib import aclosing

import trio

from vk_trio.kube.models import Pod
from vk_trio.logs import pod_logger
from vk_trio.pods.lifecycle import container_name
from vk_trio.pods.retained_logs import RetainedLogs
from vk_trio.providers.base import (
    CloudError,
    Instance,
    InstanceState,
    LogLine,
    LogOptions,
    Provider,
)
from vk_trio.providers.exit_marker import looks_like as is_exit_marker

CAPTURE_SECONDS = 10.0
_LINE_OVERHEAD = 32  # a stored line's timestamp and separators, roughly
NO_CONTAINER = (InstanceState.PROVISIONING, InstanceState.TERMINATING)


async def keep_log(provider: Provider, retained: RetainedLogs, pod: Pod, inst: Instance) -> None:
    container = container_name(pod)
    uid = pod.metadata.uid
    if retained.per_attempt <= 0 or inst.state in NO_CONTAINER:
        return
    if retained.has(uid, container, inst.attempt):
        return
    lines: deque[LogLine] = deque()
    size, failed = 0, False
    with trio.move_on_after(CAPTURE_SECONDS):
        try:
            stream = provider.logs(inst.instance_id, LogOptions(timestamps=True))
            async with aclosing(stream) as source:  # type: ignore[type-var]
                async for line in source:
                    if is_exit_marker(line.text):
                        continue
                    lines.append(line)
                    size += len(line.text) + _LINE_OVERHEAD
                    while size > retained.per_attempt + _LINE_OVERHEAD and len(lines) > 1:
                        size -= len(lines.popleft().text) + _LINE_OVERHEAD
        except CloudError as exc:
            failed = True
            log = pod_logger(pod.metadata.namespace, pod.metadata.name, uid)
            log.info("the log of %s could not be kept: %s", inst.instance_id, exc.message)
    if failed and not lines:
        return
    await retained.keep(
        pod_uid=uid,
        namespace=pod.metadata.namespace,
        pod=pod.metadata.name,
        container=container,
        attempt=inst.attempt,
        lines=list(lines),
    )
