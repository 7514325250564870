"""Fault isolation helpers: groups are split properly, a fault is logged once with its
traceback, repeats are one line, and cancellation is never a fault."""

from __future__ import annotations

import io
import logging

import pytest
import trio

from vk_trio import faults
from vk_trio.errors import KubeTransportError
from vk_trio.logs import get_logger, setup_logging


def boom() -> None:
    raise ValueError("bad value")


def test_routine_failures_are_recognised_however_a_nursery_grouped_them() -> None:
    group = ExceptionGroup(
        "g", [KubeTransportError("a"), ExceptionGroup("h", [KubeTransportError("b")])]
    )
    assert faults.only(group, KubeTransportError)
    assert not faults.only(
        ExceptionGroup("g", [KubeTransportError("a"), ValueError("x")]), KubeTransportError
    )
    assert [str(e) for e in faults.leaves(group)] == ["a", "b"]
    assert str(faults.first(group)) == "a"


def test_describe_names_the_type_and_the_size_of_a_group() -> None:
    assert faults.describe(ValueError("x")) == "ValueError: x"
    assert faults.describe(ExceptionGroup("g", [KeyError("k"), ValueError("v")])) == (
        "KeyError: 'k' (and 1 more)"
    )
    assert len(faults.describe(ValueError("y" * 5000))) < 400


def test_a_fault_is_logged_once_with_its_traceback_then_one_line_per_repeat() -> None:
    out = io.StringIO()
    setup_logging("debug", "text", stream=out)
    log = get_logger("vk_trio.test")
    fault_log = faults.FaultLog()
    for _ in range(3):
        try:
            boom()
        except ValueError as exc:
            fault_log.report("pod-1", exc, log=log, what="reconcile")
    text = out.getvalue()
    assert text.count("Traceback") == 1
    assert "failed again (3 times in a row)" in text
    fault_log.clear("pod-1")
    try:
        boom()
    except ValueError as exc:
        assert fault_log.report("pod-1", exc, log=log, what="reconcile") == 1  # news again


def test_the_log_forgets_old_keys() -> None:
    fault_log = faults.FaultLog(remembered=2)
    log = logging.getLogger("vk_trio.test.quiet")
    for key in ("a", "b", "c"):
        fault_log.report(key, ValueError("v"), log=log, what="x")
    assert fault_log.report("a", ValueError("v"), log=log, what="x") == 1


def test_a_routine_failure_of_a_loop_is_one_warning_line() -> None:
    out = io.StringIO()
    setup_logging("debug", "text", stream=out)
    fault_log = faults.FaultLog()
    log = get_logger("vk_trio.test")
    assert not fault_log.failed(
        "k", KubeTransportError("down"), log=log, what="lease", routine=KubeTransportError
    )
    assert "WARN" in out.getvalue() and "Traceback" not in out.getvalue()
    assert fault_log.failed(
        "k", ValueError("odd"), log=log, what="lease", routine=KubeTransportError
    )


async def test_cancellation_is_never_caught_by_a_barrier() -> None:
    caught: list[BaseException] = []
    with trio.move_on_after(0.01):
        try:
            await trio.sleep_forever()
        except Exception as exc:  # what every barrier catches  # pragma: no cover
            caught.append(exc)
    assert caught == []
    with pytest.raises(BaseExceptionGroup) as info:
        raise BaseExceptionGroup("mixed", [ValueError("x"), KeyboardInterrupt()])
    assert not isinstance(info.value, Exception)  # so `except Exception` lets it through
