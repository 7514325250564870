"""Fuzz targets for env resolution: ``$(VAR)`` expansion and secret taint through it.

Quick in ``make test``, long in ``make fuzz`` (fuzz/budget.py). Self-contained on purpose: no
imports from tests/.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from fuzz.budget import FUZZ
from vk_trio.kube.models import ConfigMap, ObjectMeta, Pod, Secret, Service
from vk_trio.pods.env import EnvError, resolve_env
from vk_trio.pods.expansion import escape, expand

_REFERENCE = re.compile(r"\$(?:\$|\(([^)]*)\))")


def reference_expand(text: str, defined: dict[str, str]) -> str:
    return _REFERENCE.sub(
        lambda m: "$" if m[0] == "$$" else defined.get(m[1], m[0]),
        text,
    )


texts = st.text(alphabet=st.sampled_from("$()AB_\\\n é"), max_size=200) | st.text(max_size=200)
contexts = st.dictionaries(st.text(alphabet="AB_$(", max_size=3), st.text(max_size=6))


@FUZZ
@given(texts, contexts)
def test_expand_agrees_with_the_reference_model(text: str, defined: dict[str, str]) -> None:
    assert expand(text, defined.get) == reference_expand(text, defined)


@FUZZ
@given(st.text(max_size=500), contexts)
def test_escape_round_trips(text: str, defined: dict[str, str]) -> None:
    assert expand(escape(text), defined.get) == text


# --- whole resolutions: errors are ours, and secret values never leak into non-secret vars ----

CANARY = "CANARY"  # appears in Secret values only
NAMES = ["A", "B", "C", "D"]


class Objects:
    """One ConfigMap "cm" and one Secret "sec"; anything else does not exist."""

    def __init__(self, cm: dict[str, str], sec: dict[str, str]) -> None:
        self.cm = ConfigMap(metadata=ObjectMeta(name="cm"), data=cm)
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in sec.items()}
        self.sec = Secret(metadata=ObjectMeta(name="sec"), data=encoded)

    async def get_secret(self, namespace: str, name: str) -> Secret | None:
        return self.sec if name == "sec" else None

    async def get_config_map(self, namespace: str, name: str) -> ConfigMap | None:
        return self.cm if name == "cm" else None

    async def list_services(self, namespace: str) -> list[Service]:
        return []


names = st.sampled_from(NAMES)
mostly_optional = st.sampled_from([True, True, True, False])  # else most runs end in an error
refs = st.builds(
    lambda obj, key, optional: {"name": obj, "key": key, "optional": optional},
    st.sampled_from(["cm", "sec", "gone"]),
    names,
    mostly_optional,
)
values = st.lists(
    st.one_of(names.map(lambda n: f"$({n})"), st.sampled_from(["x", "$$", "$(", ")", "$"])),
    max_size=5,
).map("".join)
env_vars = st.one_of(
    st.builds(lambda n, v: {"name": n, "value": v}, names, values),
    st.builds(lambda n, r: {"name": n, "valueFrom": {"configMapKeyRef": r}}, names, refs),
    st.builds(lambda n, r: {"name": n, "valueFrom": {"secretKeyRef": r}}, names, refs),
)
env_froms = st.builds(
    lambda kind, name, prefix, optional: {
        "prefix": prefix,
        kind: {"name": name, "optional": optional},
    },
    st.sampled_from(["configMapRef", "secretRef"]),
    st.sampled_from(["cm", "sec", "gone"]),
    st.sampled_from(["", "P_", "1"]),
    mostly_optional,
)
plain = st.dictionaries(names, st.sampled_from(["v", "$(A)", "", "$$"]), max_size=4)
secret_data = st.dictionaries(names, st.sampled_from([CANARY, f"x{CANARY}$(A)"]), max_size=4)


@FUZZ
@given(st.lists(env_vars, max_size=8), st.lists(env_froms, max_size=3), plain, secret_data)
async def test_resolution_raises_only_env_errors_and_never_leaks_a_secret(
    env: list[dict[str, Any]],
    env_from: list[dict[str, Any]],
    cm: dict[str, str],
    sec: dict[str, str],
) -> None:
    manifest = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "env": env, "envFrom": env_from}]},
    }
    pod = msgspec.convert(manifest, Pod)
    try:
        resolved = await resolve_env(pod, pod.spec.containers[0], source=Objects(cm, sec))
    except EnvError as exc:
        assert CANARY not in str(exc)
        return
    for name, value in resolved.values.items():
        if CANARY in value:
            assert name in resolved.secret_names, (name, resolved)
    assert CANARY not in repr(resolved)
    assert all(CANARY not in w.message for w in resolved.warnings)
