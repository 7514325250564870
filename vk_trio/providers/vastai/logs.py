"""``kubectl logs`` of a Vast.ai instance: one read, or a follow that ends when the container does.

Vast.ai has no log stream: each read asks for a fresh copy of the container's output (a
``result_url`` to poll). So following is reading again every ``poll_seconds`` and sending the new
lines, until the Job wrapper's marker appears, the instance is lost, or it is destroyed. The
wrapper's markers are vk-trio's bookkeeping (translate.py), never shown to the user; only lines
with the instance's own nonce are the wrapper's (a program's marker-like output is shown).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import trio

from vk_trio.providers import exit_marker
from vk_trio.providers.base import LogLine, LogOptions, LogsUnavailable
from vk_trio.providers.vastai import translate
from vk_trio.providers.vastai.client import VastClient
from vk_trio.providers.vastai.status import ERROR_MESSAGE, LOST


async def read_logs(
    client: VastClient,
    instance_id: str,
    opts: LogOptions,
    *,
    poll_seconds: float,
    grace_seconds: float,
) -> AsyncIterator[LogLine]:
    """The container's lines; with ``opts.follow``, until the container ends (``grace_seconds``:
    how long an instance the account does not show yet may take to appear)."""
    if not instance_id.isdigit():
        raise LogsUnavailable(f"{instance_id!r} is not a Vast.ai instance")
    budget = opts.limit_bytes if opts.limit_bytes is not None else math.inf
    first = await client.show_instance(int(instance_id))
    waited = 0.0
    while first is None and opts.follow and waited < grace_seconds:  # just rented: read lag
        await trio.sleep(poll_seconds)
        waited += poll_seconds
        first = await client.show_instance(int(instance_id))
    args = first.get("image_args") if first is not None else None
    nonce = translate.nonce_of(args if isinstance(args, list) else None)
    label = first.get("label") if first is not None else None
    job = isinstance(label, str) and label.endswith(translate.JOB_SUFFIX)
    if not opts.follow:
        text = await client.request_logs(int(instance_id), tail=opts.tail_lines)
        for line in user_lines(text, nonce):
            budget -= len(line) + 1
            if budget < 0:
                return
            yield LogLine(text=line)
        return
    sent: int | None = None
    ending, alive, waited = False, False, 0.0
    while True:
        text = await client.request_logs(int(instance_id))
        lines = user_lines(text, nonce)
        if sent is None:
            tail = opts.tail_lines
            sent = max(0, len(lines) - tail) if tail is not None else 0
        for line in lines[sent:]:
            budget -= len(line) + 1
            if budget < 0:
                return
            yield LogLine(text=line)
        sent = max(sent, len(lines))
        if ending or (job and nonce and exit_marker.last_in(text, nonce) is not None):
            return
        row = await client.show_instance(int(instance_id))
        if row is None:
            waited += poll_seconds
            if alive or waited > grace_seconds:
                return  # destroyed
        else:
            alive = True
            status, message = row.get("actual_status"), str(row.get("status_msg") or "")
            failed = status in ("created", "loading") and ERROR_MESSAGE.search(message)
            ending = status in LOST or bool(failed)
        if not ending:
            await trio.sleep(poll_seconds)


def user_lines(text: str, nonce: str | None) -> list[str]:
    """The container's lines, without the wrapper's markers (those with ``nonce``)."""
    lines = text.splitlines()
    if nonce is None:
        return lines
    return [line for line in lines if exit_marker.parse(line, nonce) is None]
