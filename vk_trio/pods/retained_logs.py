"""The logs of containers whose instance is gone: ``kubectl logs job/x`` after it completed, and
``kubectl logs --previous`` after a restart.

A Job's instance is deleted the moment it ends (so nothing bills), and a restarted container's
old instance too; a real kubelet keeps the dead container's log file on its disk, so vk-trio
keeps the tail of each attempt's log (``per_attempt`` bytes, 1 MiB by default) when it ends,
up to ``total`` bytes for the whole node, the oldest attempt evicted first. With a ``directory``
(``--state-dir``) each tail is a file, so an agent restart keeps them and memory holds only an
index; without one they stay in memory.

Files: ``<directory>/<pod uid>/<attempt>.log``, created 0600 in 0700 directories. Names come from
the pod UID (checked to be a UID) and the attempt number, never from a user's string; the first
line is a JSON header with the namespace, pod and container names, then one line per log line:
an RFC 3339 timestamp (``-`` when the cloud gave none), a space, the text. A pod deleted from the
API drops its logs (``drop_pod``; ``prune`` after a restart).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import trio

from vk_trio.kube.timefmt import parse_kube_time
from vk_trio.logs import get_logger
from vk_trio.providers.base import LogLine

_log = get_logger("vk_trio.pods.retained_logs")
_UID = re.compile(r"^[0-9a-fA-F][0-9a-fA-F-]{0,63}$")
_FILE = re.compile(r"^(\d{1,9})\.log$")
DEFAULT_PER_ATTEMPT = 1024 * 1024
DEFAULT_TOTAL = 256 * 1024 * 1024


@dataclass(slots=True)
class Retained:
    """One kept attempt. ``data`` holds the lines in memory mode; ``path`` in disk mode."""

    pod_uid: str
    namespace: str
    pod: str
    container: str
    attempt: int
    size: int
    data: bytes | None = None
    path: Path | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return self.pod_uid, self.container, self.attempt


def encode_lines(lines: list[LogLine], limit: int) -> bytes:
    """The lines as stored, keeping the newest that fit in ``limit`` bytes (a single line longer
    than that keeps its end)."""
    out: list[bytes] = []
    size = 0
    for line in reversed(lines):
        stamp = line.timestamp.isoformat().replace("+00:00", "Z") if line.timestamp else "-"
        row = f"{stamp} {line.text}\n".encode(errors="replace")
        if size + len(row) > limit:
            if not out:
                out.append(row[-limit:])
                size = limit
            break
        out.append(row)
        size += len(row)
    return b"".join(reversed(out))


def decode_lines(data: bytes) -> list[LogLine]:
    lines = []
    for row in data.decode(errors="replace").splitlines():
        stamp, _, text = row.partition(" ")
        when: datetime | None = None
        if stamp != "-":
            try:
                when = parse_kube_time(stamp)
            except ValueError:
                when, text = None, row
        lines.append(LogLine(text=text, timestamp=when))
    return lines


class RetainedLogs:
    def __init__(
        self,
        *,
        per_attempt: int = DEFAULT_PER_ATTEMPT,
        total: int = DEFAULT_TOTAL,
        directory: Path | None = None,
    ) -> None:
        self.per_attempt = per_attempt
        self.total = total
        self.directory = directory
        self._entries: OrderedDict[tuple[str, str, int], Retained] = OrderedDict()
        self.size = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def has(self, pod_uid: str, container: str, attempt: int) -> bool:
        return (pod_uid, container, attempt) in self._entries

    def attempts(self, pod_uid: str, container: str) -> list[Retained]:
        """The kept attempts of one container, oldest first."""
        found = [e for e in self._entries.values() if e.pod_uid == pod_uid]
        return sorted((e for e in found if e.container == container), key=lambda e: e.attempt)

    async def keep(
        self,
        *,
        pod_uid: str,
        namespace: str,
        pod: str,
        container: str,
        attempt: int,
        lines: list[LogLine],
    ) -> Retained:
        data = encode_lines(lines, self.per_attempt)
        entry = Retained(
            pod_uid=pod_uid,
            namespace=namespace,
            pod=pod,
            container=container,
            attempt=attempt,
            size=len(data),
        )
        if self.directory is not None and _UID.match(pod_uid):
            entry.path = await trio.to_thread.run_sync(self._write, entry, data)
        else:
            entry.data = data
        self._forget(entry.key)
        self._entries[entry.key] = entry
        self.size += entry.size
        while self.size > self.total and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            self._forget(oldest)
            self.evicted += 1
        return entry

    async def read(self, entry: Retained) -> list[LogLine]:
        if entry.data is not None:
            return decode_lines(entry.data)
        if entry.path is None:
            return []
        path = entry.path

        def load() -> bytes:
            with path.open("rb") as handle:
                handle.readline()  # the header
                return handle.read(self.per_attempt + 1)

        try:
            return decode_lines(await trio.to_thread.run_sync(load))
        except OSError as exc:
            _log.warning("retained log %s cannot be read: %s", path, exc.strerror)
            return []

    def drop_pod(self, pod_uid: str) -> None:
        for key in [k for k in self._entries if k[0] == pod_uid]:
            self._forget(key)
        if self.directory is not None and _UID.match(pod_uid):
            shutil.rmtree(self.directory / pod_uid, ignore_errors=True)

    def prune(self, live_uids: set[str]) -> None:
        """Drop the logs of every pod not in ``live_uids`` (after a restart: deleted meanwhile)."""
        for uid in {k[0] for k in self._entries} - live_uids:
            self.drop_pod(uid)

    def load(self) -> None:
        """Index the files of a previous run (disk mode), oldest first; unreadable ones go."""
        if self.directory is None or not self.directory.is_dir():
            return
        found: list[tuple[float, Retained]] = []
        for pod_dir in self.directory.iterdir():
            if not pod_dir.is_dir() or not _UID.match(pod_dir.name):
                continue
            for file in pod_dir.iterdir():
                match = _FILE.match(file.name)
                entry = _read_header(file, pod_dir.name, int(match.group(1))) if match else None
                if entry is None:
                    file.unlink(missing_ok=True)
                    continue
                found.append((file.stat().st_mtime, entry))
        for _, entry in sorted(found, key=lambda pair: pair[0]):
            self._entries[entry.key] = entry
            self.size += entry.size

    def _forget(self, key: tuple[str, str, int]) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.size -= entry.size
        if entry.path is not None:
            entry.path.unlink(missing_ok=True)

    def _write(self, entry: Retained, data: bytes) -> Path:
        assert self.directory is not None
        pod_dir = self.directory / entry.pod_uid
        pod_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = pod_dir / f"{entry.attempt}.log"
        header = {
            "namespace": entry.namespace,
            "pod": entry.pod,
            "container": entry.container,
            "attempt": entry.attempt,
        }
        tmp = pod_dir / f".{entry.attempt}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps(header).encode() + b"\n")
            handle.write(data)
        os.replace(tmp, path)
        return path


def _read_header(file: Path, uid: str, attempt: int) -> Retained | None:
    try:
        with file.open("rb") as handle:
            header = json.loads(handle.readline(4096))
            size = file.stat().st_size - handle.tell()
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or not isinstance(header.get("container"), str):
        return None
    return Retained(
        pod_uid=uid,
        namespace=str(header.get("namespace", "")),
        pod=str(header.get("pod", "")),
        container=header["container"],
        attempt=attempt,
        size=size,
        path=file,
    )
