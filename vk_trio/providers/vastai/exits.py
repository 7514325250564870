"""How the runs of our Vast.ai containers ended: the wrapper's markers, read from the logs.

Vast.ai reports no exit code (translate.py wraps every program). A Job's marker ends it; an
``Always`` pod's markers count the runs its wrapper restarted in place (``run=N`` is absolute,
so the count survives a restart of the agent). Reading a container's logs is a paced request
(one a second) plus an upload to wait for, so reads are rationed and kept off the list's
critical path (the provider's ``housekeep``, between two lists): a Job is looked at no more
often than every ``job_poll`` seconds, an ``Always`` pod every ``always_poll``, least recently
looked at first, at most ``per_list`` at a time, all of them together (cut off after
``budget_seconds`` when a list has to do them itself); what was not read is read later. The
server-side ``filter`` returns the marker lines only, so a chatty program costs nothing extra.
A read that fails is tried again later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import trio

from vk_trio import faults
from vk_trio.logs import get_logger
from vk_trio.providers import exit_marker
from vk_trio.providers.base import CloudError, Exit
from vk_trio.providers.vastai.client import VastClient

_log = get_logger("vk_trio.providers.vastai.exits")
_faults = faults.FaultLog()

JOB_POLL = 10.0
ALWAYS_POLL = 60.0
PER_LIST = 8
BUDGET_SECONDS = 5.0
TAIL = 5


@dataclass(kw_only=True, slots=True)
class _Watched:
    nonce: str
    job: bool
    marker: exit_marker.ExitMarker | None = None  # a Job's: it ended
    restarts: int = 0
    last_exit: Exit | None = None
    checked: float = -math.inf


class MarkerWatch:
    def __init__(
        self,
        client: VastClient,
        *,
        job_poll: float = JOB_POLL,
        always_poll: float = ALWAYS_POLL,
        per_list: int = PER_LIST,
        budget_seconds: float = BUDGET_SECONDS,
    ) -> None:
        self.client = client
        self.job_poll = job_poll
        self.always_poll = always_poll
        self.per_list = per_list
        self.budget_seconds = budget_seconds
        self._watched: dict[int, _Watched] = {}

    def fields(self, instance_id: int) -> tuple[exit_marker.ExitMarker | None, int, Exit | None]:
        """(a Job's marker, restarts, last exit) for ``status.instance_from``."""
        watched = self._watched.get(instance_id)
        if watched is None:
            return None, 0, None
        return watched.marker, watched.restarts, watched.last_exit

    def forget(self, instance_id: int) -> None:
        self._watched.pop(instance_id, None)

    async def read_due(
        self, running: Iterable[tuple[int, str, bool]], *, budget: float | None = BUDGET_SECONDS
    ) -> None:
        """``running``: (instance id, nonce, is a Job) of wrapped instances whose container is
        up; read the markers that are due, within the rations (module docstring). ``budget``:
        seconds the reads may take together (None: until done)."""
        now = trio.current_time()
        due: list[tuple[float, int]] = []
        live: set[int] = set()
        for instance_id, nonce, job in running:
            live.add(instance_id)
            watched = self._watched.get(instance_id)
            if watched is None or watched.nonce != nonce:
                watched = self._watched[instance_id] = _Watched(nonce=nonce, job=job)
            if watched.marker is not None:
                continue  # the Job ended; nothing more to learn
            poll = self.job_poll if job else self.always_poll
            if now - watched.checked >= poll:
                due.append((watched.checked, instance_id))
        due.sort()
        chosen = [instance_id for _, instance_id in due[: self.per_list]]
        if not chosen:
            return
        with trio.move_on_after(self.budget_seconds if budget is not None else math.inf):
            try:
                async with trio.open_nursery() as nursery:
                    for instance_id in chosen:
                        nursery.start_soon(self._read, instance_id)
            except* Exception as group:  # each read catches its own; this is a safety net
                _faults.report("read_due", group, log=_log, what="reading exit markers")

    async def _read(self, instance_id: int) -> None:
        """One instance's markers; whatever its logs hold is that instance's problem (logged,
        read again after the next list), never the other reads' or the list's."""
        try:
            await self._read_one(instance_id)
        except Exception as exc:
            what = f"reading the exit markers of Vast.ai instance {instance_id}"
            _faults.failed(f"exit:{instance_id}", exc, log=_log, what=what, routine=CloudError)

    async def _read_one(self, instance_id: int) -> None:
        watched = self._watched.get(instance_id)
        if watched is None:
            return
        watched.checked = trio.current_time()
        grep = f"{exit_marker.PREFIX} nonce={watched.nonce} "
        text = await self.client.request_logs(instance_id, tail=TAIL, grep=grep)
        markers = exit_marker.all_in(text, watched.nonce)
        if not markers:
            return
        last = max(markers, key=lambda m: m.run or 0)
        if watched.job:
            watched.marker = markers[-1]
            return
        if last.run is not None and last.run + 1 > watched.restarts:
            watched.restarts = last.run + 1
            at = datetime.fromtimestamp(last.at, UTC) if last.at is not None else None
            watched.last_exit = Exit(code=last.code, finished_at=at)
