"""The Helm chart as the packaging tests see it: the real helm, rendered documents, RBAC grants.

helm comes from packaging/render.py (built from Go modules once, cached under
~/.cache/vk-trio/helm-<version>); a missing Go fails the tests, it never skips them. An RBAC
rule is compared and removed as a set of ``Grant``s, one per (role, API group, resource, verb),
because that is how the authorizer reads it: a rule listing two resources and three verbs is six
independent permissions.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RENDER_SCRIPT = ROOT / "packaging" / "render.py"
ROLE_KINDS = ("ClusterRole", "Role")

Doc = dict[str, Any]


@functools.cache
def render_module() -> ModuleType:
    """packaging/render.py (the directory name would shadow PyPI's `packaging`)."""
    spec = importlib.util.spec_from_file_location("vk_trio_render", RENDER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def helm_path() -> Path:
    """The pinned helm, built on first use (minutes) and cached across sessions."""
    path: Path = render_module().helm_binary()
    return path


def helm_flags(values: Mapping[str, object]) -> list[str]:
    """--set-json for every value, so types survive (numbers, lists, booleans)."""
    flags: list[str] = []
    for key, value in values.items():
        flags += ["--set-json", f"{key}={json.dumps(value)}"]
    return flags


def template_text(
    *, release: str = "vk-trio", namespace: str = "kube-system", values: Mapping[str, object] = {}
) -> str:
    text: str = render_module().template(
        helm_path(), release=release, namespace=namespace, values=helm_flags(values)
    )
    return text


def render(
    *, release: str = "vk-trio", namespace: str = "kube-system", values: Mapping[str, object] = {}
) -> list[Doc]:
    """The chart's objects for these values (``helm template``), parsed."""
    text = template_text(release=release, namespace=namespace, values=values)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def dump(docs: Iterable[Doc]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


def find(docs: Sequence[Doc], kind: str, *, namespace: str | None = None) -> list[Doc]:
    return [
        d
        for d in docs
        if d["kind"] == kind and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]


def the(docs: Sequence[Doc], kind: str, *, namespace: str | None = None) -> Doc:
    found = find(docs, kind, namespace=namespace)
    assert len(found) == 1, f"{len(found)} {kind} objects rendered, expected one"
    return found[0]


@dataclass(frozen=True, order=True)
class Grant:
    """One permission: ``verb`` on ``group``/``resource`` in one role, maybe limited by name.

    ``role`` is ``ClusterRole`` or ``Role/<namespace>``; ``names`` are the rule's resourceNames
    (empty: any name).
    """

    role: str
    group: str
    resource: str
    verb: str
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        group = f"{self.group}/" if self.group else ""
        only = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.role}: {self.verb} {group}{self.resource}{only}"


def role_key(doc: Doc) -> str:
    if doc["kind"] == "ClusterRole":
        return "ClusterRole"
    return f"Role/{doc['metadata']['namespace']}"


def grants_of_role(doc: Doc) -> set[Grant]:
    grants: set[Grant] = set()
    for rule in doc.get("rules") or []:
        names = tuple(sorted(rule.get("resourceNames") or ()))
        for group in rule.get("apiGroups") or ():
            for resource in rule.get("resources") or ():
                for verb in rule.get("verbs") or ():
                    grants.add(Grant(role_key(doc), group, resource, verb, names))
    return grants


def grants(docs: Sequence[Doc]) -> set[Grant]:
    """Every permission the rendered roles give."""
    found: set[Grant] = set()
    for doc in docs:
        if doc["kind"] in ROLE_KINDS:
            found |= grants_of_role(doc)
    return found


def without(docs: Sequence[Doc], removed: Grant) -> list[Doc]:
    """The same objects with one permission taken away (its role rewritten grant by grant)."""
    result: list[Doc] = []
    hit = False
    for doc in docs:
        if doc["kind"] in ROLE_KINDS and removed in grants_of_role(doc):
            hit = True
            kept = sorted(grants_of_role(doc) - {removed})
            result.append({**doc, "rules": [_rule(g) for g in kept]})
        else:
            result.append(doc)
    assert hit, f"{removed} is not in the rendered RBAC"
    return result


def _rule(grant: Grant) -> Doc:
    rule: Doc = {
        "apiGroups": [grant.group],
        "resources": [grant.resource],
        "verbs": [grant.verb],
    }
    if grant.names:
        rule["resourceNames"] = list(grant.names)
    return rule
