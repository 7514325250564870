"""What the simulators' OpenAPI judges share: where the published documents are, and jsonschema.

The documents live in shared/specs/ beside the repository (or inside it, or where
``VK_TRIO_SPECS_DIR`` says); each provider's ``support`` module loads its own and decides how a
request or an answer maps onto it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]


def spec_path(name: str) -> Path:
    """The published document ``name`` (the test fails when it is nowhere to be found)."""
    base = os.environ.get("VK_TRIO_SPECS_DIR")
    candidates = [Path(base)] if base else []
    candidates += [REPO.parent / "shared" / "specs", REPO / "shared" / "specs"]
    for directory in candidates:
        if (directory / name).is_file():
            return directory / name
    pytest.fail(f"{name} not found in {candidates} (set VK_TRIO_SPECS_DIR)")


def schema_errors(
    document: Mapping[str, Any], schema: Mapping[str, Any], instance: Any
) -> Iterator[jsonschema.ValidationError]:
    """``instance`` against ``schema``, whose ``$ref``s point into ``document``'s components."""
    root = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(root).iter_errors(instance)
