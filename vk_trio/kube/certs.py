"""X.509 for the node: a certificate request for the CSR API, a self-signed certificate, and what a
PEM certificate says about itself (subject, validity).

Names are the Kubernetes conventions: the subject's CN is the user (``system:node:<name>``), each
O is a group (``system:nodes``). Subject alternative names are IP addresses or DNS names, chosen
by what they parse as. See kube/der.py for why this is not a library.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vk_trio.kube import der
from vk_trio.kube.p256 import OID_ECDSA_SHA256, PrivateKey

OID_CN = "2.5.4.3"
OID_O = "2.5.4.10"
OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
OID_SAN = "2.5.29.17"
OID_BASIC_CONSTRAINTS = "2.5.29.19"
OID_KEY_USAGE = "2.5.29.15"
OID_EXT_KEY_USAGE = "2.5.29.37"
OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
_EXTENDED_USAGES = {"server auth": OID_SERVER_AUTH, "client auth": OID_CLIENT_AUTH}


def _name(common_name: str, organizations: Sequence[str]) -> bytes:
    rdns = [der.set_of(der.sequence(der.oid(OID_O), der.utf8(org))) for org in organizations]
    rdns.append(der.set_of(der.sequence(der.oid(OID_CN), der.utf8(common_name))))
    return der.sequence(*rdns)


def _alt_names(names: Sequence[str]) -> bytes:
    entries = []
    for name in names:
        try:
            entries.append(der.implicit(7, ipaddress.ip_address(name).packed))
        except ValueError:
            entries.append(der.implicit(2, name.encode("ascii")))
    return der.sequence(*entries)


def _extension(identifier: str, value: bytes, *, critical: bool = False) -> bytes:
    flag = der.boolean(True) if critical else b""
    return der.sequence(der.oid(identifier), flag, der.octets(value))


def _extensions(sans: Sequence[str], usages: Sequence[str]) -> list[bytes]:
    found = [_EXTENDED_USAGES[u] for u in usages if u in _EXTENDED_USAGES]
    digital_signature = bytes([0x07, 0x80])  # BIT STRING: 7 unused bits, bit 0 set
    out = [
        _extension(OID_BASIC_CONSTRAINTS, der.sequence(), critical=True),
        _extension(OID_KEY_USAGE, der.tlv(0x03, digital_signature), critical=True),
    ]
    if found:
        out.append(_extension(OID_EXT_KEY_USAGE, der.sequence(*(der.oid(o) for o in found))))
    if sans:
        out.append(_extension(OID_SAN, _alt_names(sans)))
    return out


def certificate_request(
    key: PrivateKey,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    sans: Sequence[str] = (),
    usages: Sequence[str] = (),
) -> bytes:
    """A PEM PKCS#10 "CERTIFICATE REQUEST" signed by ``key``."""
    requested = der.sequence(*_extensions(sans, usages))
    attribute = der.sequence(der.oid(OID_EXTENSION_REQUEST), der.set_of(requested))
    info = der.sequence(
        der.integer(0),
        _name(common_name, organizations),
        key.subject_public_key_info(),
        der.implicit(0, attribute, constructed=True),
    )
    algorithm = der.sequence(der.oid(OID_ECDSA_SHA256))
    body = der.sequence(info, algorithm, der.bits(key.sign(info)))
    return der.pem("CERTIFICATE REQUEST", body)


def self_signed(
    key: PrivateKey,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    sans: Sequence[str] = (),
    usages: Sequence[str] = ("server auth",),
    lifetime: timedelta = timedelta(days=365),
    now: datetime | None = None,
) -> bytes:
    """A PEM certificate for ``key``, issued by itself."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    name = _name(common_name, organizations)
    algorithm = der.sequence(der.oid(OID_ECDSA_SHA256))
    tbs = der.sequence(
        der.explicit(0, der.integer(2)),
        der.integer(secrets.randbits(120) | 1 << 120),
        algorithm,
        name,
        der.sequence(der.time(now - timedelta(minutes=5)), der.time(now + lifetime)),
        name,
        key.subject_public_key_info(),
        der.explicit(3, der.sequence(*_extensions(sans, usages))),
    )
    return der.pem("CERTIFICATE", der.sequence(tbs, algorithm, der.bits(key.sign(tbs))))


@dataclass(frozen=True, kw_only=True)
class CertInfo:
    common_name: str
    organizations: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    self_issued: bool

    def remaining(self, now: datetime) -> timedelta:
        return self.not_after - now

    def renew_at(self, fraction: float = 0.8) -> datetime:
        """When to ask for the next one: after ``fraction`` of the lifetime, as the kubelet does."""
        return self.not_before + (self.not_after - self.not_before) * fraction


def cert_info(pem_data: bytes) -> CertInfo:
    """What the first certificate of a PEM bundle says; ``der.DerError`` if it is not one."""
    blocks = der.unpem(pem_data, "CERTIFICATE")
    if not blocks:
        raise der.DerError("no CERTIFICATE block")
    tbs = der.parse(blocks[0]).child(0)
    index = 1 if tbs.child(0).tag == 0xA0 else 0
    issuer, validity, subject = tbs.child(index + 2), tbs.child(index + 3), tbs.child(index + 4)
    names: dict[str, list[str]] = {}
    for rdn in subject.children:
        for pair in rdn.children:
            text = pair.child(1).content.decode("utf-8", errors="replace")
            names.setdefault(pair.child(0).as_oid(), []).append(text)
    return CertInfo(
        common_name=(names.get(OID_CN) or [""])[0],
        organizations=tuple(names.get(OID_O, [])),
        not_before=validity.child(0).as_time(),
        not_after=validity.child(1).as_time(),
        self_issued=issuer.content == subject.content,
    )
