"""Configuration: defaults < TOML < env < flags, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vk_trio.config import Config, load_config
from vk_trio.errors import ConfigError


def test_defaults_match_the_seeds() -> None:
    config = load_config(env={})
    assert config.node_name == "virtual-gpu"
    assert config.health_server_address == ":8080"
    # chosen at start: the provider from the API keys, the namespace from the ServiceAccount
    assert (config.provider, config.namespace) == ("", "")
    named = load_config(flags={"provider": "runpod"}, env={})
    assert named.taint_parts() == ("virtual-kubelet.io/provider", "runpod", "NoSchedule")


def test_several_clouds_from_a_flag_an_env_var_or_a_toml_list_keep_their_order(
    tmp_path: Path,
) -> None:
    assert load_config(flags={"provider": "vastai, RunPod"}, env={}).providers == (
        "vastai",
        "runpod",
    )
    assert load_config(env={"VK_PROVIDER": "runpod,vastai"}).provider == "runpod,vastai"
    file = tmp_path / "vk.toml"
    file.write_text('provider = ["runpod", "vastai"]\nmax_node_price = 12.5\n')
    config = load_config(config_file=str(file), env={})
    assert config.providers == ("runpod", "vastai") and config.max_node_price == 12.5
    # the taint keeps the first cloud's name: seed 000's toleration provider=runpod fits
    assert config.taint_parts() == ("virtual-kubelet.io/provider", "runpod", "NoSchedule")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("runpod,aws", "'aws' is not one of"),
        ("runpod,runpod", "names a cloud twice"),
        ("fake,runpod", "fake stands alone"),
    ],
)
def test_a_bad_provider_list_is_refused_naming_the_flag(value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=f"--provider: .*{needle}"):
        load_config(flags={"provider": value}, env={})


def test_a_provider_that_is_not_text_in_toml_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "vk.toml"
    file.write_text("provider = 3\n")
    with pytest.raises(ConfigError, match="provider"):
        load_config(config_file=str(file), env={})


def test_the_registry_mirror_is_a_setting_like_every_other(tmp_path: Path) -> None:
    env = {"VK_TRIO_REGISTRY_MIRROR": "https://mirror.example/v2"}
    assert load_config(env=env).registry_mirror == "https://mirror.example/v2"
    file = tmp_path / "vk.toml"
    file.write_text('registry_mirror = "https://file.example"\n')
    assert load_config(config_file=str(file), env={}).registry_mirror == "https://file.example"
    flags = {"registry_mirror": "https://flag.example"}
    assert load_config(flags=flags, env=env).registry_mirror == "https://flag.example"


def test_flags_beat_env_beat_the_config_file(tmp_path: Path) -> None:
    file = tmp_path / "vk.toml"
    file.write_text('node_name = "from-file"\nreconcile_interval = 11\ngpus = 3\n')
    env = {"KUBELET_NODE_NAME": "from-env", "RECONCILIATION_INTERVAL": "22"}
    config = load_config(flags={"node_name": "from-flag"}, env=env, config_file=str(file))
    assert config.node_name == "from-flag"
    assert config.reconcile_interval == 22
    assert config.gpus == 3


def test_the_seed_env_names_work() -> None:
    env = {
        "NODE_NAME": "vast-node",
        "RECONCILIATION_INTERVAL": "5",
        "MAX_GPU_PRICE": "0.3",
        "DATACENTER_IDS": "US-CA-2, EU-RO-1",
    }
    config = load_config(env=env)
    assert config.node_name == "vast-node"
    assert config.max_gpu_price == 0.3
    assert config.datacenter_ids == ("US-CA-2", "EU-RO-1")


def test_the_virtual_kubelet_librarys_tls_and_port_names_work() -> None:
    env = {
        "KUBELET_PORT": "10251",
        "VKUBELET_POD_IP": "10.0.0.5",
        "APISERVER_CERT_LOCATION": "/etc/tls/tls.crt",
        "APISERVER_KEY_LOCATION": "/etc/tls/tls.key",
        "APISERVER_CA_CERT_LOCATION": "/etc/tls/ca.crt",
        "STATE_DIRECTORY": "/var/lib/vk-trio",
    }
    config = load_config(env=env)
    assert (config.kubelet_port, config.node_ip) == (10251, "10.0.0.5")
    assert (config.tls_cert_file, config.tls_key_file) == ("/etc/tls/tls.crt", "/etc/tls/tls.key")
    assert config.client_ca_file == "/etc/tls/ca.crt"
    assert config.state_dir == "/var/lib/vk-trio"


def test_burst_is_off_by_default_and_takes_seed_002s_settings_from_env_and_file(
    tmp_path: Path,
) -> None:
    default = load_config(env={})
    assert (default.offload, default.pending_job_threshold, default.max_pending_time) == (
        False,
        1,
        0.0,
    )
    env = {"OFFLOAD": "true", "PENDING_JOB_THRESHOLD": "3", "MAX_PENDING_TIME": "120"}
    from_env = load_config(env=env)
    assert (from_env.offload, from_env.pending_job_threshold, from_env.max_pending_time) == (
        True,
        3,
        120.0,
    )
    file = tmp_path / "vk.toml"
    file.write_text("offload = true\npending_job_threshold = 0\nmax_pending_time = 30\n")
    from_file = load_config(env={}, config_file=str(file))
    assert from_file.offload and from_file.pending_job_threshold == 0
    assert from_file.max_pending_time == 30


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        ({"provider": "aws"}, "--provider"),
        ({"reconcile_interval": "soon"}, "--reconcile-interval"),
        ({"reconcile_interval": "-1"}, "--reconcile-interval"),
        ({"node_name": "Not_A_Node"}, "--nodename"),
        ({"log_format": "xml"}, "--log-format"),
        ({"health_server_address": "8080"}, "--health-server-address"),
        ({"taint": "key=value:Sometimes"}, "--taint"),
        ({"max_gpu_price": "0"}, "--max-gpu-price"),
        ({"kubelet_port": "70000"}, "--kubelet-port"),
        ({"tls_cert_file": "/tls.crt"}, "--tls-cert-file"),
        ({"serving_cert": "acme"}, "--serving-cert"),
        ({"log_retention_bytes": "-1"}, "--log-retention-bytes"),
        ({"pending_job_threshold": "-1"}, "--pending-job-threshold"),
        ({"pending_job_threshold": "one"}, "--pending-job-threshold"),
        ({"max_pending_time": "-5"}, "--max-pending-time"),
        ({"max_node_price": "-1"}, "--max-node-price"),
        ({"max_node_price": "lots"}, "--max-node-price"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_flag(flags: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(flags=flags, env={})


def test_an_unknown_key_in_the_config_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "vk.toml"
    file.write_text('nodename = "typo"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(config_file=str(file), env={})


def test_a_disabled_taint_registers_none() -> None:
    assert load_config(flags={"disable_taint": "true"}, env={}).taint_parts() is None


@given(st.text(max_size=30))
def test_any_interval_text_either_parses_or_is_a_config_error(text: str) -> None:
    try:
        config = load_config(flags={"reconcile_interval": text}, env={})
    except ConfigError:
        return
    assert isinstance(config, Config) and config.reconcile_interval > 0


@pytest.mark.parametrize("text", ["nan", "NAN", "inf", "-Infinity"])
def test_a_non_finite_number_is_a_config_error_naming_the_flag(text: str) -> None:
    for field, flag in (
        ("reconcile_interval", "--reconcile-interval"),
        ("kube_qps", "--kube-api-qps"),
    ):
        with pytest.raises(ConfigError, match=f"{flag}: .* is not a finite number"):
            load_config(flags={field: text}, env={})
