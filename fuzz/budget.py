"""How hard the fuzz targets try, and the hostile values they share.

Every target asserts one thing: a decoder of input vk-trio does not control returns a value or
raises the project's own clean error, never anything else. Two modes:

* quick (the default, part of ``make test``): ``QUICK`` examples per target, derandomized, so a
  CI run is fast and repeatable; the crashes found so far are pinned as ``@example``s;
* long (``make fuzz``): ``VK_FUZZ_EXAMPLES`` examples per target (the Makefile asks for 100,000),
  random, to find new ones. Run one file with
  ``VK_FUZZ_EXAMPLES=100000 .venv/bin/pytest fuzz/test_imageref.py --hypothesis-show-statistics``.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

QUICK = 50
EXAMPLES = int(os.environ.get("VK_FUZZ_EXAMPLES", str(QUICK)))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= QUICK,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

# What broke decoders before: huge and non-ASCII digits, non-finite numbers, deep nesting.
HOSTILE_TEXT = st.sampled_from(
    [
        "",
        "1e400",
        "-1e400",
        "NaN",
        "inf",
        "-Infinity",
        "1" * 5000,
        "9" * 20,
        "²",
        "٣",
        "1.²",
        "0x10",
        " 1",
        "1 ",
        "é",
        "\x00",
        "../../admin",
        "[" * 100,
    ]
)
TEXT = HOSTILE_TEXT | st.text(max_size=24)
NUMBERS = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -1, 2**31, 2**63, 10**300])
)
SCALARS: st.SearchStrategy[Any] = st.none() | st.booleans() | NUMBERS | TEXT
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
# A field's value: mostly a scalar (cheap to draw), now and then a whole document.
VALUES: st.SearchStrategy[Any] = st.one_of(SCALARS, SCALARS, SCALARS, JSON)


def nested(depth: int) -> bytes:
    """``depth`` nested JSON arrays (5,000 of them crashed two decoders)."""
    return b"[" * depth + b"]" * depth
