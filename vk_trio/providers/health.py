"""How each cloud of a several-cloud node is doing, and when to ask it again.

A marketplace has bad hours: 5xx answers and timeouts (an outage), 429s, or an account that can
no longer pay. On a node that fronts several clouds the others can serve meanwhile, so a cloud
that fails is left alone for a while instead of being asked again by every pending pod:

* **Failing** (``ProviderUnavailable``, ``RateLimited``): skipped for a cool-down that starts at
  ``COOLDOWN_INITIAL`` and doubles with every failure in a row, up to ``COOLDOWN_MAX`` (never
  shorter than the cloud's own Retry-After). Any call that succeeds ends the streak, so the
  next failure starts short again, but never the cool-down under way: a cloud whose lists work
  and whose creates fail is still left alone for a while after each failed create.
* **Refusing payment** (``PaymentRequired``, ``ProviderAuthFailed``: a human has to act):
  skipped until its next successful call. It is given one chance every ``PAYMENT_PROBE``
  seconds (its offers join placement again); a create that succeeds there clears it.

Every change of state is kept as a ``Notice`` for the daemon, which turns it into a Node Event
and condition; /metrics reads ``states()``. Time is trio's clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import trio

from vk_trio.providers.base import (
    CloudError,
    PaymentRequired,
    ProviderAuthFailed,
    ProviderUnavailable,
    RateLimited,
)

COOLDOWN_INITIAL = 5.0
COOLDOWN_MAX = 300.0
PAYMENT_PROBE = 300.0
MAX_NOTICES = 100


class CloudState(enum.StrEnum):
    OK = "ok"
    COOLING_DOWN = "cooling_down"
    PAYMENT_REFUSED = "payment_refused"


@dataclass(frozen=True, kw_only=True)
class Notice:
    """One change of a cloud's state, for a Node Event."""

    cloud: str
    state: CloudState
    reason: str  # the error's reason, or "CloudRecovered"
    message: str


@dataclass(kw_only=True)
class _Cloud:
    failures: int = 0
    until: float = 0.0  # trio time before which the cloud is skipped (cool-down)
    refused: CloudError | None = None  # the payment/auth error, while it holds
    probe_at: float = 0.0
    last_error: str = ""


class Health:
    def __init__(self, clouds: tuple[str, ...]) -> None:
        self.clouds = clouds
        self._state = {name: _Cloud() for name in clouds}
        self.notices: list[Notice] = []  # the latest MAX_NOTICES
        self.notice_total = 0  # notices ever made (a reader keeps its own count)
        self.changed = trio.Event()

    # --- questions ---------------------------------------------------------------------------

    def state(self, cloud: str) -> CloudState:
        entry = self._state[cloud]
        if entry.refused is not None:
            return CloudState.PAYMENT_REFUSED
        if trio.current_time() < entry.until:
            return CloudState.COOLING_DOWN
        return CloudState.OK

    def states(self) -> dict[str, CloudState]:
        return {name: self.state(name) for name in self.clouds}

    def usable(self, cloud: str) -> bool:
        """May placement ask this cloud now (a payment probe that is due counts)?"""
        entry = self._state[cloud]
        now = trio.current_time()
        if entry.refused is not None:
            return now >= entry.probe_at
        return now >= entry.until

    def why_not(self, cloud: str) -> CloudError:
        """The error that explains why ``cloud`` is skipped (its type drives the retry)."""
        entry = self._state[cloud]
        if entry.refused is not None:
            return type(entry.refused)(f"{cloud}: {entry.refused.message} (skipped until it pays)")
        left = max(0.0, entry.until - trio.current_time())
        return ProviderUnavailable(
            f"{cloud}: cooling down for {left:.0f}s after {entry.failures} failure(s): "
            f"{entry.last_error}",
            retry_after=left or None,
        )

    # --- what happened -------------------------------------------------------------------------

    def succeeded(self, cloud: str, *, paid: bool = False) -> None:
        """A call of ``cloud`` answered (``paid``: a create rented something)."""
        entry = self._state[cloud]
        troubled = entry.failures > 0 or (paid and entry.refused is not None)
        entry.failures = 0
        if paid:
            entry.refused = None
        if troubled and entry.refused is None:
            self._notice(cloud, CloudState.OK, "CloudRecovered", f"{cloud} answers again")

    def failed(self, cloud: str, error: CloudError) -> None:
        """React to ``error`` from ``cloud``; errors about one pod (NoCapacity, bad input) are
        not the cloud's fault and change nothing."""
        entry = self._state[cloud]
        now = trio.current_time()
        entry.last_error = f"{error.reason}: {error.message}"
        if isinstance(error, PaymentRequired | ProviderAuthFailed):
            first = entry.refused is None
            entry.refused, entry.probe_at = error, now + PAYMENT_PROBE
            if first:
                self._notice(
                    cloud,
                    CloudState.PAYMENT_REFUSED,
                    error.reason,
                    f"{cloud} refused: {error.message}; its offers are skipped until it "
                    f"accepts a create (tried again every {PAYMENT_PROBE:.0f}s)",
                )
            return
        if not isinstance(error, ProviderUnavailable | RateLimited):
            return
        first = entry.failures == 0  # a new streak: said once, until the cloud answers again
        delay = min(COOLDOWN_MAX, COOLDOWN_INITIAL * 2**entry.failures)
        entry.failures += 1
        entry.until = max(entry.until, now + max(delay, error.retry_after or 0.0))
        if first and entry.refused is None:
            self._notice(
                cloud,
                CloudState.COOLING_DOWN,
                error.reason,
                f"{cloud} failed ({error.reason}: {error.message}); the other clouds serve "
                f"new pods for {entry.until - now:.0f}s, longer while it keeps failing",
            )

    def _notice(self, cloud: str, state: CloudState, reason: str, message: str) -> None:
        self.notices.append(Notice(cloud=cloud, state=state, reason=reason, message=message))
        del self.notices[:-MAX_NOTICES]
        self.notice_total += 1
        self.changed.set()
        self.changed = trio.Event()
