"""In-repo copies of the clouds' published OpenAPI documents: the schemas, without the prose.

The simulators' conformance tests judge requests and answers with jsonschema against what
RunPod and Vast.ai publish. Those documents live outside the repository (the project's
``shared/specs/``), so the repository carries a schema-only copy of each in ``tests/sim/specs/``:
every path, operation, parameter, request body, response and component, with descriptions,
summaries, examples and tags dropped (prose changes often and validates nothing). Each copy
records where it came from under ``x-vk-trio-provenance``: the published file's name, title,
version, size, sha256 and the day the copy was taken.

Regenerate after the providers publish a new document (then re-run the sim tests)::

    python -m tests.sim.published_specs regenerate --specs-dir ../shared/specs

``check`` (and tests/sim/test_published_specs.py, when ``VK_TRIO_SPECS_DIR`` names the folder
of the published files) says whether the copies still equal the documents.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

COPIES = Path(__file__).resolve().parent / "specs"
PROVENANCE = "x-vk-trio-provenance"
ENV_SPECS_DIR = "VK_TRIO_SPECS_DIR"

# Keys that carry prose for people, never a constraint jsonschema checks.
_PROSE = frozenset({"description", "summary", "example", "examples", "externalDocs", "tags"})
# Mappings whose keys are names chosen by the document's authors (a property may well be called
# "description"), so their keys are kept whatever they are.
_NAMED = frozenset(
    {
        "properties",
        "patternProperties",
        "$defs",
        "definitions",
        "paths",
        "schemas",
        "responses",
        "requestBodies",
        "headers",
        "securitySchemes",
        "content",
        "links",
        "callbacks",
        "encoding",
        "variables",
        "mapping",
    }
)


@dataclass(frozen=True)
class Published:
    """One published document and the name of its in-repo copy."""

    source: str  # file name in the specs folder, as the provider publishes it
    copy: str  # file name in tests/sim/specs/

    def read(self, specs_dir: Path) -> tuple[bytes, dict[str, Any]]:
        raw = (specs_dir / self.source).read_bytes()
        if self.source.endswith((".yaml", ".yml")):
            document = yaml.safe_load(raw)
        else:
            document = json.loads(raw)
        if not isinstance(document, dict):
            raise TypeError(f"{self.source}: not an OpenAPI document")
        return raw, document


RUNPOD = Published("runpod-rest-v2.openapi.json", "runpod-rest-v2.schema.json")
VASTAI = Published("vastai.openapi.yaml", "vastai.schema.json")
ALL = (RUNPOD, VASTAI)


def without_prose(node: Any, *, named: bool = False) -> Any:
    """``node`` with its keys sorted and prose keys dropped, except where keys are names."""
    if isinstance(node, dict):
        return {
            key: without_prose(value, named=key in _NAMED and not named)
            for key, value in sorted(node.items())
            if named or key not in _PROSE
        }
    if isinstance(node, list):
        return [without_prose(value) for value in node]
    return node


def schema_copy(
    published: Published, raw: bytes, document: Mapping[str, Any], *, taken: datetime.date
) -> dict[str, Any]:
    """The in-repo copy of ``document`` (read from the bytes ``raw``)."""
    info = document.get("info", {})
    copy: dict[str, Any] = without_prose(dict(document))
    copy[PROVENANCE] = {
        "source": published.source,
        "title": info.get("title", ""),
        "version": info.get("version", ""),
        "openapi": document.get("openapi", ""),
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "taken": taken.isoformat(),
    }
    return copy


def render(copy: Mapping[str, Any]) -> str:
    return json.dumps(copy, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


@cache
def _copy_text(name: str) -> str:
    return (COPIES / name).read_text()


def load_copy(published: Published) -> dict[str, Any]:
    """A fresh (mutable) copy of the in-repo document, provenance removed."""
    document: dict[str, Any] = json.loads(_copy_text(published.copy))
    document.pop(PROVENANCE, None)
    return document


def provenance(published: Published) -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads(_copy_text(published.copy))[PROVENANCE]
    return recorded


def differences(published: Published, specs_dir: Path) -> list[str]:
    """How the in-repo copy differs from the published document in ``specs_dir`` (none: [])."""
    raw, document = published.read(specs_dir)
    recorded = provenance(published)
    fresh = schema_copy(
        published, raw, document, taken=datetime.date.fromisoformat(recorded["taken"])
    )
    problems = []
    if fresh[PROVENANCE]["sha256"] != recorded["sha256"]:
        problems.append(
            f"{published.source}: sha256 {fresh[PROVENANCE]['sha256']} was "
            f"{recorded['sha256']} when {published.copy} was taken on {recorded['taken']}"
        )
    fresh.pop(PROVENANCE)
    if fresh != load_copy(published):
        problems.append(f"{published.copy} is not the schema part of {published.source}")
    return problems


def regenerate(specs_dir: Path, *, today: datetime.date) -> list[Path]:
    written = []
    for published in ALL:
        raw, document = published.read(specs_dir)
        target = COPIES / published.copy
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(schema_copy(published, raw, document, taken=today)))
        written.append(target)
    _copy_text.cache_clear()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.published_specs")
    parser.add_argument("action", choices=["regenerate", "check"])
    parser.add_argument(
        "--specs-dir", type=Path, required=True, help="folder of the published documents"
    )
    args = parser.parse_args(argv)
    if args.action == "regenerate":
        for path in regenerate(args.specs_dir, today=datetime.datetime.now(datetime.UTC).date()):
            print(f"wrote {path}")
        return 0
    problems = [problem for published in ALL for problem in differences(published, args.specs_dir)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
