"""The exposition writer speaks the Prometheus text format (prometheus-client parses it back)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from vk_trio.metrics import Family, Histogram, render


def parse(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_counters_and_gauges_with_escaped_labels_parse_back() -> None:
    text = render(
        [
            Family("vk_trio_pods", "gauge", "Pods").add(
                3, {"phase": "Running", "node": 'a"b\\c\nd'}
            ),
            Family("vk_trio_calls_total", "counter", "Calls").add(7, {"method": "create"}),
        ]
    )
    parsed = parse(text)
    assert parsed["vk_trio_pods"] == [
        ("vk_trio_pods", {"phase": "Running", "node": 'a"b\\c\nd'}, 3)
    ]
    assert parsed["vk_trio_calls"] == [("vk_trio_calls_total", {"method": "create"}, 7)]


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    histogram = Histogram([1, 5, 10])
    for value in (0.5, 3, 3, 7, 100):
        histogram.observe(value)
    parsed = parse(render([histogram.family("vk_trio_provisioning_seconds", "Latency")]))
    samples = {
        (name, labels.get("le")): value
        for name, labels, value in parsed["vk_trio_provisioning_seconds"]
    }
    assert samples[("vk_trio_provisioning_seconds_bucket", "1.0")] == 1
    assert samples[("vk_trio_provisioning_seconds_bucket", "5.0")] == 3
    assert samples[("vk_trio_provisioning_seconds_bucket", "10.0")] == 4
    assert samples[("vk_trio_provisioning_seconds_bucket", "+Inf")] == 5
    assert samples[("vk_trio_provisioning_seconds_count", None)] == 5
    assert samples[("vk_trio_provisioning_seconds_sum", None)] == 113.5
