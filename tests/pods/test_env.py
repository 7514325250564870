"""pods/env.py: env, envFrom, ConfigMap/Secret refs, optional vs mandatory, secrecy, memoization."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import msgspec
import pytest

from vk_trio.errors import Forbidden
from vk_trio.kube.models import ConfigMap, Container, ObjectMeta, Pod, Secret, Service
from vk_trio.pods.env import (
    EnvWarning,
    InvalidEnvSource,
    MissingReference,
    ObjectSource,
    ResolvedEnv,
    resolve_env,
)

NS = "team"
CANARY = "s3cr3t-CANARY-9f1c"  # a secret value that must never show up outside .values


# --- an in-memory ObjectSource ------------------------------------------------------------------


class FakeSource:
    """Objects by (namespace, name); records every call so tests can count fetches."""

    def __init__(
        self,
        *,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        config_maps: Mapping[str, Mapping[str, str]] | None = None,
        services: list[Service] | None = None,
        namespace: str = NS,
    ) -> None:
        self.secrets = {
            (namespace, name): secret(name, data) for name, data in (secrets or {}).items()
        }
        self.config_maps = {
            (namespace, name): ConfigMap(metadata=ObjectMeta(name=name), data=dict(data))
            for name, data in (config_maps or {}).items()
        }
        self.services = services or []
        self.calls: list[tuple[str, str, str]] = []

    async def get_secret(self, namespace: str, name: str) -> Secret | None:
        self.calls.append(("secret", namespace, name))
        return self.secrets.get((namespace, name))

    async def get_config_map(self, namespace: str, name: str) -> ConfigMap | None:
        self.calls.append(("configmap", namespace, name))
        return self.config_maps.get((namespace, name))

    async def list_services(self, namespace: str) -> list[Service]:
        self.calls.append(("services", namespace, ""))
        return [s for s in self.services if s.metadata.namespace == namespace]


def secret(name: str, data: Mapping[str, str]) -> Secret:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return Secret(metadata=ObjectMeta(name=name), data=encoded)


def service(
    namespace: str, name: str, cluster_ip: str, ports: list[dict[str, Any]] | None = None
) -> Service:
    return msgspec.convert(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": cluster_ip, "ports": [{"port": 80}] if ports is None else ports},
        },
        Service,
    )


def make_pod(
    *,
    env: list[dict[str, Any]] | None = None,
    env_from: list[dict[str, Any]] | None = None,
    namespace: str = NS,
    **spec: Any,
) -> tuple[Pod, Container]:
    """A pod with one container "main", written like a manifest (camelCase keys)."""
    manifest = {
        "metadata": {"name": "trainer", "namespace": namespace, "uid": "u-1"},
        "spec": {
            "nodeName": "vk-gpu",
            "containers": [{"name": "main", "env": env or [], "envFrom": env_from or []}],
            **spec,
        },
    }
    pod = msgspec.convert(manifest, Pod)
    return pod, pod.spec.containers[0]


async def resolve(source: ObjectSource, **pod_args: Any) -> ResolvedEnv:
    pod, container = make_pod(**pod_args)
    return await resolve_env(pod, container, source=source)


def reasons(env: ResolvedEnv) -> list[str]:
    return [w.reason for w in env.warnings]


# --- plain values and expansion -----------------------------------------------------------------


async def test_plain_values_come_out_in_declaration_order() -> None:
    env = await resolve(
        FakeSource(), env=[{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    )
    assert list(env.values.items()) == [("B", "2"), ("A", "1")]
    assert env.secret_names == frozenset() and env.warnings == []


async def test_a_value_expands_vars_defined_before_it_and_keeps_unknown_refs() -> None:
    env = await resolve(
        FakeSource(),
        env=[
            {"name": "HOME_DIR", "value": "/data"},
            {"name": "CACHE", "value": "$(HOME_DIR)/cache:$(LATER):$(NOPE)"},
            {"name": "LATER", "value": "x"},
        ],
    )
    assert env.values["CACHE"] == "/data/cache:$(LATER):$(NOPE)"


async def test_escaped_references_and_lone_dollars_stay_literal() -> None:
    env = await resolve(
        FakeSource(),
        env=[
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$$(A) $A ${A} $(A $"},
        ],
    )
    assert env.values["B"] == "$(A) $A ${A} $(A $"


async def test_a_var_without_value_or_source_is_an_empty_string() -> None:
    env = await resolve(FakeSource(), env=[{"name": "EMPTY"}, {"name": "ALSO", "value": ""}])
    assert env.values == {"EMPTY": "", "ALSO": ""}


async def test_expansion_sees_env_from_vars_and_the_previous_value_of_itself() -> None:
    source = FakeSource(config_maps={"cfg": {"PATH_PART": "/opt/bin", "MODE": "fast"}})
    env = await resolve(
        source,
        env_from=[{"configMapRef": {"name": "cfg"}}],
        env=[{"name": "MODE", "value": "$(MODE)-debug"}, {"name": "P", "value": "$(PATH_PART)"}],
    )
    assert env.values["MODE"] == "fast-debug"
    assert env.values["P"] == "/opt/bin"


# --- envFrom ------------------------------------------------------------------------------------


async def test_env_overrides_env_from_and_later_env_from_overrides_earlier() -> None:
    source = FakeSource(
        config_maps={"one": {"A": "1", "B": "1"}, "two": {"B": "2", "C": "2"}},
        secrets={"three": {"C": "3"}},
    )
    env = await resolve(
        source,
        env_from=[
            {"configMapRef": {"name": "one"}},
            {"configMapRef": {"name": "two"}},
            {"secretRef": {"name": "three"}},
        ],
        env=[{"name": "A", "value": "env"}],
    )
    assert env.values == {"A": "env", "B": "2", "C": "3"}
    assert env.secret_names == {"C"}


async def test_env_from_prefix_is_prepended_to_every_key() -> None:
    source = FakeSource(config_maps={"cfg": {"HOST": "h", "PORT": "1"}})
    env = await resolve(source, env_from=[{"prefix": "DB_", "configMapRef": {"name": "cfg"}}])
    assert env.values == {"DB_HOST": "h", "DB_PORT": "1"}


async def test_env_from_keys_that_are_not_env_names_are_skipped_with_a_warning() -> None:
    source = FakeSource(secrets={"keys": {"1ST": CANARY, "ok.name": "v", "..dots": "x", ".": "y"}})
    env = await resolve(source, env_from=[{"secretRef": {"name": "keys"}}])
    assert env.values == {"ok.name": "v"}
    [warning] = env.warnings
    assert warning.reason == "InvalidEnvironmentVariableNames"
    assert "[., ..dots, 1ST]" in warning.message and f"Secret {NS}/keys" in warning.message
    assert CANARY not in warning.message


async def test_a_prefix_can_make_keys_valid_or_invalid() -> None:
    source = FakeSource(config_maps={"cfg": {"1ST": "a"}})
    env = await resolve(source, env_from=[{"prefix": "X_", "configMapRef": {"name": "cfg"}}])
    assert env.values == {"X_1ST": "a"}
    env = await resolve(source, env_from=[{"prefix": "9", "configMapRef": {"name": "cfg"}}])
    assert env.values == {} and reasons(env) == ["InvalidEnvironmentVariableNames"]


@pytest.mark.parametrize(
    ("ref", "reason"),
    [("configMapRef", "OptionalConfigMapNotFound"), ("secretRef", "OptionalSecretNotFound")],
)
async def test_a_missing_optional_env_from_source_is_skipped_with_a_warning(
    ref: str, reason: str
) -> None:
    env = await resolve(FakeSource(), env_from=[{ref: {"name": "gone", "optional": True}}])
    assert env.values == {}
    assert reasons(env) == [reason]
    assert f"{NS}/gone" in env.warnings[0].message


@pytest.mark.parametrize(("ref", "kind"), [("configMapRef", "ConfigMap"), ("secretRef", "Secret")])
async def test_a_missing_mandatory_env_from_source_raises_missing_reference(
    ref: str, kind: str
) -> None:
    with pytest.raises(MissingReference) as caught:
        await resolve(FakeSource(), env_from=[{ref: {"name": "gone"}}])
    err = caught.value
    assert (err.kind, err.namespace, err.name) == (kind, NS, "gone")
    assert err.key is None and err.env_var is None
    assert err.event_reason == f"Mandatory{kind}NotFound"
    assert err.reason == "CreateContainerConfigError"


# --- configMapKeyRef / secretKeyRef ---------------------------------------------------------------


def key_ref(kind: str, name: str, key: str, optional: bool | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "key": key}
    if optional is not None:
        ref["optional"] = optional
    return {"configMapKeyRef" if kind == "ConfigMap" else "secretKeyRef": ref}


def holding(kind: str, objects: Mapping[str, Mapping[str, str]]) -> FakeSource:
    if kind == "ConfigMap":
        return FakeSource(config_maps=objects)
    return FakeSource(secrets=objects)


async def test_config_map_and_secret_key_refs_resolve_and_secrets_are_marked() -> None:
    source = FakeSource(config_maps={"cfg": {"lr": "0.01"}}, secrets={"creds": {"token": CANARY}})
    env = await resolve(
        source,
        env=[
            {"name": "LR", "valueFrom": key_ref("ConfigMap", "cfg", "lr")},
            {"name": "TOKEN", "valueFrom": key_ref("Secret", "creds", "token")},
        ],
    )
    assert env.values == {"LR": "0.01", "TOKEN": CANARY}
    assert env.secret_names == {"TOKEN"}


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
@pytest.mark.parametrize("object_exists", [False, True])
async def test_a_missing_optional_key_ref_omits_the_var_with_a_warning(
    kind: str, object_exists: bool
) -> None:
    data = {"other": "x"}
    source = holding(kind, {"obj": data} if object_exists else {})
    env = await resolve(source, env=[{"name": "V", "valueFrom": key_ref(kind, "obj", "k", True)}])
    assert env.values == {}
    expected = f"Optional{kind}KeyNotFound" if object_exists else f"Optional{kind}NotFound"
    assert reasons(env) == [expected]
    assert "env var V" in env.warnings[0].message


async def test_an_optional_miss_leaves_a_value_from_env_from_in_place() -> None:
    source = FakeSource(config_maps={"cfg": {"V": "from-env-from"}})
    env = await resolve(
        source,
        env_from=[{"configMapRef": {"name": "cfg"}}],
        env=[{"name": "V", "valueFrom": key_ref("Secret", "gone", "k", True)}],
    )
    assert env.values["V"] == "from-env-from"


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
@pytest.mark.parametrize("object_exists", [False, True])
async def test_a_missing_mandatory_key_ref_raises_missing_reference_with_kind_name_key(
    kind: str, object_exists: bool
) -> None:
    data = {"other": CANARY}
    source = holding(kind, {"obj": data} if object_exists else {})
    with pytest.raises(MissingReference) as caught:
        await resolve(source, env=[{"name": "V", "valueFrom": key_ref(kind, "obj", "k", False)}])
    err = caught.value
    assert (err.kind, err.namespace, err.name, err.env_var) == (kind, NS, "obj", "V")
    assert err.key == ("k" if object_exists else None)
    suffix = "KeyNotFound" if object_exists else "NotFound"
    assert err.event_reason == f"Mandatory{kind}{suffix}"
    assert f"{kind} {NS}/obj" in str(err) and CANARY not in str(err)


async def test_errors_other_than_not_found_propagate_even_for_optional_refs() -> None:
    class Refusing(FakeSource):
        async def get_secret(self, namespace: str, name: str) -> Secret | None:
            raise Forbidden("secrets is forbidden")

    with pytest.raises(Forbidden):
        await resolve(
            Refusing(), env=[{"name": "V", "valueFrom": key_ref("Secret", "s", "k", True)}]
        )


async def test_a_value_from_without_a_supported_source_is_refused() -> None:
    # e.g. fileKeyRef, which our model does not decode: never silently "" (virtual-kubelet
    # dropped resourceFieldRef that way).
    with pytest.raises(InvalidEnvSource, match="env var F"):
        await resolve(FakeSource(), env=[{"name": "F", "valueFrom": {"fileKeyRef": {}}}])


# --- secrecy ------------------------------------------------------------------------------------


async def test_secret_taint_follows_expansion_and_is_cleared_by_a_plain_override() -> None:
    source = FakeSource(secrets={"creds": {"PASSWORD": CANARY}})
    env = await resolve(
        source,
        env_from=[{"secretRef": {"name": "creds"}}],
        env=[
            {"name": "DSN", "value": "postgres://u:$(PASSWORD)@db"},
            {"name": "DSN2", "value": "$(DSN)?ssl=1"},
            {"name": "PLAIN", "value": "$(NOT_SECRET)"},
            {"name": "PASSWORD", "value": "overridden"},
            {"name": "AFTER", "value": "$(PASSWORD)"},
        ],
    )
    assert env.values["DSN2"] == f"postgres://u:{CANARY}@db?ssl=1"
    assert env.secret_names == {"DSN", "DSN2"}
    assert env.values["AFTER"] == "overridden"


async def test_the_canary_secret_value_never_appears_in_repr_warnings_or_errors() -> None:
    source = FakeSource(secrets={"creds": {"token": CANARY, "9bad": CANARY}})
    env = await resolve(
        source,
        env_from=[{"secretRef": {"name": "creds"}}],
        env=[
            {"name": "T", "valueFrom": key_ref("Secret", "creds", "token")},
            {"name": "URL", "value": "https://x/?t=$(T)"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
    )
    assert env.values["T"] == CANARY  # it is there ...
    for shown in (repr(env), str(env), env.redacted(), env.warnings):
        assert CANARY not in str(shown)  # ... and nowhere else
    assert env.redacted()["URL"] == "<redacted>"
    failures: list[dict[str, Any]] = [
        {"env": [{"name": "T", "valueFrom": key_ref("Secret", "creds", "missing")}]},
        {"env": [{"name": "T", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}]},
        {"env": [{"name": "T", "valueFrom": {"resourceFieldRef": {"resource": "limits.x"}}}]},
    ]
    for pod_args in failures:
        with pytest.raises(Exception) as caught:
            await resolve(source, env_from=[{"secretRef": {"name": "creds"}}], **pod_args)
        assert CANARY not in str(caught.value) and CANARY not in repr(caught.value)


async def test_secret_data_that_is_not_base64_is_refused_without_echoing_it() -> None:
    source = FakeSource()
    source.secrets[NS, "bad"] = Secret(metadata=ObjectMeta(name="bad"), data={"k": CANARY})
    with pytest.raises(InvalidEnvSource) as caught:
        await resolve(source, env=[{"name": "V", "valueFrom": key_ref("Secret", "bad", "k")}])
    assert "not valid base64" in str(caught.value) and CANARY not in str(caught.value)


async def test_a_secret_that_is_not_utf8_is_replaced_with_a_warning() -> None:
    source = FakeSource()
    raw = base64.b64encode(b"ok\xff").decode()
    source.secrets[NS, "bin"] = Secret(metadata=ObjectMeta(name="bin"), data={"k": raw})
    env = await resolve(source, env=[{"name": "V", "valueFrom": key_ref("Secret", "bin", "k")}])
    assert env.values["V"] == "ok\ufffd"
    assert env.warnings == [
        EnvWarning(
            "SecretValueNotUTF8",
            f"key 'k' of Secret {NS}/bin is not UTF-8; bad bytes were replaced",
        )
    ]
