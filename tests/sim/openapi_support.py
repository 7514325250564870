"""What the simulators' OpenAPI judges share: jsonschema over a document's components.

The documents are the in-repo schema copies of what the providers publish
(tests/sim/published_specs.py); each provider's ``support`` module loads its own and decides how
a request or an answer maps onto it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema


def schema_errors(
    document: Mapping[str, Any], schema: Mapping[str, Any], instance: Any
) -> Iterator[jsonschema.ValidationError]:
    """``instance`` against ``schema``, whose ``$ref``s point into ``document``'s components."""
    root = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(root).iter_errors(instance)
