"""The table of GPU models: every GPU both simulated clouds sell has one, memory variants stay
apart, and users may spell a model the way any cloud does."""

from __future__ import annotations

import pytest

from vk_trio.providers import gpu_models
from vk_trio.providers.gpu_models import MODELS, lookup, model_of
from vk_trio.sim.runpod.catalog import DEFAULT_GPUS
from vk_trio.sim.vastai.offers import default_offers


def test_every_gpu_the_simulated_runpod_sells_maps_to_a_model_of_its_memory() -> None:
    for gpu in DEFAULT_GPUS:
        model = model_of("runpod", gpu.id, gpu.memory_gb)
        assert model is not None, gpu.id
        assert abs(model.memory_gb - gpu.memory_gb) <= 0.12 * model.memory_gb, gpu.id


def test_every_gpu_the_simulated_vast_ai_sells_maps_to_a_model_of_its_memory() -> None:
    for offer in default_offers():
        memory = round(offer.gpu_ram / 1024, 2)  # as the provider reports it (MiB → GiB)
        model = model_of("vastai", offer.gpu_name, memory)
        assert model is not None, offer.gpu_name
        assert abs(model.memory_gb - memory) <= 0.12 * model.memory_gb, offer.gpu_name


def test_the_same_gpu_on_both_clouds_is_one_model() -> None:
    assert model_of("runpod", "NVIDIA GeForce RTX 4090", 24) == model_of(
        "vastai", "RTX 4090", 23.99
    )
    assert model_of("runpod", "NVIDIA L40S", 48) == model_of("vastai", "L40S", 44.99)
    assert model_of("runpod", "NVIDIA H100 80GB HBM3", 80) == model_of("vastai", "H100 SXM", 79.6)


def test_memory_variants_of_one_name_are_different_models() -> None:
    small, large = model_of("vastai", "A100 SXM4", 40.0), model_of("vastai", "A100 SXM4", 80.0)
    assert small is not None and small.name == "A100 40GB"
    assert large is not None and large.name == "A100 80GB"
    assert model_of("runpod", "NVIDIA A100 80GB PCIe", 80) == large
    assert model_of("vastai", "A100 SXM4", 60.0) is None  # neither: not guessed
    assert model_of("vastai", "RTX 4060 Ti", 16).name == "RTX 4060 Ti 16GB"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("written", "model"),
    [
        ("RTX 4090", "RTX 4090"),
        ("rtx4090", "RTX 4090"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("a100-80gb", "A100 80GB"),
        ("H100 NVL", "H100 NVL"),
        ("RTX 4000Ada", "RTX 4000 Ada"),
    ],
)
def test_users_may_write_a_model_as_any_cloud_spells_it(written: str, model: str) -> None:
    found = lookup(written)
    assert found is not None and found.name == model


def test_a_name_that_means_several_models_or_none_is_no_model() -> None:
    assert lookup("A100 SXM4") is None  # 40 or 80 GB: the user must say
    assert lookup("RTX 9999") is None
    assert "A100 80GB" in gpu_models.known_names()


def test_the_table_names_each_model_and_each_clouds_name_once_per_memory() -> None:
    names = [model.name for model in MODELS]
    assert len(names) == len(set(names))
    for cloud in ("runpod", "vastai"):
        seen: dict[tuple[str, float], str] = {}
        for model in MODELS:
            for name in model.names_on(cloud):
                assert (name, model.memory_gb) not in seen, (cloud, name)
                seen[(name, model.memory_gb)] = model.name
