"""How the runs of our RunPod containers ended: Job exits and restarts, from the log stream.

RunPod reports no exit code, and restarts a container whose process exits (mapping.py). So:

* a Job's pod (Never/OnFailure) is done when its wrapper's marker appears in the log stream;
* an ``Always`` pod's container restarted when the pod's ``startedAt`` moves; the markers since
  the previous start say with which codes the runs ended (restartCount, lastState).

Log reads cost the account's rate-limit quota (every request counts, RunPod's windows are per
user), and a burst of 1,000 running Jobs read at every list would spend all of it on logs (and
did: the agent's own creates then waited for quota). So reads are rationed, and creates come
first: a Job pod is looked at no more often than every ``poll_seconds``, least recently looked
at first, at most ``per_list`` of them per list, and none while the quota is below half or a
create is in flight (one per list still goes, so nothing waits forever); an ``Always`` pod is
read only after a restart. The reads of one list run together and are cut off after
``budget_seconds``, so a list is never held up for long; what was not read is read next time.
A read that fails (429, 5xx, a broken stream) is simply retried at a later list.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime

import trio

from vk_trio import faults
from vk_trio.logs import get_logger
from vk_trio.providers import exit_marker
from vk_trio.providers.base import CloudError, Exit
from vk_trio.providers.runpod import mapping, models

_log = get_logger("vk_trio.providers.runpod.exits")
_faults = faults.FaultLog()

POLL_SECONDS = 10.0
PER_LIST = 16
BUDGET_SECONDS = 1.5
MARKER_TAIL = 10  # a Job's marker is its container's last line; a few more for safety
MAX_TAIL = 5000  # the v2 maximum
RESTART_READS = 3  # tries to read the markers of a restart before its code stays unknown

# (pod id, tail, since) → (line, time) pairs of the container's log, ending when it goes quiet
ReadLines = Callable[[str, int, str | None], AsyncGenerator[tuple[str, datetime | None]]]


@dataclass(kw_only=True, slots=True)
class _Track:
    nonce: str | None  # None: not wrapped (an Always pod we could not wrap)
    policy: str
    started: str | None = None  # startedAt of the run being watched
    restarts: int = 0
    last_exit: Exit | None = None
    exit: tuple[int, datetime | None] | None = None  # a Job's marker: (code, when)
    checked: float = -math.inf  # trio time of the last read
    unread: str | None = None  # Always: startedAt before the restart whose markers are unread
    unread_tries: int = 0
    unconfirmed: int = 0  # restarts seen from startedAt whose markers are not read yet
    noticed: Exit | None = None  # how the latest of them ended, as far as startedAt tells


class ExitWatch:
    """Per pod: what its wrapper and ``startedAt`` told us. One per provider."""

    def __init__(
        self,
        read: ReadLines,
        *,
        poll_seconds: float = POLL_SECONDS,
        per_list: int = PER_LIST,
        budget_seconds: float = BUDGET_SECONDS,
    ) -> None:
        self.read = read
        self.poll_seconds = poll_seconds
        self.per_list = per_list
        self.budget_seconds = budget_seconds
        self._tracks: dict[str, _Track] = {}

    def nonce(self, pod_id: str) -> str | None:
        track = self._tracks.get(pod_id)
        return track.nonce if track is not None else None

    def forget(self, pod_id: str) -> None:
        self._tracks.pop(pod_id, None)

    def instance_fields(
        self, pod_id: str
    ) -> tuple[tuple[int, datetime | None] | None, int, Exit | None]:
        """(the Job's exit, restarts, last exit) for ``mapping.to_instance``. A restart whose
        marker is still to be read is reported once it is read (or given up on), with its code,
        rather than first without it."""
        track = self._tracks.get(pod_id)
        if track is None:
            return None, 0, None
        return track.exit, track.restarts - track.unconfirmed, track.last_exit

    def observe(self, pods: Iterable[models.Pod]) -> None:
        """Take a fresh list: notice restarts (``startedAt`` moved), drop pods that are gone.
        An unwrapped pod is an ``Always`` pod (Jobs are always wrapped): its restarts count,
        with unknown codes."""
        live: set[str] = set()
        for pod in pods:
            live.add(pod.id)
            track = self._tracks.get(pod.id)
            if track is None:
                wrapped = mapping.wrapped(pod)
                policy = wrapped[0] if wrapped else "Always"
                track = self._tracks[pod.id] = _Track(
                    nonce=wrapped[1] if wrapped else None, policy=policy, started=pod.started_at
                )
                continue  # the first sight is the baseline (restarts before it are unknown)
            if track.policy != "Always" or not pod.started_at:
                continue
            if track.started and pod.started_at != track.started:
                before = mapping.parse_time(track.started)
                after = mapping.parse_time(pod.started_at)
                if before is not None and after is not None and after > before:
                    track.restarts += 1
                    noticed = Exit(code=None, started_at=before, finished_at=after)
                    if track.nonce is None:
                        track.last_exit = noticed  # unwrapped: no marker will tell more
                    else:
                        track.unconfirmed += 1
                        track.noticed = noticed
                        if track.unread is None:
                            track.unread, track.unread_tries = track.started, 0
            track.started = pod.started_at
        for gone in set(self._tracks) - live:
            del self._tracks[gone]

    async def read_due(
        self,
        pods: Iterable[models.Pod],
        *,
        busy: bool,
        room: float,
        budget: float | None = BUDGET_SECONDS,
    ) -> None:
        """Read the markers that are due, within the rations (see the module docstring);
        ``budget``: seconds the reads may take together (None: until they are done)."""
        now = trio.current_time()
        restarts: list[str] = []
        jobs: list[tuple[float, str]] = []
        for pod in pods:
            track = self._tracks.get(pod.id)
            if track is None or track.nonce is None:
                continue
            if track.unread is not None:
                restarts.append(pod.id)
            elif (
                track.policy != "Always"
                and track.exit is None
                and pod.status == "RUNNING"
                and pod.runtime is not None
                and now - track.checked >= self.poll_seconds
            ):
                jobs.append((track.checked, pod.id))
        jobs.sort()
        allowed = self.per_list if (room >= 0.5 and not busy) else 1
        chosen = restarts[: self.per_list] + [pod_id for _, pod_id in jobs[:allowed]]
        if not chosen:
            return
        with trio.move_on_after(self.budget_seconds if budget is not None else math.inf):
            try:
                async with trio.open_nursery() as nursery:
                    for pod_id in chosen:
                        nursery.start_soon(self._read_one, pod_id)
            except* Exception as group:  # each read catches its own; this is a safety net
                _faults.report("read_due", group, log=_log, what="reading exit markers")

    async def _read_one(self, pod_id: str) -> None:
        track = self._tracks.get(pod_id)
        if track is None or track.nonce is None:
            return
        track.checked = trio.current_time()
        since = track.unread
        if since is not None:
            track.unread_tries += 1
            if track.unread_tries > RESTART_READS:
                track.unread, track.unconfirmed = None, 0  # its code stays unknown
                track.last_exit = track.noticed
                return
        tail = MAX_TAIL if since is not None else MARKER_TAIL
        found: list[tuple[exit_marker.ExitMarker, datetime | None]] = []
        try:
            async with aclosing(self.read(pod_id, tail, since)) as lines:
                async for text, stamp in lines:
                    marker = exit_marker.parse(text, track.nonce)
                    if marker is not None:
                        found.append((marker, stamp))
        except Exception as exc:  # one pod's log stream is that pod's problem: a later list reads
            what = f"reading the exit marker of RunPod pod {pod_id}"
            _faults.failed(f"exit:{pod_id}", exc, log=_log, what=what, routine=CloudError)
            return
        if since is None:
            if found and track.policy != "Always":
                marker, stamp = found[-1]
                track.exit = (marker.code, stamp)
            return
        counted, noticed = track.unconfirmed, track.noticed
        track.unread, track.unconfirmed = None, 0
        track.last_exit = noticed
        if found:
            marker, stamp = found[-1]
            track.restarts += max(0, len(found) - counted)  # runs that ended between two lists
            start = noticed.started_at if noticed else None
            track.last_exit = Exit(code=marker.code, started_at=start, finished_at=stamp)
