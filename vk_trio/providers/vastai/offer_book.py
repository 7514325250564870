"""One offer search for many waiting pods, and one pod per offer.

Vast.ai allows ten offer searches a minute. Searching once per pod placed pods at that pace (the
fifth of five pods was rented 31 s after the first), and every pod went for the same cheapest
offer. The book instead:

* searches once per turn of the search endpoint for everything the pods waiting at that moment
  need (``selection.union_query``: each filter at its loosest; one search per disk size, since
  ``allocated_storage`` prices the offers), and serves every pod from that answer, each pod
  checking the offers against its own needs (the provider re-checks every filter);
* hands offers out cheapest first, one pod per offer: an offer that a create is under way for,
  or that we rented, is not given to the next pod (Vast.ai accepts a double buy of one offer and
  one of the two instances never starts; skypilot#9117), so fifty pods take fifty offers rather
  than fifty turns at the cheapest one;
* searches again only when an offer it handed out has vanished (a create answered
  ``no_such_ask``), when it cannot serve a pod its search was not made for, when its offers are
  used up (by our rentals, or the search was cut off by its limit), or after ``max_age``
  (prices move).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from vk_trio.providers.vastai import selection

MAX_AGE = 60.0  # seconds an answer serves before prices are looked at again

Search = Callable[[Mapping[str, Any]], Awaitable[list[dict[str, Any]]]]


@dataclass(kw_only=True)
class _Book:
    rows: list[dict[str, Any]]
    covers: frozenset[selection.Selection]
    at: float
    truncated: bool  # the search returned as many offers as it asked for: there may be more
    stale: bool = False
    taken: set[int] = field(default_factory=set)  # rented by us since, or vanished
    rented: bool = False  # we rented from it: a new search may show those offers again

    def free(self, claims: Mapping[int, str]) -> list[dict[str, Any]]:
        return [r for r in self.rows if _id(r) not in self.taken and _id(r) not in claims]


@dataclass(kw_only=True)
class _Shelf:
    """The book of one disk size, the pods waiting for it, and the search under way."""

    book: _Book | None = None
    waiting: dict[selection.Selection, int] = field(default_factory=dict)
    searching: trio.Event | None = None


class OfferBook:
    def __init__(
        self,
        search: Search,
        policy: selection.Policy,
        *,
        next_turn: Callable[[], float] = lambda: 0.0,
        max_age: float = MAX_AGE,
    ) -> None:
        self.search = search
        self.policy = policy
        self.next_turn = next_turn  # trio time the search endpoint's next turn comes
        self.max_age = max_age
        self.searches = 0
        self._shelves: dict[float, _Shelf] = {}
        self._claims: dict[int, str] = {}  # offer id → key a create is under way for

    async def rows_for(self, chosen: selection.Selection) -> list[dict[str, Any]]:
        """Offer rows (as searched) that may serve ``chosen``, not taken or being taken;
        waits for the next search when the book cannot serve it."""
        shelf = self._shelves.setdefault(chosen.disk_gb, _Shelf())
        shelf.waiting[chosen] = shelf.waiting.get(chosen, 0) + 1
        try:
            while True:
                book = shelf.book
                if book is not None and self._serves(book, chosen):
                    return [r for r in book.rows if _id(r) not in book.taken]
                if shelf.searching is not None:
                    await shelf.searching.wait()
                    continue
                await self._search(shelf)
        finally:
            shelf.waiting[chosen] -= 1
            if not shelf.waiting[chosen]:
                del shelf.waiting[chosen]

    def _serves(self, book: _Book, chosen: selection.Selection) -> bool:
        if book.stale or chosen not in book.covers:
            return False
        if trio.current_time() - book.at > self.max_age:
            return False
        # used up by our own rentals (an offer may take more than one instance) or cut off by
        # the search's limit: a new search may find more
        return bool(book.free(self._claims)) or not (book.truncated or book.rented)

    async def _search(self, shelf: _Shelf) -> None:
        shelf.searching = done = trio.Event()
        try:
            await trio.sleep_until(self.next_turn())  # everyone who comes meanwhile is included
            wanted = dict(shelf.waiting)
            query = selection.union_query(wanted, self.policy, wanted=sum(wanted.values()))
            self.searches += 1
            rows = await self.search(query)
            shelf.book = _Book(
                rows=rows,
                covers=frozenset(wanted),
                at=trio.current_time(),
                truncated=len(rows) >= int(query.get("limit", math.inf)),
            )
        finally:
            shelf.searching = None
            done.set()

    # --- one pod per offer ---------------------------------------------------------------------

    def claim(self, offer_id: int, key: str) -> str | None:
        """Take ``offer_id`` for ``key``'s create; the reason it cannot be had, or None."""
        holder = self._claims.get(offer_id)
        if any(offer_id in book.taken for book in self._books()):
            return "rented or gone since the search"
        if holder is not None and holder != key:
            return "being rented for another pod"
        self._claims[offer_id] = key
        return None

    def release(self, offer_id: int, key: str, *, rented: bool = False) -> None:
        if self._claims.get(offer_id) == key:
            del self._claims[offer_id]
        if rented:
            for book in self._books():
                if any(_id(r) == offer_id for r in book.rows):
                    book.taken.add(offer_id)
                    book.rented = True

    def vanished(self, offer_id: int) -> None:
        """A create found the offer gone: the books that offered it are out of date."""
        for book in self._books():
            if any(_id(r) == offer_id for r in book.rows):
                book.taken.add(offer_id)
                book.stale = True

    def _books(self) -> list[_Book]:
        return [shelf.book for shelf in self._shelves.values() if shelf.book is not None]


def _id(row: Mapping[str, Any]) -> int:
    value = row.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1
