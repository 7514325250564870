"""Provider-neutral helpers for the simulators' embedded OpenAPI subsets.

Each simulated cloud keeps the part of its provider's published document that it serves
(``spec_subset.py``): the operations it picks, every component they reference, and no prose.
Which operations, and which parts of each, are the provider's choice (its ``extract_subset``);
following the references, dropping the prose and writing the module are the same for both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def refs(node: Any) -> Iterable[str]:
    """Every ``$ref`` target inside ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def components_used(document: Mapping[str, Any], node: Any) -> dict[str, dict[str, Any]]:
    """The ``components`` of ``document`` that ``node`` references, directly or through others."""
    components: dict[str, dict[str, Any]] = {}
    todo = list(refs(node))
    while todo:
        _, _, kind, name = todo.pop().split("/")
        if name in components.get(kind, {}):
            continue
        found = document["components"][kind][name]
        components.setdefault(kind, {})[name] = found
        todo.extend(refs(found))
    return components


def strip(node: Any, noise: frozenset[str], *, in_properties: bool = False) -> Any:
    """``node`` with keys sorted and the ``noise`` keys dropped (but never a property's name)."""
    if isinstance(node, dict):
        return {
            k: strip(v, noise, in_properties=k == "properties" and not in_properties)
            for k, v in sorted(node.items())
            if in_properties or k not in noise
        }
    if isinstance(node, list):
        return [strip(v, noise) for v in node]
    return node


def render_module(docstring: str, subset: Mapping[str, Any]) -> str:
    """The source of a ``spec_subset.py`` holding ``subset`` (``docstring`` without quotes)."""
    text = json.dumps(subset, indent=1, sort_keys=True, ensure_ascii=True)
    return (
        f'"""{docstring}"""\n\n'
        "from __future__ import annotations\n\n"
        "import json\n"
        "from typing import Any\n\n"
        f'SPEC_SUBSET: dict[str, Any] = json.loads(\n    r"""\n{text}\n"""\n)\n'
    )
