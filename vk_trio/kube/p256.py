"""ECDSA on NIST P-256 with SHA-256: a key pair, and signatures for our own CSRs and certificates.

Why it is here: see kube/der.py. The key is then handed to OpenSSL (``ssl.load_cert_chain``),
which does every TLS operation with it; this module only creates the key and signs two kinds of
local documents (a certificate request, a self-signed certificate), a few times a month. Neither
the key generation nor those signatures can be timed by a remote party.

The nonce of each signature is RFC 6979's deterministic one mixed with fresh randomness (the
"hedged" variant RFC 6979 section 3.6 allows), so neither a weak random source nor a repeated
message can expose the key. Points use Jacobian coordinates; ``verify`` is used by the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from vk_trio.kube import der

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"

Point = tuple[int, int] | None  # None is the point at infinity
_Jacobian = tuple[int, int, int]


def _double(pt: _Jacobian) -> _Jacobian:
    x, y, z = pt
    if y == 0 or z == 0:
        return (0, 1, 0)
    ysq = y * y % P
    s = 4 * x * ysq % P
    zsq = z * z % P
    m = 3 * (x - zsq) * (x + zsq) % P  # a = -3
    nx = (m * m - 2 * s) % P
    ny = (m * (s - nx) - 8 * ysq * ysq) % P
    nz = 2 * y * z % P
    return (nx, ny, nz)


def _add(p1: _Jacobian, p2: _Jacobian) -> _Jacobian:
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1sq, z2sq = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2sq % P, x2 * z1sq % P
    s1, s2 = y1 * z2sq * z2 % P, y2 * z1sq * z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else (0, 1, 0)
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hsq = h * h % P
    hcu = hsq * h % P
    nx = (r * r - hcu - 2 * u1 * hsq) % P
    ny = (r * (u1 * hsq - nx) - s1 * hcu) % P
    nz = h * z1 * z2 % P
    return (nx, ny, nz)


def _affine(pt: _Jacobian) -> Point:
    x, y, z = pt
    if z == 0:
        return None
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    return (x * zinv2 % P, y * zinv2 * zinv % P)


def multiply(k: int, point: Point = G) -> Point:
    """k times point, by a fixed ladder of 256 doublings and additions."""
    if point is None:
        return None
    acc: _Jacobian = (0, 1, 0)
    addend: _Jacobian = (point[0], point[1], 1)
    for bit in range(256):
        if (k >> bit) & 1:
            acc = _add(acc, addend)
        addend = _double(addend)
    return _affine(acc)


def on_curve(point: Point) -> bool:
    if point is None:
        return False
    x, y = point
    return (y * y - (x * x * x + A * x + B)) % P == 0


@dataclass(frozen=True)
class PrivateKey:
    secret: int = field(repr=False)

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(secrets.randbelow(N - 1) + 1)

    @property
    def public(self) -> tuple[int, int]:
        point = multiply(self.secret)
        assert point is not None
        return point

    def public_bytes(self) -> bytes:
        """The uncompressed SEC1 point, 0x04 || X || Y."""
        x, y = self.public
        return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")

    def subject_public_key_info(self) -> bytes:
        algorithm = der.sequence(der.oid(OID_EC_PUBLIC_KEY), der.oid(OID_P256))
        return der.sequence(algorithm, der.bits(self.public_bytes()))

    def sign(self, message: bytes) -> bytes:
        """A DER ECDSA-Sig-Value (SEQUENCE { r, s }) over SHA-256(message)."""
        digest = hashlib.sha256(message).digest()
        z = int.from_bytes(digest, "big") % N
        for k in _NonceStream(self.secret, digest):
            point = multiply(k)
            if point is None:
                continue
            r = point[0] % N
            s = pow(k, -1, N) * (z + r * self.secret) % N
            if r and s:
                return der.sequence(der.integer(r), der.integer(s))
        raise AssertionError("unreachable: the nonce generator never ends")

    def to_pem(self) -> bytes:
        """SEC1 "EC PRIVATE KEY" PEM, which OpenSSL (and so ``ssl``) loads."""
        body = der.sequence(
            der.integer(1),
            der.octets(self.secret.to_bytes(32, "big")),
            der.explicit(0, der.oid(OID_P256)),
            der.explicit(1, der.bits(self.public_bytes())),
        )
        return der.pem("EC PRIVATE KEY", body)

    @classmethod
    def from_pem(cls, data: bytes) -> PrivateKey:
        blocks = der.unpem(data, "EC PRIVATE KEY")
        if not blocks:
            raise der.DerError("no EC PRIVATE KEY block")
        node = der.parse(blocks[0])
        secret = int.from_bytes(node.child(1).content, "big")
        if not 0 < secret < N:
            raise der.DerError("the EC private key is out of range")
        return cls(secret)


class _NonceStream:
    """RFC 6979 section 3.2 with extra entropy in the seed (section 3.6)."""

    def __init__(self, secret: int, digest: bytes) -> None:
        extra = secrets.token_bytes(32)
        seed = secret.to_bytes(32, "big") + (int.from_bytes(digest, "big") % N).to_bytes(32, "big")
        self.v = b"\x01" * 32
        self.k = b"\x00" * 32
        self.k = hmac.new(self.k, self.v + b"\x00" + seed + extra, hashlib.sha256).digest()
        self.v = hmac.new(self.k, self.v, hashlib.sha256).digest()
        self.k = hmac.new(self.k, self.v + b"\x01" + seed + extra, hashlib.sha256).digest()
        self.v = hmac.new(self.k, self.v, hashlib.sha256).digest()

    def __iter__(self) -> _NonceStream:
        return self

    def __next__(self) -> int:
        while True:
            self.v = hmac.new(self.k, self.v, hashlib.sha256).digest()
            candidate = int.from_bytes(self.v, "big")
            self.k = hmac.new(self.k, self.v + b"\x00", hashlib.sha256).digest()
            self.v = hmac.new(self.k, self.v, hashlib.sha256).digest()
            if 0 < candidate < N:
                return candidate


def verify(public: tuple[int, int], message: bytes, signature: bytes) -> bool:
    node = der.parse(signature)
    r, s = node.child(0).as_int(), node.child(1).as_int()
    if not (0 < r < N and 0 < s < N) or not on_curve(public):
        return False
    z = int.from_bytes(hashlib.sha256(message).digest(), "big") % N
    w = pow(s, -1, N)
    p1 = multiply(z * w % N)
    p2 = multiply(r * w % N, public)
    total = _affine(
        _add(
            (p1[0], p1[1], 1) if p1 else (0, 1, 0),
            (p2[0], p2[1], 1) if p2 else (0, 1, 0),
        )
    )
    return total is not None and total[0] % N == r
