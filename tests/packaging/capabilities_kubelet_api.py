"""What the kubelet API's RBAC serves (tokenreviews, subjectaccessreviews, certificatesigning-
requests), as capabilities a user sees: the API server's own client certificate gets in, a bearer
token is judged by the API server (403 naming the ServiceAccount, not 401), and the port serves a
certificate the cluster CA issued once an operator approves the request.

``quick_serving_cert`` shortens the agent's wait for approval (30 s in production) so that a case
without approval falls back to a self-signed certificate within the test's time.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable

import httpx2
import trio

from tests.packaging.capabilities import Capability
from tests.packaging.rbac_support import CapabilityMissing, Scene, expect, node, setup
from vk_trio.api import tls as api_tls
from vk_trio.kube import csr as kube_csr
from vk_trio.kube.certs import cert_info


def quick_serving_cert(patch: Callable[[object, str, object], None]) -> None:
    patch(api_tls, "APPROVAL_WAIT", 2.0)
    patch(kube_csr, "SLOW_POLL_SECONDS", 0.5)


async def kubelet_port(scene: Scene) -> int | None:
    found = await node(scene)
    return found.status.daemon_endpoints.kubelet_endpoint.port or None


async def kubelet_get(
    scene: Scene, path: str, *, token: str = "", client_cert: bool = False
) -> int:
    port = await setup(
        scene, functools.partial(kubelet_port, scene), what="the kubelet API listens"
    )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if client_cert:
        pair = scene.cp.pki.apiserver_kubelet_client
        context.load_cert_chain(pair.cert, pair.key)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    # Shielded (and bounded by the client's 5 s timeout): a probe cancelled mid-request by
    # expect()'s deadline would leave httpx2's socket unclosed.
    with trio.CancelScope(shield=True):
        async with httpx2.AsyncClient(verify=context, timeout=5, trust_env=False) as client:
            answer = await client.get(f"https://127.0.0.1:{port}{path}", headers=headers)
    return answer.status_code


async def api_server_is_let_in(scene: Scene) -> None:
    answers: list[int] = []

    async def allowed() -> bool:
        answers.append(await kubelet_get(scene, "/pods", client_cert=True))
        return answers[-1] == 200

    try:
        await expect(scene, allowed, what="the API server's client cert reads /pods", within=10)
    except CapabilityMissing as exc:
        raise CapabilityMissing(f"{exc}; answers {sorted(set(answers))}") from None


async def tokens_are_reviewed(scene: Scene) -> None:
    namespace = scene.namespace

    def token() -> str:
        scene.cp.kubectl("-n", namespace, "create", "serviceaccount", "prober", check=False)
        return scene.cp.kubectl("-n", namespace, "create", "token", "prober").stdout.strip()

    value = await trio.to_thread.run_sync(token)

    async def judged() -> bool:  # authenticated, then refused by authorization: 403, not 401
        return await kubelet_get(scene, "/pods", token=value) == 403

    await expect(scene, judged, what="a ServiceAccount token is authenticated", within=10)


async def serving_cert_is_issued(scene: Scene) -> None:
    prefix = f"certificatesigningrequest.certificates.k8s.io/{scene.node}-serving-"

    def approve() -> bool:
        names = scene.cp.kubectl("get", "csr", "-o", "name").stdout.split()
        mine = [n for n in names if n.startswith(prefix)]
        for name in mine:
            scene.cp.kubectl("certificate", "approve", name, check=False)
        return bool(mine)

    async def issued() -> bool:
        if not await trio.to_thread.run_sync(approve):
            return False
        port = await kubelet_port(scene)
        if port is None:
            return False
        pem = await trio.to_thread.run_sync(ssl.get_server_certificate, ("127.0.0.1", port))
        return not cert_info(pem.encode()).self_issued

    await expect(scene, issued, what="the kubelet API serves a CSR-issued certificate", within=15)


KUBELET_API_AUTHZ = Capability(
    "the kubelet API lets the API server in (SubjectAccessReview)", api_server_is_let_in
)
KUBELET_API_TOKENS = Capability(
    "the kubelet API authenticates bearer tokens (TokenReview)", tokens_are_reviewed
)
SERVING_CERT = Capability(
    "the kubelet API serves a certificate from the CSR API", serving_cert_is_issued
)
