"""TokenReview and SubjectAccessReview: the API server decides who a caller is and what it may do.

The kubelet does not judge tokens or permissions itself: it asks the API server
(``authentication.k8s.io/v1`` TokenReview for a bearer token, ``authorization.k8s.io/v1``
SubjectAccessReview for a user and an action). These are the two calls, typed; caching and the
mapping of HTTP requests to actions live with the server that uses them (vk_trio/api/auth.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from vk_trio.kube.client import KubeClient
from vk_trio.kube.models import K, ObjectMeta
from vk_trio.kube.resources import Resource
from vk_trio.pacing import TokenBucket


class UserInfo(K):
    username: str = ""
    uid: str = ""
    groups: list[str] = msgspec.field(default_factory=list)
    extra: dict[str, list[str]] = msgspec.field(default_factory=dict)


class TokenReviewStatus(K):
    authenticated: bool = False
    user: UserInfo = msgspec.field(default_factory=UserInfo)
    audiences: list[str] = msgspec.field(default_factory=list)
    error: str = ""


class TokenReview(K):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    status: TokenReviewStatus = msgspec.field(default_factory=TokenReviewStatus)


class AccessReviewStatus(K):
    allowed: bool = False
    denied: bool = False
    reason: str = ""
    evaluation_error: str = ""


class SubjectAccessReview(K):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    status: AccessReviewStatus = msgspec.field(default_factory=AccessReviewStatus)


TOKEN_REVIEWS = Resource(
    "apis/authentication.k8s.io/v1", "tokenreviews", False, TokenReview, "TokenReview"
)
ACCESS_REVIEWS = Resource(
    "apis/authorization.k8s.io/v1",
    "subjectaccessreviews",
    False,
    SubjectAccessReview,
    "SubjectAccessReview",
)


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Who a caller is, as the API server (or its client certificate) says."""

    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Action:
    """What a request wants to do, as a SubjectAccessReview's resourceAttributes."""

    verb: str
    resource: str
    subresource: str
    name: str
    group: str = ""
    version: str = "v1"


async def review_token(
    client: KubeClient, token: str, *, limiter: TokenBucket | None = None
) -> tuple[Identity | None, str]:
    """(identity, "") when the API server accepts the token, else (None, why)."""
    body = {"spec": {"token": token}}
    answer = await client.create(TOKEN_REVIEWS, body, limiter=limiter)
    status = answer.status
    if not status.authenticated:
        return None, status.error or "the token was not accepted"
    user = status.user
    identity = Identity(
        user=user.username,
        groups=tuple(user.groups),
        uid=user.uid,
        extra={k: tuple(v) for k, v in user.extra.items()},
    )
    return identity, ""


async def review_access(
    client: KubeClient,
    identity: Identity,
    action: Action,
    *,
    limiter: TokenBucket | None = None,
) -> tuple[bool, str]:
    """(allowed, reason) for ``identity`` doing ``action``."""
    spec: dict[str, object] = {
        "user": identity.user,
        "groups": list(identity.groups),
        "resourceAttributes": {
            "verb": action.verb,
            "group": action.group,
            "version": action.version,
            "resource": action.resource,
            "subresource": action.subresource,
            "name": action.name,
        },
    }
    if identity.uid:
        spec["uid"] = identity.uid
    if identity.extra:
        spec["extra"] = {k: list(v) for k, v in identity.extra.items()}
    answer = await client.create(ACCESS_REVIEWS, {"spec": spec}, limiter=limiter)
    return answer.status.allowed, answer.status.reason or answer.status.evaluation_error
