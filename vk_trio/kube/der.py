"""Just enough ASN.1 DER to write a certificate request and a certificate, and to read one back.

The node agent needs a private key, a PKCS#10 request for the CSR API and, when nobody approves
that request, a self-signed certificate. The Python standard library serves TLS with OpenSSL but
cannot make any of these, and a cryptography wheel per platform would double the single-file
build for three rare calls. So the few ASN.1 types those structures use are encoded here
(definite lengths, DER's canonical forms), and ``parse`` walks a DER value into a tree of
``Node`` for the fields we read back (validity, subject, serial).

Everything here is pure and bounded: ``parse`` refuses nesting deeper than ``MAX_DEPTH`` and
lengths beyond the input, with ``DerError``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_DEPTH = 32


class DerError(ValueError):
    """The bytes are not the DER we expect."""


# --- encoding -----------------------------------------------------------------------------


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def sequence(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def set_of(*items: bytes) -> bytes:
    return tlv(0x31, b"".join(sorted(items)))  # DER sorts SET OF by encoding


def integer(value: int) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk, rest = [part & 0x7F], part >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode())


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def bits(data: bytes) -> bytes:
    return tlv(0x03, b"\x00" + data)


def boolean(value: bool) -> bytes:
    return tlv(0x01, b"\xff" if value else b"\x00")


def null() -> bytes:
    return b"\x05\x00"


def explicit(number: int, content: bytes) -> bytes:
    return tlv(0xA0 | number, content)


def implicit(number: int, content: bytes, *, constructed: bool = False) -> bytes:
    return tlv((0xA0 if constructed else 0x80) | number, content)


def time(when: datetime) -> bytes:
    """UTCTime until 2049, GeneralizedTime after, as RFC 5280 wants."""
    when = when.astimezone(UTC)
    if when.year < 2050:
        return tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


def pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join(
        [f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode(), b""]
    )


_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)


def unpem(data: bytes, label: str) -> list[bytes]:
    """Every DER block of ``label`` in a PEM bundle, in order."""
    try:
        return [
            base64.b64decode(m.group(2))
            for m in _PEM.finditer(data)
            if m.group(1) == label.encode()
        ]
    except ValueError as exc:
        raise DerError(f"bad base64 in a {label} PEM block") from exc


# --- decoding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    tag: int
    content: bytes
    children: tuple[Node, ...] = ()

    def child(self, index: int) -> Node:
        try:
            return self.children[index]
        except IndexError:
            raise DerError(f"expected at least {index + 1} elements") from None

    def as_int(self) -> int:
        if self.tag != 0x02:
            raise DerError("expected an INTEGER")
        return int.from_bytes(self.content, "big", signed=True)

    def as_time(self) -> datetime:
        text = self.content.decode("ascii", errors="replace")
        formats = {0x17: "%y%m%d%H%M%SZ", 0x18: "%Y%m%d%H%M%SZ"}
        if self.tag not in formats:
            raise DerError("expected a UTCTime or GeneralizedTime")
        try:
            return datetime.strptime(text, formats[self.tag]).replace(tzinfo=UTC)
        except ValueError as exc:
            raise DerError(f"bad time {text!r}") from exc

    def as_oid(self) -> str:
        if self.tag != 0x06 or not self.content:
            raise DerError("expected an OBJECT IDENTIFIER")
        first = self.content[0]
        parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
        value = 0
        for byte in self.content[1:]:
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                parts.append(value)
                value = 0
        return ".".join(str(p) for p in parts)


def parse(data: bytes) -> Node:
    node, end = _parse_at(data, 0, 0)
    if end != len(data):
        raise DerError("trailing bytes after the DER value")
    return node


def _parse_at(data: bytes, offset: int, depth: int) -> tuple[Node, int]:
    if depth > MAX_DEPTH:
        raise DerError("DER nested too deeply")
    if offset + 2 > len(data):
        raise DerError("truncated DER")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise DerError("bad DER length")
        size = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + size
    if end > len(data):
        raise DerError("DER length beyond the input")
    content = data[offset:end]
    children: list[Node] = []
    if tag & 0x20:  # constructed: parse what is inside
        inner = offset
        while inner < end:
            child, inner = _parse_at(data[:end], inner, depth + 1)
            children.append(child)
    return Node(tag, content, tuple(children)), end
