"""The in-repo schema copies of the providers' OpenAPI documents, and their link to the originals.

Every other sim test judges traffic against these copies, so they must hold the whole schema
part of each document. Whether a copy still equals the published file is the one check that
needs that file: it runs when ``VK_TRIO_SPECS_DIR`` names the folder holding it (``.ci/run``
sets it); without it, tests/conftest.py leaves the check out and says so in the summary.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.sim import published_specs
from tests.sim.published_specs import ALL, Published


def _keys(node: Any, parent: str = "") -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found.add((parent, key))
            found |= _keys(value, key)
    elif isinstance(node, list):
        for value in node:
            found |= _keys(value, parent)
    return found


@pytest.mark.parametrize("published", ALL, ids=lambda p: p.source)
def test_each_copy_records_where_it_came_from(published: Published) -> None:
    recorded = published_specs.provenance(published)
    assert recorded["source"] == published.source
    assert re.fullmatch(r"[0-9a-f]{64}", recorded["sha256"])
    assert recorded["title"]
    assert recorded["version"]
    assert recorded["bytes"] > 0
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", recorded["taken"])


@pytest.mark.parametrize("published", ALL, ids=lambda p: p.source)
def test_each_copy_is_a_whole_schema_document_without_prose(published: Published) -> None:
    document = published_specs.load_copy(published)
    assert document["paths"]
    assert document["components"]["schemas"]
    assert published_specs.PROVENANCE not in document
    prose = {
        (parent, key)
        for parent, key in _keys(document)
        if key in {"description", "summary", "example", "examples"}
        and parent not in {"properties", "schemas", "patternProperties"}
    }
    assert not prose, sorted(prose)[:5]


def test_prose_is_dropped_but_a_property_called_description_stays() -> None:
    schema = {
        "description": "a pod",
        "properties": {"description": {"type": "string", "description": "what it is"}},
        "example": {"description": "x"},
    }
    assert published_specs.without_prose(schema) == {
        "properties": {"description": {"type": "string"}}
    }


def test_a_changed_published_document_is_reported(tmp_path: Path) -> None:
    source = tmp_path / published_specs.RUNPOD.source
    document = published_specs.load_copy(published_specs.RUNPOD)
    document["paths"].pop(next(iter(document["paths"])))
    source.write_text(published_specs.render(document))
    problems = published_specs.differences(published_specs.RUNPOD, tmp_path)
    assert len(problems) == 2  # the bytes and the schema part both differ
    assert "sha256" in problems[0]


@pytest.mark.published_specs
@pytest.mark.parametrize("published", ALL, ids=lambda p: p.source)
def test_each_copy_equals_the_published_document(published: Published) -> None:
    specs_dir = Path(os.environ[published_specs.ENV_SPECS_DIR])
    assert (specs_dir / published.source).is_file(), (
        f"{published_specs.ENV_SPECS_DIR}={specs_dir} holds no {published.source}"
    )
    assert published_specs.differences(published, specs_dir) == [], (
        "regenerate: python -m tests.sim.published_specs regenerate --specs-dir "
        f"{specs_dir}, then re-run tests/sim"
    )
