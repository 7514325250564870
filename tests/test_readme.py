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
