"""The pod cache: newest copy wins, and cached pods do not pin their decode buffers."""

from __future__ import annotations

import gc
import weakref

import msgspec

from vk_trio.kube.models import Pod
from vk_trio.kube.watch import Changed
from vk_trio.pods.cache import PodCache

POD = (
    b'{"metadata":{"name":"p","uid":"u1","resourceVersion":"5"},"spec":{"volumes":'
    b'[{"name":"kube-api-access-x","projected":{"sources":[]}}]},"padding":"'
    + b"x" * 100_000
    + b'"}'
)


class Buffer(bytearray):
    """A bytearray we can hold a weak reference to."""


async def test_a_cached_pod_does_not_keep_its_whole_json_alive() -> None:
    buffer = Buffer(POD)
    pod = msgspec.json.decode(buffer, type=Pod)
    watcher = weakref.ref(buffer)
    cache = PodCache(lambda uid: None)
    await cache.handle(Changed("ADDED", pod, "5"))
    del buffer, pod
    gc.collect()
    assert watcher() is None, "the cache must not pin the decode buffer"
    cached = cache.get("u1")
    assert cached is not None
    assert msgspec.json.decode(cached.spec.volumes[0])["name"] == "kube-api-access-x"


async def test_an_older_copy_never_replaces_a_newer_one() -> None:
    enqueued: list[str] = []
    cache = PodCache(enqueued.append)
    newer = msgspec.json.decode(b'{"metadata":{"uid":"u","resourceVersion":"9"}}', type=Pod)
    older = msgspec.json.decode(b'{"metadata":{"uid":"u","resourceVersion":"3"}}', type=Pod)
    cache.update(newer)
    await cache.handle(Changed("MODIFIED", older, "3"))
    held = cache.get("u")
    assert held is not None and held.metadata.resource_version == "9"
    assert enqueued == ["u"]


async def test_the_watch_echo_of_our_own_write_keeps_the_copy_we_hold() -> None:
    cache = PodCache(lambda uid: None)
    ours = msgspec.json.decode(b'{"metadata":{"uid":"u","resourceVersion":"9"}}', type=Pod)
    echo = msgspec.json.decode(b'{"metadata":{"uid":"u","resourceVersion":"9"}}', type=Pod)
    cache.update(ours)
    await cache.handle(Changed("MODIFIED", echo, "9"))
    assert cache.get("u") is ours


async def test_cached_pods_share_their_equal_values() -> None:
    cache = PodCache(lambda uid: None)
    for uid in ("a", "b"):
        body = b'{"metadata":{"uid":"%s","namespace":"ml","resourceVersion":"1"}}' % uid.encode()
        await cache.handle(Changed("ADDED", msgspec.json.decode(body, type=Pod), "1"))
    a, b = cache.get("a"), cache.get("b")
    assert a is not None and b is not None
    assert a.metadata.namespace is b.metadata.namespace
