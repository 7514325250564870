"""The node's own identity, ``system:node:<node>``, by kubelet TLS bootstrapping.

A kubelet reads only the Secrets and ConfigMaps of pods bound to it, writes only its own Node,
Lease and pods: the API server's Node authorizer and NodeRestriction admission plugin confine
every client whose certificate says CN ``system:node:<name>``, O ``system:nodes``. The agent
gets the same confinement the way a kubelet does: with the credentials it was given (the
*bootstrap* identity: the chart's ServiceAccount, or a bootstrap kubeconfig) it makes a key and
a CertificateSigningRequest for signer ``kubernetes.io/kube-apiserver-client-kubelet`` with
usages ``digital signature`` and ``client auth``; kube-controller-manager's csrapproving
controller approves it when the requester may ``create`` ``certificatesigningrequests/
nodeclient``, and its signer issues the certificate. :func:`open_node_client` returns a
:class:`KubeClient` that presents that certificate and nothing else.

Renewal (at 80 % of the certificate's life, kube/csr.py's :class:`CertificateKeeper`) asks with
the bootstrap identity again, not with the node's own (``selfnodeclient``): granting
``selfnodeclient`` to group ``system:nodes`` would let every kubelet of the cluster renew itself,
a policy a chart should not change for nodes it does not own; the bootstrap identity outlives
the certificate anyway (a pod's ServiceAccount token is rotated, not revoked); and a certificate
that expired while the agent was stopped can still be replaced. A renewed certificate reaches
the client through :meth:`KubeClient.swap_access`: new requests use a new connection pool while
requests and watches in flight finish on the old one.

A request nobody approves is an error after ``wait`` seconds naming the request, what approves
it and the command that would: the agent stops rather than hanging or running half-confined.
The key lives in memory, and under ``store`` (files 0600) when a state directory is given; it
is registered with the log redaction and never logged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from vk_trio.errors import AuthError
from vk_trio.kube.auth import Credentials
from vk_trio.kube.certs import CertInfo
from vk_trio.kube.client import DEFAULT_BURST, DEFAULT_QPS, KubeClient
from vk_trio.kube.csr import CertificateKeeper, CertificateSpec, Issued
from vk_trio.logs import get_logger, redact

_log = get_logger("vk_trio.kube.node_identity")

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_USAGES = ("digital signature", "client auth")
NODES_GROUP = "system:nodes"


class NodeIdentityError(AuthError):
    """No node client certificate: the request was not approved in time, or was refused. Like
    any credential problem it stops ``vk-trio run`` with one line and exit status 2."""


def node_user(node_name: str) -> str:
    return f"system:node:{node_name}"


def client_certificate_spec(
    node_name: str, *, expiration_seconds: int | None = None
) -> CertificateSpec:
    """The request a kubelet makes for its client certificate (the csrapproving controller
    checks exactly this subject and these usages before it approves)."""
    return CertificateSpec(
        signer=CLIENT_SIGNER,
        usages=CLIENT_USAGES,
        common_name=node_user(node_name),
        organizations=(NODES_GROUP,),
        expiration_seconds=expiration_seconds,
        name_prefix=f"{node_name}-client-"[:200],
    )


def node_credentials(bootstrap: Credentials, issued: Issued) -> Credentials:
    """The bootstrap identity's server and CA trust, with the node's certificate as the only
    credential (no token: the API server would take a bearer token over the certificate)."""
    redact(issued.key_pem.decode("ascii", errors="replace"))
    return dataclasses.replace(
        bootstrap,
        client_cert_pem=issued.cert_pem,
        client_key_pem=issued.key_pem,
        token_source=None,
        source=f"node identity {issued.info.common_name}",
    )


@asynccontextmanager
async def open_node_client(
    bootstrap: KubeClient,
    credentials: Credentials,
    *,
    node_name: str,
    wait: float,
    store: Path | None = None,
    qps: float = DEFAULT_QPS,
    burst: int = DEFAULT_BURST,
    expiration_seconds: int | None = None,
    renew_fraction: float = 0.8,
    on_install: Callable[[CertInfo], None] | None = None,
) -> AsyncIterator[KubeClient]:
    """A client that acts as ``system:node:<node_name>``, its certificate renewed for as long
    as the block runs. ``bootstrap`` (on ``credentials``) asks for it; raises
    :class:`NodeIdentityError` when none is issued within ``wait`` seconds. ``on_install`` hears
    of every certificate put in use (metrics)."""
    spec = client_certificate_spec(node_name, expiration_seconds=expiration_seconds)
    client: KubeClient | None = None

    async def install(issued: Issued) -> None:
        nonlocal client
        access = node_credentials(credentials, issued)
        if client is None:
            client = KubeClient(access, qps=qps, burst=burst)
        else:
            await client.swap_access(access)
            _log.info("node client certificate renewed: new requests use it")
        if on_install is not None:
            on_install(issued.info)

    keeper = CertificateKeeper(
        bootstrap,
        spec,
        install=install,
        first_wait=wait,
        store=store,
        renew_fraction=renew_fraction,
    )
    try:
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(wait):
                await nursery.start(keeper.run)
            if client is None:
                nursery.cancel_scope.cancel()
            else:
                try:
                    yield client
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        if client is not None:
            await client.aclose()
    if client is None:  # outside the nursery: the error itself, not an ExceptionGroup
        raise NodeIdentityError(_not_issued(keeper, node_name, wait))


def _not_issued(keeper: CertificateKeeper, node_name: str, wait: float) -> str:
    pending = keeper.pending
    asked = (
        f"certificatesigningrequest {pending} is still pending"
        if pending
        else "no certificatesigningrequest could be created (see the warnings above)"
    )
    approve = f"; approve it by hand: kubectl certificate approve {pending}" if pending else ""
    return (
        f"no client certificate for {node_user(node_name)} within {wait:.0f}s: {asked}. "
        f"kube-controller-manager approves it when the identity that asked may create "
        f"certificatesigningrequests/nodeclient (the chart and manifests grant it; is the "
        f"csrapproving controller running?){approve}. Or run with --node-identity kubeconfig "
        f"to use the given credentials for everything"
    )
