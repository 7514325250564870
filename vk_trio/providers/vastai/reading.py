"""The Vast.ai account's instance rows that are this node's, read into ``Instance``s.

Why a module of its own: a row passes three steps before it is an instance, each with its own
rule. Ownership: the row's label (translate.py) names the node and the pod; a row without our
node's label is never touched. Decoding: one row of odd shape is that row's problem, not the
list's (providers/rows.py): a row of ours whose id can still be read becomes a placeholder (its
pod is not rented twice and it can still be destroyed), any other is skipped and reported.
Reading: status.py turns a decoded row into an ``Instance`` with the exit markers (exits.py)
and the time the row was first seen running, which only a reader that saw every list can know
(a container that ran keeps its start time after it ends; Vast.ai reports none).

The filter language has no prefix operator and the server's string ordering is not documented,
so the node's rows are picked by their label here, from one paged pass over the account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vk_trio.errors import InvalidInput
from vk_trio.providers.base import Instance, ProviderUnavailable
from vk_trio.providers.rows import RowFaults
from vk_trio.providers.vastai import translate
from vk_trio.providers.vastai.exits import MarkerWatch
from vk_trio.providers.vastai.status import VastInstance, decode_row, instance_from


@dataclass(kw_only=True)
class Scan:
    """This node's rows in one list of the account."""

    ours: list[tuple[VastInstance, translate.Owner]] = field(default_factory=list)
    unreadable: list[Instance] = field(default_factory=list)  # placeholders
    listed: set[str] = field(default_factory=set)  # the keys listed, read or not

    def wrapped_running(self) -> list[tuple[int, str, bool]]:
        """(id, nonce, is a Job) of the running rows whose program runs under our wrapper:
        those whose log may carry an exit marker."""
        return [
            (row.id, nonce, owner.job)
            for row, owner in self.ours
            if row.actual_status == "running"
            and (nonce := translate.nonce_of(row.image_args)) is not None
        ]


class RowReader:
    """Reads one node's rows; remembers when each was first seen running."""

    def __init__(
        self,
        *,
        node_name: str,
        markers: MarkerWatch,
        rows: RowFaults,
        loading_timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.node_name = node_name
        self.node_tag = translate.node_tag(node_name)
        self.markers = markers
        self.rows = rows
        self.loading_timeout = loading_timeout
        self.clock = clock
        self._first_running: dict[str, float] = {}  # instance id → epoch seconds

    def scan(self, raws: list[dict[str, Any]]) -> Scan:
        """This node's rows among the account's, decoded (the undecodable as placeholders)."""
        scan = Scan()
        for raw in raws:
            text = raw.get("label")
            owner = translate.owner(text if isinstance(text, str) else None)
            if owner is None or owner.node_tag != self.node_tag:
                continue
            scan.listed.add(owner.key)
            try:
                row = decode(raw)
            except Exception as exc:  # one row's odd answer is that row's problem (rows.py)
                self._unreadable(raw, text, owner, exc, scan.unreadable)
                continue
            scan.ours.append((row, owner))
            if row.actual_status == "running":
                self._first_running.setdefault(str(row.id), self.clock())
        return scan

    def instances(self, ours: list[tuple[VastInstance, translate.Owner]]) -> list[Instance]:
        """Each decoded row as an ``Instance``, behind the same barrier (read after the markers
        that are due: they decide whether a wrapped program ended)."""
        found: list[Instance] = []
        for row, owner in ours:
            try:
                found.append(self.instance(row, owner))
            except Exception as exc:
                self._unreadable({"id": row.id}, row.label, owner, exc, found)
            else:
                self.rows.read(str(row.id))
        return found

    def newest(self, raws: list[dict[str, Any]], label: str) -> Instance | None:
        """The instance of the newest row carrying ``label`` (should there be two); a row that
        cannot be read is ``ProviderUnavailable`` here: a create must not guess."""
        owner = translate.owner(label)
        found = sorted(
            (r for r in raws if r.get("label") == label and _row_id(r) is not None),
            key=lambda r: _row_id(r) or 0,
        )
        if not found or owner is None:
            return None
        return self.instance(decode(found[-1]), owner)

    def instance(self, row: VastInstance, owner: translate.Owner) -> Instance:
        marker, restarts, last_exit = self.markers.fields(row.id)
        return instance_from(
            row,
            owner,
            node_name=self.node_name,
            marker=marker,
            wrapped=translate.wrapped(row.image_args),
            loading_timeout=self.loading_timeout,
            clock=self.clock,
            first_seen_running=self._first_running.get(str(row.id)),
            restarts=restarts,
            last_exit=last_exit,
        )

    def forget(self, instance_id: str) -> None:
        self._first_running.pop(instance_id, None)

    def _unreadable(
        self,
        raw: Mapping[str, Any],
        text: object,
        owner: translate.Owner,
        exc: Exception,
        found: list[Instance],
    ) -> None:
        """A row of ours we cannot read: a placeholder when its id is readable (so its pod is
        not rented twice and it can still be destroyed), else skipped and reported."""
        row_id = raw.get("id")
        if not isinstance(row_id, int) or isinstance(row_id, bool) or row_id < 0:
            self.rows.skipped(f"label {text!r:.80}", exc)
            return
        found.append(
            self.rows.placeholder(
                instance_id=str(row_id),
                node_name=self.node_name,
                pod_uid=owner.pod_uid,
                attempt=owner.attempt,
                exc=exc,
            )
        )


def decode(raw: dict[str, Any]) -> VastInstance:
    try:
        return decode_row(raw)
    except InvalidInput as exc:
        raise ProviderUnavailable(str(exc)) from exc


def _row_id(row: Mapping[str, Any]) -> int | None:
    value = row.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**53:
        return value
    return None
