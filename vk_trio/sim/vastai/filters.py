"""Vast.ai's JSON filter language, as the offer search and the instance list evaluate it.

A query is ``{field: {op: value}, ...}`` with ``op`` in ``eq neq gt gte lt lte in notin``, plus
control keys for the search (``order``, ``type``, ``limit``, ``allocated_storage``). The server
is lenient where clients disagree: plain numbers may arrive as strings (the CLI sends
``{"num_gpus": {"eq": "1"}}``) and are coerced to the field's type. It is strict where a client
bug would otherwise pass unnoticed: an unknown operator or a malformed filter is a 400, and GPU
names are compared exactly, so ``"RTX_4090"`` (the CLI's input spelling) finds nothing.

``geolocation`` filters compare the country code at the end of ``"City, CC"``; ``verified`` is
``verification == "verified"``. Fields the simulator does not know are ignored, as the real
server ignores them, but recorded in ``OfferQuery.ignored`` so tests can see a client send one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vk_trio.sim.vastai.offers import DEFAULT_ALLOCATED_STORAGE, SimOffer

OPERATORS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "in", "notin"})
CONTROL_KEYS = frozenset({"order", "type", "limit", "allocated_storage"})
DEFAULT_FILTERS: dict[str, dict[str, Any]] = {
    "verified": {"eq": True},
    "rentable": {"eq": True},
    "rented": {"eq": False},
}
DEFAULT_ORDER: tuple[tuple[str, str], ...] = (("score", "desc"),)
DEFAULT_LIMIT = 64
BID_TYPES = frozenset({"bid", "interruptible"})
ALIASES = {"cuda_vers": "cuda_max_good", "reliability": "reliability2"}
# Columns of the instance list that are stored on the contract record (filterable); computed
# ones such as dph_total or num_gpus answer 400 (show_instances.yaml).
STORED_INSTANCE_COLUMNS = frozenset(
    {
        "id",
        "label",
        "actual_status",
        "intended_status",
        "cur_state",
        "next_state",
        "gpu_name",
        "verification",
        "machine_id",
        "host_id",
        "image_uuid",
        "template_id",
        "template_hash_id",
        "start_date",
        "end_date",
        "geolocation",
        "public_ipaddr",
    }
)


class QueryError(ValueError):
    """A malformed query; the message is what the 400 answer says."""


Filter = tuple[str, str, Any]


@dataclass(frozen=True, kw_only=True)
class OfferQuery:
    filters: tuple[Filter, ...]
    order: tuple[tuple[str, str], ...] = DEFAULT_ORDER
    limit: int = DEFAULT_LIMIT
    bid: bool = False
    allocated_storage: float = DEFAULT_ALLOCATED_STORAGE
    ignored: tuple[str, ...] = field(default=())


def parse_filters(raw: Mapping[str, Any], *, skip: Iterable[str] = ()) -> list[Filter]:
    """``{field: {op: value}}`` as a list of filters; raises ``QueryError`` when malformed."""
    skipped = set(skip)
    filters: list[Filter] = []
    for name, condition in raw.items():
        if name in skipped:
            continue
        if not isinstance(condition, dict) or not condition:
            raise QueryError(f"filter for {name!r} must be an object like {{'eq': value}}")
        for op, value in condition.items():
            if op not in OPERATORS:
                raise QueryError(f"unknown operator {op!r} for {name!r}")
            if op in ("in", "notin") and not isinstance(value, list):
                raise QueryError(f"{name!r} {op} needs a list")
            filters.append((name, op, value))
    return filters


def parse_search(body: Any) -> OfferQuery:
    """The body of ``POST /api/v0/bundles/`` (the spec's defaults filled in)."""
    if not isinstance(body, dict):
        raise QueryError("Invalid json body")
    query = {**DEFAULT_FILTERS, **body}
    filters = parse_filters(query, skip=CONTROL_KEYS)
    order_raw = body.get("order", [list(pair) for pair in DEFAULT_ORDER])
    if not isinstance(order_raw, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        for pair in order_raw
    ):
        raise QueryError("order must be a list of [field, 'asc'|'desc'] pairs")
    order = tuple((ALIASES.get(f, f), d.lower()) for f, d in order_raw)
    limit = body.get("limit", DEFAULT_LIMIT)
    storage = body.get("allocated_storage", DEFAULT_ALLOCATED_STORAGE)
    try:
        limit = int(limit)
        storage = float(storage)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"bad limit or allocated_storage: {exc}") from None
    known = set(SimOffer.__dataclass_fields__) | set(_SPECIAL) | set(ALIASES) | _OFFER_JSON_KEYS
    ignored = tuple(sorted({name for name, _, _ in filters if name not in known}))
    return OfferQuery(
        filters=tuple(f for f in filters if f[0] not in ignored),
        order=order,
        limit=max(1, limit),
        bid=str(body.get("type", "on-demand")).lower() in BID_TYPES,
        allocated_storage=storage,
        ignored=ignored,
    )


def search(offers: Iterable[SimOffer], query: OfferQuery) -> list[dict[str, Any]]:
    """Offers as JSON that pass every filter, ordered, at most ``limit``."""
    rows = [
        offer.as_json(allocated_storage=query.allocated_storage, bid=query.bid) for offer in offers
    ]
    rows = [row for row in rows if all(_offer_matches(row, f) for f in query.filters)]
    rows.sort(key=lambda row: row["id"])
    for name, direction in reversed(query.order):
        rows.sort(key=lambda row: sort_key(row.get(name)), reverse=direction == "desc")
    return rows[: query.limit]


def instance_matches(row: Mapping[str, Any], filters: Iterable[Filter]) -> bool:
    return all(matches(row.get(name), op, value) for name, op, value in filters)


def check_instance_filters(filters: Iterable[Filter]) -> None:
    for name, _, _ in filters:
        if name not in STORED_INSTANCE_COLUMNS:
            raise QueryError(f"Error in query parameters: {name} is not a valid search key")


# --- evaluation -------------------------------------------------------------------------------


def _country(row: Mapping[str, Any]) -> Any:
    return str(row.get("geolocation") or "").rsplit(",", 1)[-1].strip()


_SPECIAL: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "verified": lambda row: row.get("verification") == "verified",
    "geolocation": _country,
    "datacenter": lambda row: (row.get("hosting_type") or 0) >= 1,
}
_OFFER_JSON_KEYS = frozenset(
    SimOffer(id=0, machine_id=0, gpu_name="", gpu_ram=0, dph_base=0.0).as_json(
        allocated_storage=0.0
    )
)


def _offer_matches(row: Mapping[str, Any], flt: Filter) -> bool:
    name, op, value = flt
    name = ALIASES.get(name, name)
    actual = _SPECIAL[name](row) if name in _SPECIAL else row.get(name)
    return matches(actual, op, value)


def matches(actual: Any, op: str, operand: Any) -> bool:
    """One comparison, with the operand coerced to the type of ``actual``."""
    if op in ("in", "notin"):
        found = any(_equal(actual, item) for item in operand)
        return found if op == "in" else not found
    if op == "eq":
        return _equal(actual, operand)
    if op == "neq":
        return not _equal(actual, operand)
    if actual is None:
        return False
    want = _coerce(operand, actual)
    try:
        if op == "gt":
            return bool(actual > want)
        if op == "gte":
            return bool(actual >= want)
        if op == "lt":
            return bool(actual < want)
        return bool(actual <= want)  # lte
    except TypeError:
        return False


def _equal(actual: Any, operand: Any) -> bool:
    return bool(actual == _coerce(operand, actual))


def _coerce(operand: Any, like: Any) -> Any:
    """The CLI sends numbers and booleans as strings; compare them as the field's type."""
    if not isinstance(operand, str):
        return operand
    if isinstance(like, bool):
        return {"true": True, "false": False}.get(operand.lower(), operand)
    if isinstance(like, int | float):
        try:
            return float(operand)
        except ValueError:
            return operand
    return operand


def sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))
