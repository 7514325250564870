"""Authentication and authorization of the kubelet API, against a fake reviewer: the kubelet's
path mapping and messages, client certificates before tokens, and the caches' TTLs (tokens 2 min
/ 10 s, decisions 5 min / 30 s) on virtual time; tokens are never kept, only their hash."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from vk_trio.api.auth import Denied, Guard, identity_from_cert, subresources
from vk_trio.httpserver import PeerSubject, Request
from vk_trio.kube.reviews import (
    ACCESS_REVIEWS,
    TOKEN_REVIEWS,
    AccessReviewStatus,
    SubjectAccessReview,
    TokenReview,
    TokenReviewStatus,
    UserInfo,
)


class Reviewer:
    """Stands in for KubeClient.create of TokenReviews and SubjectAccessReviews."""

    def __init__(self, *, tokens: dict[str, str], allowed: set[tuple[str, str]]) -> None:
        self.tokens = tokens  # token → user
        self.allowed = allowed  # (user, subresource)
        self.calls: list[tuple[str, Any]] = []

    async def create(self, resource: Any, body: Any, **_kw: Any) -> Any:
        self.calls.append((resource.plural, body))
        await trio.sleep(0.01)  # the API server takes a moment
        if resource is TOKEN_REVIEWS:
            user = self.tokens.get(body["spec"]["token"])
            status = TokenReviewStatus(
                authenticated=user is not None,
                user=UserInfo(username=user or "", groups=["system:authenticated"]),
            )
            return TokenReview(status=status)
        assert resource is ACCESS_REVIEWS
        spec = body["spec"]
        key = (spec["user"], spec["resourceAttributes"]["subresource"])
        return SubjectAccessReview(status=AccessReviewStatus(allowed=key in self.allowed))


def request(path: str, *, token: str = "", cert: PeerSubject | None = None) -> Request:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return Request(method="GET", path=path, query={}, headers=headers, body=b"", peer=cert)


def guard(reviewer: Reviewer) -> Guard:
    return Guard(reviewer, node_name="gpu-1")  # type: ignore[arg-type]


def test_paths_map_to_the_kubelets_node_subresources() -> None:
    assert subresources("/stats/summary") == ("stats",)
    assert subresources("/metrics/resource") == ("metrics",)
    assert subresources("/logs/syslog") == ("log",)
    assert subresources("/containerLogs/ns/p/c") == ("proxy",)
    assert subresources("/healthz") == ("healthz", "proxy")
    assert subresources("/pods") == ("pods", "proxy")
    assert subresources("/exec/ns/p/c") == ("proxy",)


def test_a_client_certificate_is_its_cn_in_its_o_groups() -> None:
    cert = PeerSubject("apiserver", ("system:masters",))
    found = identity_from_cert(cert)
    assert found is not None and found.user == "apiserver"
    assert found.groups == ("system:masters", "system:authenticated")
    assert identity_from_cert(PeerSubject("", ("system:masters",))) is None


async def test_a_verified_certificate_is_used_before_any_token() -> None:
    reviewer = Reviewer(tokens={}, allowed={("apiserver", "proxy")})
    gate = guard(reviewer)
    allowed = await gate.check(request("/pods", token="made-up", cert=PeerSubject("apiserver")))
    assert not isinstance(allowed, Denied) and allowed.user == "apiserver"
    assert "tokenreviews" not in [plural for plural, _ in reviewer.calls]


async def test_anonymous_and_unknown_tokens_are_401_and_forbidden_users_403() -> None:
    reviewer = Reviewer(tokens={"good": "alice", "plain": "bob"}, allowed={("alice", "proxy")})
    gate = guard(reviewer)
    anonymous = await gate.check(request("/pods"))
    assert isinstance(anonymous, Denied) and anonymous.response.status == 401
    unknown = await gate.check(request("/pods", token="made-up"))
    assert isinstance(unknown, Denied) and unknown.response.status == 401
    bob = await gate.check(request("/containerLogs/a/b/c", token="plain"))
    assert isinstance(bob, Denied) and bob.response.status == 403
    expected = b"Forbidden (user=bob, verb=get, resource=nodes, subresource=proxy)"
    assert bob.response.body == expected
    alice = await gate.check(request("/pods", token="good"))
    assert not isinstance(alice, Denied) and alice.user == "alice"  # via nodes/proxy
    assert all("made-up" not in str(key) for key in gate.tokens._items)  # only hashes are kept


async def test_decisions_and_tokens_are_cached_with_the_kubelets_ttls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    reviewer = Reviewer(tokens={"t": "carol"}, allowed={("carol", "stats")})
    gate = guard(reviewer)

    async def reviews_for(path: str, token: str) -> int:
        before = len(reviewer.calls)
        await gate.check(request(path, token=token))
        return len(reviewer.calls) - before

    assert await reviews_for("/stats/summary", "t") == 2  # a TokenReview, a SubjectAccessReview
    assert await reviews_for("/stats/summary", "t") == 0
    await trio.sleep(121)  # the token's 2 minutes are over, the decision's 5 are not
    assert await reviews_for("/stats/summary", "t") == 1
    await trio.sleep(180)  # now both are over
    assert await reviews_for("/stats/summary", "t") == 2
    assert await reviews_for("/containerLogs/a/b/c", "t") == 1  # denied: cached 30 s
    await trio.sleep(29)
    assert await reviews_for("/containerLogs/a/b/c", "t") == 0
    await trio.sleep(2)
    assert await reviews_for("/containerLogs/a/b/c", "t") == 1
    assert await reviews_for("/pods", "nope") == 1  # a refused token: cached 10 s
    assert await reviews_for("/pods", "nope") == 0


async def test_requests_arriving_together_share_one_review() -> None:
    reviewer = Reviewer(tokens={"t": "dave"}, allowed={("dave", "proxy")})
    gate = guard(reviewer)
    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(gate.check, request("/containerLogs/a/b/c", token="t"))
    assert [kind for kind, _ in reviewer.calls] == ["tokenreviews", "subjectaccessreviews"]
