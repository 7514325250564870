"""The seed's ``vast.ai/*`` annotations become Vast.ai's real filters, in Vast.ai's units."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vk_trio.providers.base import InvalidAnnotation, Requirements
from vk_trio.providers.vastai import selection
from vk_trio.providers.vastai.regions import COUNTRIES, REGIONS, countries
from vk_trio.providers.vastai.selection import Policy, search_query, select, size_bytes

POLICY = Policy()
MIB = 2**20


def query(
    annotations: dict[str, str], policy: Policy = POLICY, **need: object
) -> dict[str, object]:
    return search_query(select(Requirements(annotations=annotations, **need), policy), policy)  # type: ignore[arg-type]


def test_the_seed_readme_example_becomes_the_documented_filters() -> None:
    found = query(
        {
            "vast.ai/gpu-type": "RTX 3060",
            "vast.ai/gpu-fallbacks": "RTX 3060 Ti,RTX 4060,RTX 4070,RTX 3090",
            "vast.ai/price-max": "0.30",
            "vast.ai/region": "North America",
            "vast.ai/memory": "12GB",
            "vast.ai/disk": "50GB",
        }
    )
    assert found["gpu_name"] == {
        "in": ["RTX 3060", "RTX 3060 Ti", "RTX 4060", "RTX 4070", "RTX 3090"]
    }
    assert found["dph_total"] == {"lte": 0.30}
    assert {"US", "CA", "MX"} <= set(found["geolocation"]["in"])  # type: ignore[index]
    assert found["gpu_ram"] == {"gte": math.floor(12e9 / MIB * 0.98)}
    assert found["disk_space"] == {"gte": 50}
    assert found["allocated_storage"] == 50
    assert found["num_gpus"] == {"eq": 1}
    assert found["order"] == [["dph_total", "asc"]]
    assert found["verified"] == {"eq": True} and found["rentable"] == {"eq": True}
    assert found["reliability2"] == {"gte": 0.9} and found["direct_port_count"] == {"gte": 1}


def test_without_annotations_the_search_is_global_for_any_gpu() -> None:
    found = query({})
    assert "gpu_name" not in found
    assert "geolocation" not in found
    assert "dph_total" not in found
    assert found["allocated_storage"] == POLICY.default_disk_gb


caps = st.one_of(st.none(), st.floats(min_value=0.01, max_value=50, allow_nan=False))


@given(node=caps, pod=caps, annotation=caps)
def test_the_price_cap_is_the_lowest_of_node_pod_and_annotation(
    node: float | None, pod: float | None, annotation: float | None
) -> None:
    notes = {} if annotation is None else {"vast.ai/price-max": repr(annotation)}
    found = query(notes, Policy(max_price_per_hour=node), max_price_per_hour=pod)
    given_caps = [c for c in (node, pod, annotation) if c is not None]
    if given_caps:
        assert found["dph_total"] == {"lte": min(given_caps)}
    else:
        assert "dph_total" not in found


@pytest.mark.parametrize(("gpus", "cap"), [(1, 0.3), (2, 0.6), (8, 2.4)])
def test_the_nodes_max_gpu_price_is_per_gpu_so_an_instance_may_cost_it_times_its_gpus(
    gpus: int, cap: float
) -> None:
    found = query({}, Policy(max_gpu_price=0.3), gpu_count=gpus)
    assert found["dph_total"] == {"lte": pytest.approx(cap)}
    lower = query({"vast.ai/price-max": "0.25"}, Policy(max_gpu_price=0.3), gpu_count=gpus)
    assert lower["dph_total"] == {"lte": 0.25}  # the lowest cap still wins


@pytest.mark.parametrize("text", ["0.30", "$0.30", " 0.3 ", "0.30/h", "$0.30/hr", ".3"])
def test_prices_are_read_as_dollars_per_hour(text: str) -> None:
    assert selection.price(text) == pytest.approx(0.30)


@given(
    st.sampled_from(sorted(REGIONS)),
    st.sampled_from([str.lower, str.upper, str.title]),
    st.sampled_from([" ", "_", "-"]),
)
def test_region_names_map_to_their_country_codes_in_any_spelling(
    region: str, case: object, joiner: str
) -> None:
    spelled = case(region.replace(" ", joiner))  # type: ignore[operator]
    assert query({"vast.ai/region": spelled})["geolocation"] == {"in": sorted(set(REGIONS[region]))}


@given(st.lists(st.sampled_from(sorted(COUNTRIES)), min_size=1, max_size=6))
def test_an_explicit_list_of_country_codes_is_searched_as_given(codes: list[str]) -> None:
    text = " , ".join(code.lower() if i % 2 else code for i, code in enumerate(codes))
    assert query({"vast.ai/region": text})["geolocation"] == {"in": sorted(set(codes))}


@pytest.mark.parametrize("text", ["", "  ", "global", "Any"])
def test_an_empty_region_means_a_global_search(text: str) -> None:
    assert countries(text) is None
    assert "geolocation" not in query({"vast.ai/region": text})


@given(st.text(max_size=30))
@example("Atlantis")
@example("U.S.")
@example("ZZ")
@example("North Americaa")
def test_a_region_value_is_understood_or_refused_as_an_invalid_annotation(text: str) -> None:
    try:
        found = countries(text)
    except ValueError:
        with pytest.raises(InvalidAnnotation):
            query({"vast.ai/region": text})
        return
    assert found is None or set(found) <= COUNTRIES


UNITS = {
    "GB": 10**9,
    "G": 10**9,
    "GiB": 2**30,
    "Gi": 2**30,
    "MB": 10**6,
    "MiB": 2**20,
    "TB": 10**12,
}


@given(
    amount=st.integers(min_value=1, max_value=4000),
    unit=st.sampled_from(sorted(UNITS)),
    space=st.sampled_from(["", " "]),
    case=st.sampled_from([str.upper, str.lower, lambda s: s]),
)
def test_gpu_memory_sizes_become_megabytes_with_a_little_tolerance(
    amount: int, unit: str, space: str, case: object
) -> None:
    text = f"{amount}{space}{case(unit)}"  # type: ignore[operator]
    found = query({"vast.ai/memory": text})["gpu_ram"]
    assert found == {"gte": math.floor(amount * UNITS[unit] / MIB * 0.98)}


def test_the_seed_spellings_of_twelve_gigabytes() -> None:
    assert size_bytes("12GB", annotation="m") == 12 * 10**9
    assert size_bytes("12 GiB", annotation="m") == 12 * 2**30
    assert size_bytes("12000MB", annotation="m") == 12 * 10**9
    assert size_bytes("12", annotation="m") == 12 * 10**9
    # a 24 GiB RTX 4090 reports 24564 MB and must pass "24GiB"
    assert query({"vast.ai/memory": "24GiB"})["gpu_ram"]["gte"] <= 24564  # type: ignore[index]


@given(st.text(max_size=20))
@example("twelve")
@example("-12GB")
@example("0GB")
@example("12 GB extra")
@example("1e3GB")
@example("12PB")
def test_a_bad_size_is_only_ever_an_invalid_annotation(text: str) -> None:
    for key in ("vast.ai/memory", "vast.ai/disk"):
        with contextlib.suppress(InvalidAnnotation):
            query({key: text})


@given(st.text(max_size=20))
@example("cheap")
@example("-1")
@example("0")
def test_a_bad_price_is_only_ever_an_invalid_annotation(text: str) -> None:
    try:
        found = query({"vast.ai/price-max": text})
    except InvalidAnnotation:
        return
    assert found["dph_total"]["lte"] > 0  # type: ignore[index]


@given(st.integers(min_value=1, max_value=5000), st.sampled_from(["GB", "GiB", "TB"]))
def test_disk_is_searched_and_priced_at_the_same_size(amount: int, unit: str) -> None:
    found = query({"vast.ai/disk": f"{amount}{unit}"})
    gigabytes = max(8, math.ceil(amount * UNITS[unit] / 10**9))
    assert found["disk_space"] == {"gte": gigabytes}
    assert found["allocated_storage"] == gigabytes


def test_gpu_names_use_spaces_and_every_fallback_is_searched() -> None:
    found = query(
        {
            "vast.ai/gpu-type": "RTX_4090",
            "vast.ai/gpu-fallbacks": "A100 SXM4, ,H100  SXM,RTX 4090,L40S,L4",
        }
    )
    assert found["gpu_name"] == {"in": ["RTX 4090", "A100 SXM4", "H100 SXM", "L40S", "L4"]}
    with pytest.raises(InvalidAnnotation):
        query({"vast.ai/gpu-type": "  "})


@given(st.integers(min_value=1, max_value=8), st.integers(min_value=0, max_value=64_000))
def test_the_gpu_count_and_cpu_needs_come_from_the_requirements(gpus: int, millis: int) -> None:
    found = query({}, gpu_count=gpus, cpu_millis=millis, memory_mb=32_000)
    assert found["num_gpus"] == {"eq": gpus}
    assert found["cpu_ram"] == {"gte": 32_000}
    if millis:
        assert found["cpu_cores_effective"] == {"gte": millis / 1000}
    else:
        assert "cpu_cores_effective" not in found
