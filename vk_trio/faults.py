"""Fault isolation: an unexpected exception in one unit of work is that unit's problem.

A node agent that dies on one pod's bad input takes every pod of the node with it, and after a
restart it meets the same input and dies again while the instances keep billing. So every unit
of work (one pod's reconcile, one status poll, one watch event, one row of a cloud's list) runs
behind a barrier: the routine errors it knows (KubeError, CloudError, InvalidInput...) are
handled as before, and anything else is a *fault*: reported once with its traceback, and the
unit is retried later like any retryable failure. The rest of the node carries on.

What is never caught: ``trio.Cancelled``, ``KeyboardInterrupt``, ``SystemExit``, or a
``BaseExceptionGroup`` that carries one. Barriers catch ``Exception``, which lets those through;
an ``ExceptionGroup`` (a nursery's errors, all of them ``Exception``) is split into its leaves, so
a group of CloudErrors is still routine and a group with a ``ValueError`` in it is a fault.

``FaultLog`` keeps the log readable: the first time a unit fails in a given way the traceback is
logged, later repeats are one line each, and it forgets old keys (bounded memory).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator

REMEMBERED = 4096  # keys a FaultLog remembers (pods, instances, loops)
DESCRIBE_LIMIT = 300  # characters of an exception message shown in Events and conditions


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``, groups flattened (``exc`` itself when not a group)."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def only(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    """Every leaf of ``exc`` is one of ``kinds``: a routine failure, however it was grouped."""
    return all(isinstance(leaf, kinds) for leaf in leaves(exc))


def first(exc: BaseException) -> BaseException:
    """The first leaf of ``exc`` (the one to show when a group holds several)."""
    return next(leaves(exc))


def describe(exc: BaseException, *, limit: int = DESCRIBE_LIMIT) -> str:
    """``ValueError: message`` for a message or an Event, shortened; a group names its size."""
    found = list(leaves(exc))
    head = found[0]
    message = str(head)
    text = f"{type(head).__name__}: {message}" if message else type(head).__name__
    if len(text) > limit:
        text = text[:limit] + "..."
    if len(found) > 1:
        text += f" (and {len(found) - 1} more)"
    return text


def _signature(exc: BaseException) -> tuple[str, ...]:
    """What makes two faults "the same" for logging: the types, and where the first was raised."""
    head = first(exc)
    where = ""
    tb = head.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
    return (*sorted({type(leaf).__name__ for leaf in leaves(exc)}), where)


class FaultLog:
    """Logs each fault once with its traceback, and its repeats as one line each."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self.remembered = remembered
        self.reported = 0  # faults reported in total (for /metrics)
        self._seen: OrderedDict[str, tuple[tuple[str, ...], int]] = OrderedDict()

    def report(
        self,
        key: str,
        exc: BaseException,
        *,
        log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
        what: str,
        level: int = logging.ERROR,
        traceback: bool = True,
    ) -> int:
        """Log ``exc`` (a fault of ``what``, for ``key``); returns how often in a row it was seen.

        ``traceback=False`` for a clean refusal (an InvalidInput), whose message says it all."""
        self.reported += 1
        signature = _signature(exc)
        seen = self._seen.pop(key, None)
        count = seen[1] + 1 if seen is not None and seen[0] == signature else 1
        self._seen[key] = (signature, count)
        if len(self._seen) > self.remembered:
            self._seen.popitem(last=False)
        if count == 1:
            log.log(
                level, "%s failed: %s", what, describe(exc), exc_info=exc if traceback else None
            )
        else:
            log.warning("%s failed again (%d times in a row): %s", what, count, describe(exc))
        return count

    def clear(self, key: str) -> None:
        """``key``'s unit succeeded: a later fault is news again."""
        self._seen.pop(key, None)

    def failed(
        self,
        key: str,
        exc: BaseException,
        *,
        log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
        what: str,
        routine: type[BaseException] | tuple[type[BaseException], ...],
    ) -> bool:
        """Log a failure of a long-running loop: a ``routine`` one (a KubeError for a loop that
        talks to the API server) as one warning line, anything else as a fault (``report``).
        Returns whether it was a fault."""
        if only(exc, routine):
            log.warning("%s failed: %s", what, first(exc))
            return False
        self.report(key, exc, log=log, what=what)
        return True
