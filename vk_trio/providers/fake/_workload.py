"""What a fake instance does over time, as a pure function of when it was rented.

The fake never runs a timer. An instance's state is computed on demand from
``(created_at, now, workload)``, so the same answer comes out on trio's virtual clock in a unit
test, on the wall clock in a demo, and in a second process that reads the same state file after
the first one was killed with ``kill -9``.

A pod scripts its own instance with annotations (the same place users write ``runpod.io/*``
knobs); a bad value is the user's to fix, so it raises ``InvalidAnnotation`` naming the
annotation and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from vk_trio.providers.base import InstanceState, InvalidAnnotation

ANNOTATION_PREFIX = "fake.vk-trio.io/"
BOOT_SECONDS = ANNOTATION_PREFIX + "boot-seconds"
START_SECONDS = ANNOTATION_PREFIX + "start-seconds"
RUN_SECONDS = ANNOTATION_PREFIX + "run-seconds"
EXIT_CODE = ANNOTATION_PREFIX + "exit-code"
LOGS = ANNOTATION_PREFIX + "logs"
FAIL = ANNOTATION_PREFIX + "fail"

# The scripted failures, by the moment they strike.
FAIL_NO_CAPACITY = "no-capacity"  # create raises NoCapacity; nothing is rented
FAIL_CREATE_500 = "create-500"  # create raises ProviderUnavailable; nothing is rented
FAIL_CREATE_500_CREATED = "create-500-created"  # create rents, then answers ProviderUnavailable
FAIL_IMAGE_ERROR = "image-error"  # the instance boots, then goes FAILED (image cannot be pulled)
FAIL_MODES = frozenset(
    {FAIL_NO_CAPACITY, FAIL_CREATE_500, FAIL_CREATE_500_CREATED, FAIL_IMAGE_ERROR}
)


class Workload(msgspec.Struct, frozen=True, kw_only=True):
    """How an instance behaves once rented; stored with it, so its future is fixed at create.

    Times are seconds: ``boot_seconds`` in PROVISIONING, then ``start_seconds`` in STARTING, then
    RUNNING for ``run_seconds`` (``None``: forever) and EXITED with ``exit_code``. ``logs`` are
    printed evenly over the run (all at once at start when it runs forever). ``fail`` is one of
    ``FAIL_MODES`` or empty.
    """

    boot_seconds: float = 1.0
    start_seconds: float = 1.0
    run_seconds: float | None = None
    exit_code: int = 0
    logs: tuple[str, ...] = ()
    fail: str = ""

    @property
    def running_from(self) -> float:
        """Seconds after rental at which the container's process starts."""
        return self.boot_seconds + self.start_seconds


@dataclass(frozen=True, kw_only=True)
class Phase:
    """Where an instance is in its lifecycle at one moment (times are epoch seconds)."""

    state: InstanceState
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    message: str = ""


def phase_at(workload: Workload, *, created_at: float, now: float, image: str = "") -> Phase:
    """The lifecycle state at ``now`` of an instance rented at ``created_at``."""
    booted = created_at + workload.boot_seconds
    if now < booted:
        return Phase(state=InstanceState.PROVISIONING)
    if workload.fail == FAIL_IMAGE_ERROR:
        return Phase(
            state=InstanceState.FAILED,
            finished_at=booted,
            message=f"image pull failed: {image or 'image'} could not be pulled (scripted)",
        )
    started = created_at + workload.running_from
    if now < started:
        return Phase(state=InstanceState.STARTING)
    if workload.run_seconds is None or now < started + workload.run_seconds:
        return Phase(state=InstanceState.RUNNING, started_at=started)
    return Phase(
        state=InstanceState.EXITED,
        started_at=started,
        finished_at=started + workload.run_seconds,
        exit_code=workload.exit_code,
    )


def ended_at(workload: Workload, *, created_at: float) -> float | None:
    """When the instance stops consuming capacity by itself (exit or failure), if ever."""
    if workload.fail == FAIL_IMAGE_ERROR:
        return created_at + workload.boot_seconds
    if workload.run_seconds is None:
        return None
    return created_at + workload.running_from + workload.run_seconds


def log_schedule(workload: Workload, *, created_at: float) -> list[tuple[float, str]]:
    """Every log line with the epoch second it is printed at, in order.

    Lines are spread evenly over the run so a test can watch them arrive one by one; when the
    run is endless (or instant) they are all printed as the container starts. A failed image
    never starts, so it prints nothing.
    """
    if workload.fail == FAIL_IMAGE_ERROR or not workload.logs:
        return []
    start = created_at + workload.running_from
    run = workload.run_seconds or 0.0
    count = len(workload.logs)
    return [(start + run * index / count, line) for index, line in enumerate(workload.logs)]


def to_datetime(t: float | None) -> datetime | None:
    """Epoch seconds as an aware UTC datetime (what ``Instance`` and ``LogLine`` carry)."""
    return None if t is None else datetime.fromtimestamp(t, tz=UTC)


# --- annotations ----------------------------------------------------------------------------


def workload_for(annotations: Mapping[str, str], base: Workload) -> Workload:
    """``base`` with the pod's ``fake.vk-trio.io/*`` annotations applied (validated)."""
    changes: dict[str, object] = {}
    if BOOT_SECONDS in annotations:
        changes["boot_seconds"] = _seconds(BOOT_SECONDS, annotations[BOOT_SECONDS])
    if START_SECONDS in annotations:
        changes["start_seconds"] = _seconds(START_SECONDS, annotations[START_SECONDS])
    if RUN_SECONDS in annotations:
        raw = annotations[RUN_SECONDS]
        forever = raw.strip().lower() == "inf"
        changes["run_seconds"] = None if forever else _seconds(RUN_SECONDS, raw, forever_ok=True)
    if EXIT_CODE in annotations:
        changes["exit_code"] = _exit_code(annotations[EXIT_CODE])
    if LOGS in annotations:
        changes["logs"] = tuple(annotations[LOGS].removesuffix("\n").split("\n"))
    if FAIL in annotations:
        changes["fail"] = _fail(annotations[FAIL])
    return msgspec.structs.replace(base, **changes) if changes else base


def _bad(annotation: str, value: str, expected: str) -> InvalidAnnotation:
    return InvalidAnnotation(f"annotation {annotation}={value!r} is invalid: expected {expected}")


def _seconds(annotation: str, value: str, *, forever_ok: bool = False) -> float:
    expected = "a number of seconds >= 0" + (' or "inf"' if forever_ok else "")
    try:
        seconds = float(value)
    except ValueError:
        raise _bad(annotation, value, expected) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise _bad(annotation, value, expected)
    return seconds


def _exit_code(value: str) -> int:
    try:
        code = int(value.strip())
    except ValueError:
        raise _bad(EXIT_CODE, value, "an integer from 0 to 255") from None
    if not 0 <= code <= 255:
        raise _bad(EXIT_CODE, value, "an integer from 0 to 255")
    return code


def _fail(value: str) -> str:
    mode = value.strip()
    if mode not in FAIL_MODES:
        raise _bad(FAIL, value, "one of " + ", ".join(sorted(FAIL_MODES)))
    return mode
