"""The fake marketplace's books: every instance ever rented, in memory or in a shared file.

With a state file the fake behaves like a real cloud across a crash: a node agent killed with
``kill -9`` and started again as a new process finds exactly the instances it had, and two
agents (or an agent and a test) see one marketplace. Every call re-reads the file; every change
is a read-modify-write under an exclusive ``flock`` and lands with ``os.replace`` after ``fsync``,
so a reader sees the old books or the new ones, never half of each.

The I/O is synchronous on purpose. The file is small and local, and a worker thread would let
``autojump_clock`` leap forward in virtual time while the file is read, which makes tests
nondeterministic. Holding the lock never spans an ``await``, so two providers in one process
cannot deadlock on it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from vk_trio.providers.base import ProviderUnavailable
from vk_trio.providers.fake._workload import Workload, ended_at

T = TypeVar("T")


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One rented instance, tagged (``node_name``, ``pod_uid``) unless someone else rented it."""

    instance_id: str
    node_name: str = ""
    pod_uid: str = ""
    attempt: int = 0
    offer_id: str = ""
    gpu_type: str = ""
    gpu_count: int = 0
    price_per_hour: float = 0.0  # the whole instance, as billed
    location: str = ""
    image: str = ""
    public_ip: str = ""
    created_at: float
    workload: Workload = Workload()
    delete_requested_at: float | None = None
    deleted_at: float | None = None  # when it is gone and billing stopped

    @property
    def key(self) -> str:
        return f"{self.pod_uid}.{self.attempt}"

    def owned_by(self, node_name: str) -> bool:
        """Tagged with this node and a pod: the only instances a node may list or delete."""
        return bool(node_name) and self.node_name == node_name and bool(self.pod_uid)

    def gone(self, now: float) -> bool:
        return self.deleted_at is not None and now >= self.deleted_at

    def holds_capacity(self, now: float) -> bool:
        """Not gone, not exited, not failed: the machine is still taken (also while terminating)."""
        end = ended_at(self.workload, created_at=self.created_at)
        return not self.gone(now) and (end is None or now < end)


class State(msgspec.Struct, kw_only=True):
    version: int = 1
    next_id: int = 1
    instances: list[Record] = msgspec.field(default_factory=list)

    def new_instance_id(self, prefix: str = "fake") -> str:
        """``<prefix>-000001``: a fake named after a cloud (a router's test) gets ids of its own."""
        instance_id = f"{prefix}-{self.next_id:06d}"
        self.next_id += 1
        return instance_id


class Store:
    """``read()`` the books, or ``update(change)`` them atomically (in memory or in a file)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory = State()
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(State)

    def read(self) -> State:
        """A private copy of the current books; mutate it freely."""
        if self.path is None:
            return State(next_id=self._memory.next_id, instances=list(self._memory.instances))
        try:
            return self._load(self.path)
        except (OSError, msgspec.DecodeError) as exc:
            raise ProviderUnavailable(f"fake state file {self.path} unreadable: {exc}") from exc

    def update(self, change: Callable[[State], T]) -> T:
        """Apply ``change`` to the books and keep the result unless ``change`` raises."""
        if self.path is None:
            state = self.read()
            result = change(state)
            self._memory = state
            return result
        try:
            return self._update_file(self.path, change)
        except (OSError, msgspec.DecodeError) as exc:
            raise ProviderUnavailable(f"fake state file {self.path} unusable: {exc}") from exc

    def _load(self, path: Path) -> State:
        return self._decode(self._raw(path))

    def _decode(self, data: bytes) -> State:
        return self._decoder.decode(data) if data else State()

    @staticmethod
    def _raw(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return b""

    def _update_file(self, path: Path, change: Callable[[State], T]) -> T:
        lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            data = self._raw(path)
            state = self._decode(data)
            result = change(state)
            if state != self._decode(data):  # a retried create or a repeated delete writes nothing
                self._write(path, self._encoder.encode(state))
            return result
        finally:
            os.close(lock_fd)  # releases the flock

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
