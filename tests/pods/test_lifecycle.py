"""The kubelet's rules for an ending container, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from vk_trio.kube.models import Pod, PodSpec
from vk_trio.pods import lifecycle
from vk_trio.pods.record import Terminated
from vk_trio.providers.base import Instance, InstanceState

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def instance(state: InstanceState, exit_code: int | None = None, **kw: Any) -> Instance:
    return Instance(
        instance_id="i-1", node_name="n", pod_uid="u", state=state, exit_code=exit_code, **kw
    )


@given(streak=st.integers(min_value=1, max_value=1000))
def test_crashloop_backoff_doubles_from_10s_and_caps_at_5_minutes(streak: int) -> None:
    delay = lifecycle.crashloop_delay(streak)
    assert 10 <= delay <= 300
    assert delay == min(300, 10 * 2 ** (streak - 1))


@given(policy=st.sampled_from(["Always", "OnFailure", "Never"]), code=st.integers(0, 255))
def test_restart_decisions_follow_the_restart_policy(policy: str, code: int) -> None:
    restart = lifecycle.should_restart(policy, code)
    expected = {"Always": True, "OnFailure": code != 0, "Never": False}[policy]
    assert restart is expected


def test_an_exit_code_becomes_completed_or_error() -> None:
    assert (
        lifecycle.terminated_from(instance(InstanceState.EXITED, 0), now=NOW).reason == "Completed"
    )
    ended = lifecycle.terminated_from(instance(InstanceState.EXITED, 3), now=NOW)
    assert (ended.exit_code, ended.reason) == (3, "Error")


def test_an_unknown_exit_code_is_never_reported_as_success() -> None:
    ended = lifecycle.terminated_from(instance(InstanceState.EXITED, None), now=NOW)
    assert ended.exit_code != 0 and ended.reason == "Error"
    assert "unknown" in ended.message


def test_a_failed_instance_that_never_started_could_not_run() -> None:
    ended = lifecycle.terminated_from(
        instance(InstanceState.FAILED, None, message="OCI runtime create failed"), now=NOW
    )
    assert ended.reason == "ContainerCannotRun"
    assert "OCI" in ended.message


def test_a_lost_instance_is_killed_with_137() -> None:
    assert lifecycle.lost(instance(InstanceState.RUNNING), now=NOW).exit_code == 137


def test_a_long_run_resets_the_crash_streak() -> None:
    short = Terminated(
        exit_code=1, reason="Error", started_at=NOW, finished_at=NOW + timedelta(seconds=5)
    )
    long = Terminated(
        exit_code=1, reason="Error", started_at=NOW, finished_at=NOW + timedelta(minutes=11)
    )
    assert not lifecycle.ran_long(short)
    assert lifecycle.ran_long(long)


@given(limit=st.integers(1, 10_000), elapsed=st.integers(0, 20_000))
def test_deadline_remaining_counts_down_from_the_start(limit: int, elapsed: int) -> None:
    pod = Pod(spec=PodSpec(active_deadline_seconds=limit))
    remaining = lifecycle.deadline_remaining(pod, start=NOW, now=NOW + timedelta(seconds=elapsed))
    assert remaining == limit - elapsed


def test_no_deadline_without_active_deadline_seconds() -> None:
    assert lifecycle.deadline_remaining(Pod(), start=NOW, now=NOW) is None
