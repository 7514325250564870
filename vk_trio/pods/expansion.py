"""The pure half of env resolution: ``$(VAR)`` expansion and the values the kubelet computes.

pods/env.py fetches ConfigMaps, Secrets and Services and decides what goes where; everything
here is a plain function of its arguments (no I/O, no trio), so it can be checked exhaustively
with Hypothesis against the kubelet's own test tables. Invalid input raises ``ValueError`` with
a message that names fields, never values; env.py turns it into ``InvalidEnvSource``.

``expand`` is a faithful port of the kubelet's scanner (``third_party/forked/golang/expansion``),
because users rely on its corner cases:

* ``$(NAME)`` becomes the value of NAME when ``lookup`` knows it, else stays ``$(NAME)``
  literally; NAME is everything up to the first ``)``, whatever it contains
  (``$(A$(B))`` looks up ``A$(B`` and keeps the trailing ``)``);
* ``$$`` becomes ``$`` anywhere, so ``$$(NAME)`` is the literal ``$(NAME)``;
* any other ``$`` stays: ``$NAME``, ``${NAME}``, ``$(`` never closed, a ``$`` at the end.

It never raises and runs in linear time. One deliberate deviation: the Go scanner works on
bytes, so ``$`` followed by a multi-byte character (``$é``) comes out as broken UTF-8 there;
here it comes out unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from vk_trio.kube.models import Container, Pod, ResourceFieldSelector, Service
from vk_trio.pods.quantity import bytes_, cpu_millis, parse_quantity

OPERATOR = "$"
OPENER = "("
CLOSER = ")"


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand ``$(NAME)`` references in ``text``.

    Args:
        text: the string to expand (an env var's ``value``).
        lookup: the value of a variable name, or ``None`` when it is not defined (the reference
            is then kept literally). It is called once per reference, left to right.
    """
    if OPERATOR not in text:
        return text
    last_closer = text.rfind(CLOSER)
    out: list[str] = []
    checkpoint = cursor = 0
    end = len(text)
    while cursor < end:
        if text[cursor] != OPERATOR or cursor + 1 >= end:
            cursor += 1
            continue
        out.append(text[checkpoint:cursor])
        following = text[cursor + 1]
        if following == OPERATOR:  # "$$": an escaped operator
            out.append(OPERATOR)
            cursor += 2
        elif following == OPENER and last_closer > cursor + 1:
            closer = text.index(CLOSER, cursor + 2)
            name = text[cursor + 2 : closer]
            value = lookup(name)
            out.append(wrap(name) if value is None else value)
            cursor = closer + 1
        else:  # "$x", or a "$(" that is never closed: both kept as they are
            out.append(text[cursor : cursor + 2])
            cursor += 2
        checkpoint = cursor
    out.append(text[checkpoint:])
    return "".join(out)


def escape(text: str) -> str:
    """The value that expands back to exactly ``text``, whatever is defined: ``$`` → ``$$``."""
    return text.replace(OPERATOR, OPERATOR + OPERATOR)


def wrap(name: str) -> str:
    """The reference syntax for ``name``: ``$(name)``."""
    return f"{OPERATOR}{OPENER}{name}{CLOSER}"


# --- fieldRef -----------------------------------------------------------------------------------

POD_IP_PATHS = frozenset({"status.podIP", "status.podIPs"})


def field_path_value(pod: Pod, path: str, *, pod_ip: str, host_ip: str) -> str:
    """The kubelet's ``podFieldSelectorRuntimeValue``; the IPs are the caller's (see env.py)."""
    meta, spec = pod.metadata, pod.spec
    if path.endswith("']") and "['" in path:
        base, _, key = path[:-2].partition("['")
        if base == "metadata.labels":
            return meta.labels.get(key, "")
        if base == "metadata.annotations":
            return meta.annotations.get(key, "")
        raise ValueError(f"fieldPath {path!r} does not support a subscript")
    values = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": spec.node_name,
        "spec.host": spec.node_name,  # the old name, still converted by the API
        "spec.serviceAccountName": spec.service_account_name,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
    }
    if path in values:
        return values[path]
    if path == "metadata.labels":
        return format_map(meta.labels)
    if path == "metadata.annotations":
        return format_map(meta.annotations)
    raise ValueError(f"fieldPath {path!r} is not supported")


def format_map(m: Mapping[str, str]) -> str:
    """The downward API's rendering of labels/annotations: sorted ``key="value"`` lines."""
    return "\n".join(f"{k}={go_quote(m[k])}" for k in sorted(m))


_GO_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
_GO_ESCAPES |= {"\v": r"\v", '"': r"\"", "\\": r"\\"}


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``, which the kubelet's ``FormatMap`` uses."""
    out = []
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


# --- resourceFieldRef ---------------------------------------------------------------------------

DEFAULTED_LIMITS = ("cpu", "memory", "ephemeral-storage")  # unset → the node's allocatable


def resource_value(
    ref: ResourceFieldSelector,
    pod: Pod,
    container: Container,
    allocatable: Mapping[str, str],
) -> str:
    """The kubelet's ``containerResourceRuntimeValue``: ceil(amount / divisor).

    CPU is counted in millicores, everything else in units, each side rounded up first like
    ``Quantity.MilliValue``/``Value``. A cpu, memory or ephemeral-storage limit that is unset or
    zero is the node's allocatable (``defaultPodLimitsForDownwardAPI``). Only the resources the
    API server accepts here exist: ``limits.nvidia.com/gpu`` is refused by validation.
    """
    target = container
    if ref.container_name:
        everyone = [*pod.spec.containers, *pod.spec.init_containers]
        named = [c for c in everyone if c.name == ref.container_name]
        if not named:
            raise ValueError(f"resourceFieldRef container {ref.container_name!r} not found")
        target = named[0]
    kind, _, resource = ref.resource.partition(".")
    if kind not in ("limits", "requests") or not (
        resource in DEFAULTED_LIMITS or resource.startswith("hugepages-")
    ):
        raise ValueError(f"resourceFieldRef {ref.resource!r} is not supported")
    amounts = target.resources.limits if kind == "limits" else target.resources.requests
    amount = amounts.get(resource, "0")
    if kind == "limits" and parse_quantity(amount) == 0 and resource in DEFAULTED_LIMITS:
        amount = allocatable.get(resource, "0")
    divisor = ref.divisor if ref.divisor != "" and parse_quantity(ref.divisor) != 0 else "1"
    scaled = cpu_millis if resource == "cpu" else bytes_
    return str(-(-scaled(amount) // scaled(divisor)))


# --- service links ------------------------------------------------------------------------------


def has_cluster_ip(svc: Service) -> bool:
    """Headless (``None``) and IP-less Services get no variables."""
    return svc.spec.cluster_ip not in ("", "None")


def service_link_variables(services: Iterable[Service]) -> dict[str, str]:
    """The kubelet's ``envvars.FromServices``: Kubernetes and Docker-link style variables.

    They point at cluster IPs that a cloud instance usually cannot reach; they are set anyway
    because programs test for them (``KUBERNETES_SERVICE_HOST`` means "in a cluster").
    """
    env: dict[str, str] = {}
    for svc in services:
        if not has_cluster_ip(svc) or not svc.spec.ports:
            continue
        ip, prefix = svc.spec.cluster_ip, _env_name(svc.metadata.name)
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(svc.spec.ports[0].port)
        for port in svc.spec.ports:
            if port.name:
                env[f"{prefix}_SERVICE_PORT_{_env_name(port.name)}"] = str(port.port)
        host = f"[{ip}]" if ":" in ip else ip
        for i, port in enumerate(svc.spec.ports):
            proto = (port.protocol or "TCP").lower()
            url = f"{proto}://{host}:{port.port}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            base = f"{prefix}_PORT_{port.port}_{proto.upper()}"
            env |= {base: url, f"{base}_PROTO": proto}
            env |= {f"{base}_PORT": str(port.port), f"{base}_ADDR": ip}
    return env


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()
