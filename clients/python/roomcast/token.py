"""Token refresh timing: docs/protocol.md section 3, "Token refresh".

The token's payload is read without verifying it: the node does that; the
client only needs `exp` to know when to ask for a new one.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Optional

# Ask no later than this many seconds before exp.
LATEST_BEFORE_EXP = 10.0
# The node closes with 4001 this long after exp without a refresh.
EXPIRY_GRACE = 5.0


def jwt_exp(token: str) -> Optional[float]:
    """The `exp` claim (seconds since the epoch) of a JWT, unverified; None
    when the token is not a JWT or has no numeric exp."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    if not math.isfinite(exp):
        return None
    return float(exp)


def refresh_at(received_at: float, exp: float) -> float:
    """When to ask for a new token received at `received_at` that expires at
    `exp`: three quarters of the way there, and at the latest 10 s before,
    but never before half of its life (a token of 20 s or less is refreshed
    at half its life, so that a short-lived token is not refreshed again
    at once)."""
    life = exp - received_at
    return received_at + max(min(0.75 * life, life - LATEST_BEFORE_EXP), life / 2)


def retry_deadline(exp: float) -> float:
    """Failed refreshes are tried again until the node's 4001 close."""
    return exp + EXPIRY_GRACE
