"""``python -m vk_trio.sim.vastai.regenerate SPEC.yaml > spec_subset.py`` (needs PyYAML).

Regenerates the simulator's copy of the operations it serves when Vast.ai's document changes;
tests/sim/vastai/test_validation.py says when that is due.
"""

from __future__ import annotations

import sys

from vk_trio.sim.vastai.validation import extract_subset, render_module


def main(argv: list[str]) -> int:
    import yaml  # a development tool: the runtime never needs PyYAML

    with open(argv[0], encoding="utf-8") as handle:
        sys.stdout.write(render_module(extract_subset(yaml.safe_load(handle))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
