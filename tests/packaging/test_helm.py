"""The Helm chart, rendered by the real helm: lint-clean, in sync with the plain manifests, and
saying to the agent what its values say.

The container's args are read back with vk-trio's own command-line parser, so a value that
renders into a flag the agent does not know (or spells differently) fails here, not in a
cluster. The rendered objects go through the API server's own validation (server-side dry run),
and the agent's pod template through Pod Security "restricted".
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane.launcher import ControlPlane
from tests.packaging import chart
from vk_trio.cli import build_parser
from vk_trio.config import SETTINGS, Config, load_config


def container(docs: list[chart.Doc]) -> dict[str, Any]:
    deployment = chart.the(docs, "Deployment")
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def agent_config_of(docs: list[chart.Doc]) -> Config:
    """The Config `vk-trio run` would build from the rendered args (env from the pod aside)."""
    args = build_parser().parse_args(container(docs)["args"])
    assert args.command == "run"
    flags = {s.field: getattr(args, s.field) for s in SETTINGS}
    return load_config(flags=flags, env={})


def env_of(docs: list[chart.Doc]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(docs).get("env", [])}


def test_the_plain_manifests_are_the_chart_rendered_with_its_defaults() -> None:
    render = chart.render_module()
    expected = render.manifests(chart.helm_path())
    assert render.MANIFESTS.read_text() == expected, (
        "packaging/manifests/vk-trio.yaml is stale: run python packaging/render.py"
    )


def test_helm_lint_strict_passes_for_the_defaults_and_each_provider() -> None:
    outputs = chart.render_module().lint(chart.helm_path())
    assert len(outputs) == len(chart.render_module().LINT_VARIANTS)
    for output in outputs:
        assert "0 chart(s) failed" in output
        assert "[WARNING]" not in output and "[ERROR]" not in output


def test_the_values_become_the_agents_settings() -> None:
    docs = chart.render(
        release="gpu",
        namespace="gpu-system",
        values={
            "provider": "vastai",
            "apiKeys": {"vastai": "vast-key"},
            "nodeName": "vk-vast",
            "maxGpuPrice": 0.75,
            "datacenterIds": ["US-NJ-1", "EU-RO-1"],
            "reconcileInterval": 12.5,
            "logLevel": "debug",
            "logFormat": "text",
            "healthPort": 9090,
            "extraArgs": ["--gpus=8"],
        },
    )
    config = agent_config_of(docs)
    assert config.provider == "vastai"
    assert config.node_name == "vk-vast"
    assert config.namespace == ""  # the agent takes its ServiceAccount's: gpu-system
    assert config.max_gpu_price == 0.75
    assert config.datacenter_ids == ("US-NJ-1", "EU-RO-1")
    assert config.reconcile_interval == 12.5
    assert (config.log_level, config.log_format) == ("debug", "text")
    assert config.health_server_address == ":9090"
    assert config.leader_elect is True
    assert config.gpus == 8


def test_the_defaults_are_two_replicas_electing_a_leader_for_the_clouds_whose_keys_are_set() -> (
    None
):
    docs = chart.render()
    config = agent_config_of(docs)
    assert config.provider == ""  # chosen by the agent from the keys the Secret holds
    assert config.node_name == "virtual-gpu"
    assert config.namespace == ""  # the ServiceAccount's (no --namespace rendered)
    assert config.leader_elect is True
    assert config.max_gpu_price is None and config.datacenter_ids == ()
    assert chart.the(docs, "Deployment")["spec"]["replicas"] == 2
    assert chart.the(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    leader_role = chart.the(docs, "Role", namespace="kube-system")
    assert leader_role["metadata"]["name"] == "vk-trio-leader"


def test_without_leader_election_neither_the_flag_nor_its_role_is_rendered() -> None:
    docs = chart.render(values={"replicas": 1, "leaderElect": False, "provider": "fake"})
    assert "--leader-elect" not in container(docs)["args"]
    assert agent_config_of(docs).leader_elect is False
    assert chart.find(docs, "Role", namespace="kube-system") == []
    assert chart.find(docs, "Role", namespace="kube-node-lease") == []  # the node's own
    assert chart.find(docs, "PodDisruptionBudget") == []


def test_offload_values_become_the_burst_settings_and_are_off_by_default() -> None:
    assert agent_config_of(chart.render()).offload is False
    docs = chart.render(values={"offload": True, "pendingJobThreshold": 3, "maxPendingTime": 90})
    config = agent_config_of(docs)
    assert (config.offload, config.pending_job_threshold, config.max_pending_time) == (
        True,
        3,
        90.0,
    )


def refusal(values: dict[str, object] | None = None, *, values_file: Path | None = None) -> str:
    flags = chart.helm_flags(values or {})
    if values_file is not None:
        flags += ["--values", str(values_file)]
    render = chart.render_module()
    with pytest.raises(render.HelmError) as caught:
        render.template(chart.helm_path(), values=flags)
    return str(caught.value)


def test_two_replicas_without_leader_election_are_refused() -> None:
    message = refusal({"replicas": 2, "leaderElect": False})
    assert "replicas > 1 needs leaderElect: true" in message


def test_unknown_providers_and_the_seed_charts_value_names_are_refused(tmp_path: Path) -> None:
    assert "/provider" in refusal({"provider": "lambda"})
    seed_values = tmp_path / "values.yaml"
    seed_values.write_text("kubelet:\n  reconcileInterval: 30\nrunpod:\n  existingSecret: x\n")
    message = refusal(values_file=seed_values)
    assert "kubelet" in message and "runpod" in message


def test_set_on_the_command_line_gives_numbers_as_strings_and_they_still_work() -> None:
    render = chart.render_module()
    text = render.template(
        chart.helm_path(), values=["--set", "maxGpuPrice=0.5", "--set", "reconcileInterval=45"]
    )
    config = agent_config_of([d for d in yaml.safe_load_all(text) if d])
    assert (config.max_gpu_price, config.reconcile_interval) == (0.5, 45.0)


def test_both_api_keys_come_from_the_existing_secret_each_optional_by_default() -> None:
    docs = chart.render(values={"existingSecret": "my-keys"})
    for name in ("RUNPOD_API_KEY", "VAST_API_KEY"):
        ref = env_of(docs)[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "my-keys", "key": name, "optional": True}
    assert chart.find(docs, "Secret") == []


def test_a_named_provider_needs_its_key_and_gets_no_other() -> None:
    docs = chart.render(values={"existingSecret": "my-keys", "provider": "runpod"})
    ref = env_of(docs)["RUNPOD_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "my-keys", "key": "RUNPOD_API_KEY"}  # required: no silent simulator
    assert "VAST_API_KEY" not in env_of(docs)


def test_a_two_cloud_node_with_a_budget_from_a_values_list() -> None:
    values = {
        "provider": ["runpod", "vastai"],
        "maxNodePrice": 25,
        "registryMirror": "https://mirror.example/v2",
        "apiKeys": {"runpod": "rp-key", "vastai": "vast-key"},
    }
    docs = chart.render(values=values)
    config = agent_config_of(docs)
    assert config.providers == ("runpod", "vastai") and config.max_node_price == 25
    assert config.registry_mirror == "https://mirror.example/v2"
    for name in ("RUNPOD_API_KEY", "VAST_API_KEY"):
        assert env_of(docs)[name]["valueFrom"]["secretKeyRef"]["key"] == name
    assert "runpod,vastai" in refusal({"provider": "runpod,vastai", "apiKeys.runpod": "k"})


def test_api_key_values_make_the_chart_create_the_secret() -> None:
    docs = chart.render(values={"apiKeys": {"runpod": "rp-key"}})
    secret = chart.the(docs, "Secret")
    assert secret["metadata"]["name"] == "vk-trio-api-keys"
    assert base64.b64decode(secret["data"]["RUNPOD_API_KEY"]) == b"rp-key"
    ref = env_of(docs)["RUNPOD_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "vk-trio-api-keys", "key": "RUNPOD_API_KEY", "optional": True}
    assert "VAST_API_KEY" not in secret["data"]  # so the agent fronts RunPod alone


def test_the_fake_provider_needs_no_key() -> None:
    docs = chart.render(values={"provider": "fake"})
    assert set(env_of(docs)) == {"VKUBELET_POD_IP"}


def test_the_agent_runs_unprivileged_on_a_read_only_root_with_probes_on_its_health_port() -> None:
    docs = chart.render(values={"healthPort": 8181})
    pod_spec = chart.the(docs, "Deployment")["spec"]["template"]["spec"]
    agent = container(docs)
    assert pod_spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert agent["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {m["mountPath"] for m in agent["volumeMounts"]} == {"/tmp", "/var/lib/vk-trio"}
    assert agent["ports"] == [
        {"name": "health", "containerPort": 8181, "protocol": "TCP"},
        {"name": "kubelet", "containerPort": 10250, "protocol": "TCP"},
    ]
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert agent_config_of(docs).health_server_address == ":8181"
    assert env_of(docs)["VKUBELET_POD_IP"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "status.podIP"}
    }
    assert pod_spec["serviceAccountName"] == "vk-trio"


def test_the_agent_stays_off_virtual_nodes_and_spreads_its_replicas() -> None:
    affinity = chart.the(chart.render(), "Deployment")["spec"]["template"]["spec"]["affinity"]
    term = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]}
    ]
    spread = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert spread[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    mine = {"nodeSelector": {"pool": "system"}, "affinity": {"nodeAffinity": {}}}
    spec = chart.the(chart.render(values=mine), "Deployment")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"pool": "system"}
    assert spec["affinity"] == {"nodeAffinity": {}}


def test_an_existing_service_account_is_used_and_none_created() -> None:
    docs = chart.render(values={"serviceAccount": {"create": False, "name": "ops-agent"}})
    assert chart.find(docs, "ServiceAccount") == []
    pod_spec = chart.the(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "ops-agent"
    for binding in chart.find(docs, "ClusterRoleBinding") + chart.find(docs, "RoleBinding"):
        assert binding["subjects"][0]["name"] == "ops-agent"


@pytest.mark.controlplane
def test_the_plain_manifests_are_accepted_by_the_api_server(controlplane: ControlPlane) -> None:
    manifests = chart.render_module().MANIFESTS
    done = controlplane.kubectl("apply", "--dry-run=server", "-f", str(manifests))
    kinds = {line.split("/")[0] for line in done.stdout.split()}
    assert {"deployment.apps", "clusterrole.rbac.authorization.k8s.io"} <= kinds, done.stdout
    assert "Warning" not in done.stderr, done.stderr


@pytest.mark.controlplane
def test_the_agents_pod_passes_pod_security_restricted(
    controlplane: ControlPlane, namespace: str
) -> None:
    controlplane.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    docs = chart.render(namespace=namespace)
    controlplane.kubectl("apply", "-f", "-", stdin=chart.dump([chart.the(docs, "ServiceAccount")]))
    template = chart.the(docs, "Deployment")["spec"]["template"]
    agent_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent"}, **template}
    agent_pod["metadata"] = {**template["metadata"], "name": "agent"}
    created = controlplane.kubectl(
        "create",
        "--dry-run=server",
        f"--namespace={namespace}",
        "-f",
        "-",
        "-o",
        "json",
        stdin=json.dumps(agent_pod),
    )
    assert json.loads(created.stdout)["metadata"]["name"] == "agent"
    # the namespace really enforces: a root container is refused
    agent_pod["spec"] = {**agent_pod["spec"], "securityContext": {"runAsUser": 0}}
    refused = controlplane.kubectl(
        "create", "--dry-run=server", f"--namespace={namespace}", "-f", "-",
        stdin=json.dumps(agent_pod), check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "restricted" in refused.stderr, refused.stderr


def test_the_node_identity_switch() -> None:
    """bootstrap (default): the agent runs its pod work as system:node:<node>, and the
    ServiceAccount may ask for that certificate but reads no Secret or ConfigMap; kubeconfig:
    the ServiceAccount does everything and holds the kubelet's permissions itself."""
    default = chart.render()
    assert agent_config_of(default).node_identity == "bootstrap"
    granted = chart.grants(default)
    assert {(g.resource, g.verb) for g in granted if g.group == "certificates.k8s.io"} == {
        ("certificatesigningrequests", "create"),
        ("certificatesigningrequests", "get"),
        ("certificatesigningrequests/nodeclient", "create"),
    }
    assert not [g for g in granted if g.resource in ("secrets", "configmaps", "pods/status")]
    assert {g.verb for g in granted if g.resource == "pods"} <= {"list", "watch"}  # burst
    wide = chart.render(values={"nodeIdentity": "kubeconfig"})
    assert agent_config_of(wide).node_identity == "kubeconfig"
    resources = {g.resource for g in chart.grants(wide)}
    assert {"secrets", "configmaps", "pods", "pods/status"} <= resources
    assert "certificatesigningrequests/nodeclient" not in resources
    assert "nodeIdentity" in refusal({"nodeIdentity": "serviceaccount"})


def test_the_serving_certificate_switch_and_the_state_volume() -> None:
    """csr (default): the CSR rule is granted and --serving-cert csr (with nodeIdentity
    bootstrap the node asks, as a kubelet does); self-signed: no CSR rule; secret: the Secret is
    mounted read-only and named by --tls-cert-file. The state directory is an emptyDir unless a
    claim is given; the config says where it is."""
    default = chart.render()
    assert agent_config_of(default).serving_cert == "csr"
    assert agent_config_of(default).state_dir == "/var/lib/vk-trio"
    wide = {"nodeIdentity": "kubeconfig"}
    csr = chart.render(values=wide)
    csr_rules = [g for g in chart.grants(csr) if g.resource == "certificatesigningrequests"]
    assert sorted(g.verb for g in csr_rules) == ["create", "get"]
    plain = chart.render(values={**wide, "servingCert": {"source": "self-signed"}})
    assert agent_config_of(plain).serving_cert == "self-signed"
    assert not [g for g in chart.grants(plain) if g.resource == "certificatesigningrequests"]
    mounted = chart.render(
        values={"servingCert": {"source": "secret", "secretName": "kubelet-tls"}}
    )
    config = agent_config_of(mounted)
    assert (config.tls_cert_file, config.tls_key_file) == (
        "/etc/vk-trio/serving/tls.crt",
        "/etc/vk-trio/serving/tls.key",
    )
    volumes = chart.the(mounted, "Deployment")["spec"]["template"]["spec"]["volumes"]
    secret = next(v for v in volumes if v["name"] == "serving-cert")["secret"]
    assert secret == {"secretName": "kubelet-tls", "defaultMode": 0o400}
    claimed = chart.render(values={"stateVolume": {"existingClaim": "vk-state"}})
    volumes = chart.the(claimed, "Deployment")["spec"]["template"]["spec"]["volumes"]
    state = next(v for v in volumes if v["name"] == "state")
    assert state == {"name": "state", "persistentVolumeClaim": {"claimName": "vk-state"}}


def test_the_network_policy_opens_only_the_health_and_kubelet_ports() -> None:
    policy = chart.the(chart.render(), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    ports = [rule["ports"] for rule in policy["spec"]["ingress"]]
    assert ports == [
        [{"port": "kubelet", "protocol": "TCP"}],
        [{"port": "health", "protocol": "TCP"}],
    ]
    scrapers = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    narrowed = chart.the(
        chart.render(values={"networkPolicy": {"metricsScrapers": scrapers}}), "NetworkPolicy"
    )
    assert narrowed["spec"]["ingress"][1]["from"] == scrapers
    assert not [
        d
        for d in chart.render(values={"networkPolicy": {"enabled": False}})
        if d["kind"] == "NetworkPolicy"
    ]
