"""Service-link variables: which Services count, their names and values, and that env wins."""

from __future__ import annotations

from vk_trio.pods.env import MemoizedSource, resolve_env
from vk_trio.pods.expansion import service_link_variables

from .test_env import NS, FakeSource, make_pod, resolve, service

KUBERNETES = service("default", "kubernetes", "10.96.0.1", [{"name": "https", "port": 443}])

KUBERNETES_VARS = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}


def test_variables_match_the_kubelets_from_services_table() -> None:
    # kubernetes pkg/kubelet/envvars/envvars_test.go TestFromServices, service for service.
    services = [
        service("x", "foo-bar", "1.2.3.4", [{"port": 8080, "protocol": "TCP"}]),
        service(
            "x",
            "abc-123",
            "5.6.7.8",
            [
                {"name": "u-d-p", "port": 8081, "protocol": "UDP"},
                {"name": "t-c-p", "port": 8081, "protocol": "TCP"},
            ],
        ),
        service("x", "q-u-u-x", "9.8.7.6", [{"port": 8082}, {"name": "8083", "port": 8083}]),
        service("x", "svrc-clusterip-none", "None", [{"port": 8082}]),
        service("x", "svrc-clusterip-empty", "", [{"port": 8082}]),
        service(
            "x",
            "super-ipv6",
            "2001:DB8::",
            [
                {"name": "u-d-p", "port": 8084, "protocol": "UDP"},
                {"name": "t-c-p", "port": 8084, "protocol": "TCP"},
            ],
        ),
        service("x", "sctp-1", "1.2.3.4", [{"port": 777, "protocol": "SCTP"}]),
    ]
    expected = [
        ("FOO_BAR_SERVICE_HOST", "1.2.3.4"),
        ("FOO_BAR_SERVICE_PORT", "8080"),
        ("FOO_BAR_PORT", "tcp://1.2.3.4:8080"),
        ("FOO_BAR_PORT_8080_TCP", "tcp://1.2.3.4:8080"),
        ("FOO_BAR_PORT_8080_TCP_PROTO", "tcp"),
        ("FOO_BAR_PORT_8080_TCP_PORT", "8080"),
        ("FOO_BAR_PORT_8080_TCP_ADDR", "1.2.3.4"),
        ("ABC_123_SERVICE_HOST", "5.6.7.8"),
        ("ABC_123_SERVICE_PORT", "8081"),
        ("ABC_123_SERVICE_PORT_U_D_P", "8081"),
        ("ABC_123_SERVICE_PORT_T_C_P", "8081"),
        ("ABC_123_PORT", "udp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_UDP", "udp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_UDP_PROTO", "udp"),
        ("ABC_123_PORT_8081_UDP_PORT", "8081"),
        ("ABC_123_PORT_8081_UDP_ADDR", "5.6.7.8"),
        ("ABC_123_PORT_8081_TCP", "tcp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_TCP_PROTO", "tcp"),
        ("ABC_123_PORT_8081_TCP_PORT", "8081"),
        ("ABC_123_PORT_8081_TCP_ADDR", "5.6.7.8"),
        ("Q_U_U_X_SERVICE_HOST", "9.8.7.6"),
        ("Q_U_U_X_SERVICE_PORT", "8082"),
        ("Q_U_U_X_SERVICE_PORT_8083", "8083"),
        ("Q_U_U_X_PORT", "tcp://9.8.7.6:8082"),
        ("Q_U_U_X_PORT_8082_TCP", "tcp://9.8.7.6:8082"),
        ("Q_U_U_X_PORT_8082_TCP_PROTO", "tcp"),
        ("Q_U_U_X_PORT_8082_TCP_PORT", "8082"),
        ("Q_U_U_X_PORT_8082_TCP_ADDR", "9.8.7.6"),
        ("Q_U_U_X_PORT_8083_TCP", "tcp://9.8.7.6:8083"),
        ("Q_U_U_X_PORT_8083_TCP_PROTO", "tcp"),
        ("Q_U_U_X_PORT_8083_TCP_PORT", "8083"),
        ("Q_U_U_X_PORT_8083_TCP_ADDR", "9.8.7.6"),
        ("SUPER_IPV6_SERVICE_HOST", "2001:DB8::"),
        ("SUPER_IPV6_SERVICE_PORT", "8084"),
        ("SUPER_IPV6_SERVICE_PORT_U_D_P", "8084"),
        ("SUPER_IPV6_SERVICE_PORT_T_C_P", "8084"),
        ("SUPER_IPV6_PORT", "udp://[2001:DB8::]:8084"),
        ("SUPER_IPV6_PORT_8084_UDP", "udp://[2001:DB8::]:8084"),
        ("SUPER_IPV6_PORT_8084_UDP_PROTO", "udp"),
        ("SUPER_IPV6_PORT_8084_UDP_PORT", "8084"),
        ("SUPER_IPV6_PORT_8084_UDP_ADDR", "2001:DB8::"),
        ("SUPER_IPV6_PORT_8084_TCP", "tcp://[2001:DB8::]:8084"),
        ("SUPER_IPV6_PORT_8084_TCP_PROTO", "tcp"),
        ("SUPER_IPV6_PORT_8084_TCP_PORT", "8084"),
        ("SUPER_IPV6_PORT_8084_TCP_ADDR", "2001:DB8::"),
        ("SCTP_1_SERVICE_HOST", "1.2.3.4"),
        ("SCTP_1_SERVICE_PORT", "777"),
        ("SCTP_1_PORT", "sctp://1.2.3.4:777"),
        ("SCTP_1_PORT_777_SCTP", "sctp://1.2.3.4:777"),
        ("SCTP_1_PORT_777_SCTP_PROTO", "sctp"),
        ("SCTP_1_PORT_777_SCTP_PORT", "777"),
        ("SCTP_1_PORT_777_SCTP_ADDR", "1.2.3.4"),
    ]
    assert list(service_link_variables(services).items()) == expected


def test_a_service_without_ports_gets_no_variables() -> None:
    # The kubelet would index ports[0] and panic; validation forbids it for ClusterIP Services.
    assert service_link_variables([service("x", "bare", "1.2.3.4", [])]) == {}


async def test_services_of_the_pods_namespace_and_the_kubernetes_service_are_linked() -> None:
    source = FakeSource(
        services=[
            KUBERNETES,
            service("default", "other-in-default", "10.96.0.9"),
            service(NS, "db", "10.96.5.5", [{"port": 5432}]),
            service(NS, "headless", "None"),
            service("elsewhere", "cache", "10.96.7.7"),
        ]
    )
    env = await resolve(source)
    assert env.values["DB_SERVICE_HOST"] == "10.96.5.5"
    assert env.values["DB_PORT"] == "tcp://10.96.5.5:5432"
    assert {k: env.values[k] for k in KUBERNETES_VARS} == KUBERNETES_VARS
    names = set(env.values)
    assert not any(n.startswith(("HEADLESS_", "CACHE_", "OTHER_IN_DEFAULT_")) for n in names)
    assert env.secret_names == frozenset()


async def test_disabled_service_links_still_get_the_kubernetes_service() -> None:
    source = FakeSource(services=[KUBERNETES, service(NS, "db", "10.96.5.5")])
    env = await resolve(source, enableServiceLinks=False)
    assert env.values == KUBERNETES_VARS
    assert source.calls == [("services", "default", "")]


async def test_a_pod_in_default_lists_services_once() -> None:
    source = FakeSource(
        services=[KUBERNETES, service("default", "web", "10.96.0.8")], namespace="default"
    )
    env = await resolve(source, namespace="default")
    assert "WEB_SERVICE_HOST" in env.values and "KUBERNETES_SERVICE_HOST" in env.values
    assert source.calls == [("services", "default", "")]


async def test_a_service_called_kubernetes_in_the_pods_namespace_wins() -> None:
    source = FakeSource(services=[KUBERNETES, service(NS, "kubernetes", "10.96.3.3")])
    env = await resolve(source)
    assert env.values["KUBERNETES_SERVICE_HOST"] == "10.96.3.3"
    env = await resolve(source, enableServiceLinks=False)
    assert env.values["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


async def test_explicit_env_wins_over_service_variables_which_expansion_can_see() -> None:
    source = FakeSource(services=[KUBERNETES, service(NS, "db", "10.96.5.5", [{"port": 5432}])])
    env = await resolve(
        source,
        env=[
            {"name": "DB_SERVICE_HOST", "value": "db.example.com"},
            {"name": "DSN", "value": "pg://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)"},
        ],
    )
    assert env.values["DB_SERVICE_HOST"] == "db.example.com"
    assert env.values["DSN"] == "pg://db.example.com:5432"
    assert list(env.values)[:2] == ["DB_SERVICE_HOST", "DSN"]  # declared first, links after


async def test_services_are_listed_once_per_namespace_for_a_whole_pod() -> None:
    source = FakeSource(services=[KUBERNETES])
    memo = MemoizedSource(source)
    pod, container = make_pod()
    for _ in range(3):
        await resolve_env(pod, container, source=memo)
    assert sorted(source.calls) == [("services", "default", ""), ("services", NS, "")]
