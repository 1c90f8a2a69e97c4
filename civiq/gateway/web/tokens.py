"""Unguessable public ticket tokens: the QR printed on a ticket points at ``/t/<token>``.

The token carries the ticket's center, local day and label in the clear (none of it is personal data)
followed by a truncated ``HMAC-SHA256(secret, "center|day|label")``, both URL-safe base64, joined by ``.``.
Nobody can make the token of another ticket without the secret, and the gateway needs no table of issued
tokens to check one.

>>> tok = ticket_token(b"s" * 32, "hcm-q1", "2026-01-05", "A001")
>>> verify_ticket_token(b"s" * 32, tok)
TicketRef(center='hcm-q1', day='2026-01-05', label='A001')
>>> verify_ticket_token(b"x" * 32, tok) is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import NamedTuple

MAC_BYTES = 12  # 96 bits: unguessable, and the QR stays small
_CENTER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LABEL = re.compile(r"^[A-Za-z0-9-]{1,16}$")


class TicketRef(NamedTuple):
    center: str
    day: str
    label: str


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def ticket_mac(secret: bytes, center: str, day: str, label: str) -> str:
    """The truncated HMAC part alone: ``HMAC-SHA256(secret, center|day|label)[:12]``, URL-safe base64."""
    msg = f"{center}|{day}|{label}".encode()
    return _b64(hmac.new(secret, msg, hashlib.sha256).digest()[:MAC_BYTES])


def ticket_token(secret: bytes, center: str, day: str, label: str) -> str:
    """The token for ``/t/<token>``; raises ValueError on ids that could not round-trip."""
    if not (_CENTER.match(center) and _DAY.match(day) and _LABEL.match(label)):
        raise ValueError(f"cannot make a ticket token for {center!r} {day!r} {label!r}")
    payload = _b64(f"{center}|{day}|{label}".encode())
    return f"{payload}.{ticket_mac(secret, center, day, label)}"


def verify_ticket_token(secret: bytes, token: str) -> TicketRef | None:
    """The ticket a token names, or None when it is malformed or its MAC is wrong."""
    if len(token) > 200 or token.count(".") != 1:
        return None
    payload, mac = token.split(".")
    try:
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    parts = text.split("|")
    if len(parts) != 3:
        return None
    center, day, label = parts
    if not (_CENTER.match(center) and _DAY.match(day) and _LABEL.match(label)):
        return None
    if not hmac.compare_digest(mac, ticket_mac(secret, center, day, label)):
        return None
    return TicketRef(center, day, label)


verify = verify_ticket_token
