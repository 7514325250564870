"""The README documents every setting, and keeps the two commands at its top."""

from __future__ import annotations

from pathlib import Path

from vk_trio.config import SETTINGS

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_flag_and_env_var_is_in_the_configuration_reference() -> None:
    reference = README.split("## Configuration", 1)[1]
    for setting in SETTINGS:
        assert f"`{setting.flag}`" in reference, setting.flag
        for name in setting.env:
            assert f"`{name}`" in reference, name


def test_the_two_commands_open_the_readme() -> None:
    top = README.split("## ", 1)[0]
    assert "make demo" in top and "make test" in top


def test_the_documented_defaults_are_the_real_ones() -> None:
    from vk_trio.config import Config

    defaults = Config()
    rows = {
        cells[1].strip("` "): cells[4].strip("` ")
        for line in README.split("## Configuration", 1)[1].splitlines()
        if line.startswith("| `--") and len(cells := line.split("|")) > 5
    }
    for setting in SETTINGS:
        value = getattr(defaults, setting.field)
        if isinstance(value, tuple):
            value = ",".join(value)
        if isinstance(value, bool):
            value = str(value).lower()
        expected = "—" if value in (None, "") else str(value)
        assert rows[setting.flag] == expected, setting.flag


def test_the_documented_meanings_are_the_flags_help() -> None:
    reference = README.split("## Configuration", 1)[1]
    for setting in SETTINGS:
        row = next(
            line for line in reference.splitlines() if line.startswith(f"| `{setting.flag}`")
        )
        assert row.rstrip(" |").endswith(setting.help), setting.flag


def test_the_keys_table_says_what_the_agent_chooses() -> None:
    from vk_trio.config import load_config
    from vk_trio.providers.registry import resolve

    section = README.split("| keys present | provider chosen |", 1)[1].split("\n\n", 1)[0]
    rows = {
        cells[1].strip(): cells[2].strip().split("`")[1]
        for line in section.splitlines()
        if line.startswith("| ") and len(cells := line.split("|")) > 3
    }
    envs = {
        "none": {},
        "a RunPod key": {"RUNPOD_API_KEY": "k"},
        "a Vast.ai key only": {"VAST_API_KEY": "k"},
        "both": {"RUNPOD_API_KEY": "k", "VAST_API_KEY": "k"},
        "any, with `--provider fake`": {"RUNPOD_API_KEY": "k", "VK_PROVIDER": "fake"},
    }
    assert set(rows) == set(envs)
    for row, env in envs.items():
        assert resolve(load_config(env=env), env).provider == rows[row], row
