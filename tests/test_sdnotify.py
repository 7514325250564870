"""systemd readiness notification over NOTIFY_SOCKET."""

from __future__ import annotations

import socket
from pathlib import Path

from vk_trio.sdnotify import notify


def test_ready_is_sent_to_the_notify_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        assert notify("READY=1", environ={"NOTIFY_SOCKET": str(path)})
        assert server.recv(64) == b"READY=1"


def test_without_systemd_nothing_is_sent() -> None:
    assert not notify("READY=1", environ={})
    assert not notify("READY=1", environ={"NOTIFY_SOCKET": "/nonexistent/socket"})
