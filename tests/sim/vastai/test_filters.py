"""The offer search evaluates Vast.ai's JSON filter language as the real service does."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vk_trio.sim.vastai import SimOffer, VastSim, default_offers
from vk_trio.sim.vastai.filters import QueryError, matches, parse_search, search

OFFERS = default_offers()


def ids(query: dict[str, Any], offers: list[SimOffer] = OFFERS) -> list[int]:
    return [row["id"] for row in search(offers, parse_search(query))]


def by(**kw: Any) -> list[int]:
    return sorted(
        o.id
        for o in OFFERS
        if o.verification == "verified" and o.available > 0 and all(kw[k](o) for k in kw)
    )


def test_gpu_names_match_exactly_with_spaces() -> None:
    assert sorted(ids({"gpu_name": {"in": ["RTX 3060"]}})) == by(
        gpu_name=lambda o: o.gpu_name == "RTX 3060"
    )
    assert ids({"gpu_name": {"in": ["RTX_3060"]}}) == []  # the CLI's input spelling
    assert ids({"gpu_name": {"eq": "RTX 306"}}) == []  # no substring matching


def test_numbers_sent_as_strings_are_compared_as_numbers() -> None:
    assert sorted(ids({"num_gpus": {"eq": "2"}})) == by(num_gpus=lambda o: o.num_gpus == 2)
    assert ids({"gpu_ram": {"gte": "80000"}}) == ids({"gpu_ram": {"gte": 80000}})
    assert ids({"verified": {"eq": "true"}}) == ids({})


def test_geolocation_filters_by_the_country_code_of_city_cc() -> None:
    found = ids({"geolocation": {"in": ["US", "CA"]}})
    assert found and all(OFFER[i].country in ("US", "CA") for i in found)
    outside = ids({"geolocation": {"notin": ["US", "CA"]}})
    assert set(found).isdisjoint(outside)
    assert sorted(found + outside) == sorted(ids({}))


def test_the_defaults_hide_unverified_and_sold_out_offers() -> None:
    unverified = next(o for o in OFFERS if o.verification != "verified")
    assert unverified.id not in ids({})
    assert unverified.id in ids({"verified": {"eq": False}})
    sold_out = [
        SimOffer(id=1, machine_id=1, gpu_name="L4", gpu_ram=24_000, dph_base=0.1, available=0)
    ]
    assert ids({}, sold_out) == []
    assert ids({"rentable": {"eq": False}}, sold_out) == [1]


def test_dph_total_includes_storage_at_allocated_storage() -> None:
    offer = OFFERS[0]
    small = search([offer], parse_search({"allocated_storage": 10}))[0]
    big = search([offer], parse_search({"allocated_storage": 1000}))[0]
    assert small["dph_total"] == pytest.approx(offer.dph_base + 10 * offer.storage_cost / 720)
    assert big["dph_total"] == pytest.approx(offer.dph_base + 1000 * offer.storage_cost / 720)
    cap = (small["dph_total"] + big["dph_total"]) / 2
    assert ids({"id": {"eq": offer.id}, "dph_total": {"lte": cap}, "allocated_storage": 10}) == [
        offer.id
    ]
    assert ids({"id": {"eq": offer.id}, "dph_total": {"lte": cap}, "allocated_storage": 1000}) == []


def test_order_and_limit() -> None:
    rows = search(OFFERS, parse_search({"order": [["dph_total", "asc"]], "limit": 3}))
    prices = [row["dph_total"] for row in rows]
    assert len(rows) == 3
    assert prices == sorted(prices)
    every = [
        r["dph_total"] for r in search(OFFERS, parse_search({"order": [["dph_total", "asc"]]}))
    ]
    assert prices == every[:3]
    desc = search(OFFERS, parse_search({"order": [["dph_total", "desc"]]}))
    assert [r["dph_total"] for r in desc] == sorted(every, reverse=True)


@pytest.mark.parametrize(
    "query",
    [
        {"num_gpus": {"like": 1}},
        {"num_gpus": 1},
        {"gpu_name": {"in": "RTX 4090"}},
        {"order": "dph_total"},
        {"limit": "many"},
    ],
)
def test_malformed_queries_are_refused(query: dict[str, Any]) -> None:
    with pytest.raises(QueryError):
        parse_search(query)


def test_unknown_fields_are_ignored_but_recorded() -> None:
    query = parse_search({"dph_lte": {"eq": 1}, "gpu_name": {"in": ["L40S"]}})
    assert query.ignored == ("dph_lte",)
    assert [r["gpu_name"] for r in search(OFFERS, query)] == ["L40S"]


OFFER = {o.id: o for o in OFFERS}
NUMERIC = ["num_gpus", "gpu_ram", "dph_total", "reliability2", "direct_port_count", "disk_space"]
OPS = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


@given(
    conditions=st.lists(
        st.tuples(
            st.sampled_from(NUMERIC),
            st.sampled_from(sorted(OPS)),
            st.floats(min_value=0, max_value=100_000, allow_nan=False),
            st.booleans(),
        ),
        max_size=4,
    )
)
def test_numeric_filters_select_exactly_the_offers_that_satisfy_them(
    conditions: list[tuple[str, str, float, bool]],
) -> None:
    query: dict[str, Any] = {"allocated_storage": 8}
    for name, op, value, as_string in conditions:
        query.setdefault(name, {})[op] = str(value) if as_string else value
    rows = [o.as_json(allocated_storage=8) for o in OFFERS]
    expected = sorted(
        row["id"]
        for row in rows
        if row["verification"] == "verified"
        and row["rentable"]
        and all(
            OPS[op](row[name], float(v))
            for name, ops in query.items()
            if name in NUMERIC
            for op, v in ops.items()
        )
    )
    assert sorted(ids(query)) == expected


@given(st.lists(st.sampled_from(["US", "CA", "DE", "JP", "ZZ"]), max_size=4))
def test_in_and_notin_partition_the_offers(codes: list[str]) -> None:
    inside = set(ids({"geolocation": {"in": codes}}))
    outside = set(ids({"geolocation": {"notin": codes}}))
    assert inside | outside == set(ids({}))
    assert not inside & outside


def test_a_missing_value_never_satisfies_an_ordering_comparison() -> None:
    assert not matches(None, "gte", 1)
    assert matches(None, "eq", None)
    assert matches(None, "neq", 1)


async def test_the_search_endpoint_answers_offers_and_works_without_a_key(
    sim: VastSim, http: httpx2.AsyncClient
) -> None:
    query = {"gpu_name": {"in": ["H100 SXM"]}, "order": [["dph_total", "asc"]]}
    with_key = (await http.post("/api/v0/bundles/", json=query)).json()["offers"]
    async with httpx2.AsyncClient(base_url=sim.url, trust_env=False) as anonymous:
        without = (await anonymous.post("/api/v0/bundles/", json=query)).json()["offers"]
    assert [o["id"] for o in with_key] == [o["id"] for o in without]
    assert [o["gpu_name"] for o in with_key] == ["H100 SXM", "H100 SXM"]
    assert with_key[0]["dph_total"] < with_key[1]["dph_total"]
    bad = await http.post("/api/v0/bundles/", json=query, headers={"authorization": "Bearer x"})
    assert bad.status_code == 404
    assert bad.json()["msg"] == "Invalid user key"
