"""Logs of ended attempts: tails kept per attempt, a total cap (oldest out first), files 0600
named from UIDs only, kept across a restart, dropped with their pod."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vk_trio.pods.retained_logs import RetainedLogs, decode_lines, encode_lines
from vk_trio.providers.base import LogLine

UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def lines(count: int, *, width: int = 10, stamped: bool = True) -> list[LogLine]:
    return [
        LogLine(text=f"{i:0{width}d}", timestamp=T0 + timedelta(seconds=i) if stamped else None)
        for i in range(count)
    ]


def test_the_newest_lines_that_fit_are_kept_with_their_times() -> None:
    data = encode_lines(lines(100), limit=200)
    kept = decode_lines(data)
    assert len(data) <= 200
    assert [line.text for line in kept] == [f"{i:010d}" for i in range(100 - len(kept), 100)]
    assert kept[-1].timestamp == T0 + timedelta(seconds=99)
    assert decode_lines(encode_lines(lines(2, stamped=False), limit=100))[0].timestamp is None
    huge = encode_lines([LogLine(text="x" * 500)], limit=100)
    assert len(huge) == 100  # one line longer than the limit keeps its end


async def test_memory_mode_keeps_tails_and_evicts_the_oldest_beyond_the_total() -> None:
    store = RetainedLogs(per_attempt=1000, total=2500)
    for attempt in range(4):
        await store.keep(
            pod_uid=UID, namespace="ns", pod="p", container="c", attempt=attempt, lines=lines(50)
        )
    assert store.size <= 2500
    assert [e.attempt for e in store.attempts(UID, "c")] == [2, 3]
    assert store.evicted == 2
    assert [line.text for line in await store.read(store.attempts(UID, "c")[-1])][
        -1
    ] == f"{49:010d}"
    store.drop_pod(UID)
    assert len(store) == 0 and store.size == 0


async def test_disk_mode_writes_private_files_named_from_the_uid_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    root = tmp_path / "logs"
    store = RetainedLogs(per_attempt=4096, total=1 << 20, directory=root)
    entry = await store.keep(
        pod_uid=UID,
        namespace="team-a",
        pod="../../etc",
        container="$(x)",
        attempt=1,
        lines=lines(3),
    )
    assert entry.data is None and entry.path == root / UID / "1.log"
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / UID).stat().st_mode) == 0o700
    assert sorted(p.name for p in root.rglob("*")) == [UID, "1.log"]  # no user string in a name
    restarted = RetainedLogs(per_attempt=4096, total=1 << 20, directory=root)
    restarted.load()
    (found,) = restarted.attempts(UID, "$(x)")
    assert (found.namespace, found.pod, found.attempt) == ("team-a", "../../etc", 1)
    assert [line.text for line in await restarted.read(found)] == [f"{i:010d}" for i in range(3)]
    restarted.prune({"another-uid"})  # the pod was deleted while the agent was down
    assert len(restarted) == 0 and not (root / UID).exists()


async def test_a_name_that_is_not_a_uid_never_reaches_the_disk(tmp_path: Path) -> None:
    store = RetainedLogs(directory=tmp_path)
    entry = await store.keep(
        pod_uid="../escape", namespace="n", pod="p", container="c", attempt=0, lines=lines(1)
    )
    assert entry.path is None and entry.data is not None
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 (a test's own scratch directory)


async def test_unreadable_files_of_a_previous_run_are_dropped(tmp_path: Path) -> None:
    (tmp_path / UID).mkdir()
    (tmp_path / UID / "0.log").write_bytes(b"not json\n")
    (tmp_path / UID / "notes.txt").write_bytes(b"x")
    store = RetainedLogs(directory=tmp_path)
    store.load()
    assert len(store) == 0
    assert not (tmp_path / UID / "0.log").exists()
